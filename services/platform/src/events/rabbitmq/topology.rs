//! The broker objects Omni relies on, declared idempotently at connect and per consumer.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::events::bus::{BusError, Subscription};

/// Names of the shared exchanges. `Default` is production; tests use [`Topology::unique`] so
/// they can run in parallel on one broker and delete what they made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub exchange: String,
    pub dead_letter_exchange: String,
    /// Fanout exchange (with a queue of the same name) that keeps events no consumer is bound to.
    pub alternate_exchange: String,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            exchange: "omni.events".to_owned(),
            dead_letter_exchange: "omni.dlx".to_owned(),
            alternate_exchange: "omni.unrouted".to_owned(),
        }
    }
}

impl Topology {
    /// Names no other test uses: `<prefix>-<random>.events` and so on.
    pub fn unique(prefix: &str) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let base = format!("{prefix}-{}", &tag[..12]);
        Self {
            exchange: format!("{base}.events"),
            dead_letter_exchange: format!("{base}.dlx"),
            alternate_exchange: format!("{base}.unrouted"),
        }
    }
}

fn short(s: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s).map_err(|_| BusError::Invalid(format!("name too long: {s:?}")))
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn durable_exchange() -> ExchangeDeclareOptions {
    // Durable: the exchange, and so its bindings, survive a broker restart.
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    // Quorum: replicated with Raft, survives a node loss, and counts deliveries per message.
    args.insert("x-queue-type".into(), long("quorum"));
    args
}

/// Exchanges every service publishes to; safe to run again (declares are idempotent).
pub(crate) async fn declare_exchanges(ch: &Channel, t: &Topology) -> Result<(), BusError> {
    ch.exchange_declare(
        short(&t.alternate_exchange)?,
        // Fanout: every unroutable event goes to the one keeping queue, whatever its key.
        ExchangeKind::Fanout,
        durable_exchange(),
        FieldTable::default(),
    )
    .await
    .map_err(super::unavailable)?;
    ch.queue_declare(
        short(&t.alternate_exchange)?,
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        quorum_args(),
    )
    .await
    .map_err(super::unavailable)?;
    ch.queue_bind(
        short(&t.alternate_exchange)?,
        short(&t.alternate_exchange)?,
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(super::unavailable)?;

    let mut events_args = FieldTable::default();
    // An event no queue is bound for is kept there instead of silently dropped.
    events_args.insert("alternate-exchange".into(), long(&t.alternate_exchange));
    ch.exchange_declare(
        short(&t.exchange)?,
        // Topic: consumers bind by pattern (`order.#`, `fulfilment.requested.<location>`).
        ExchangeKind::Topic,
        durable_exchange(),
        events_args,
    )
    .await
    .map_err(super::unavailable)?;

    ch.exchange_declare(
        short(&t.dead_letter_exchange)?,
        // Direct: the dead-letter key is the consumer queue's name, so each parked message
        // lands in exactly one parking queue.
        ExchangeKind::Direct,
        durable_exchange(),
        FieldTable::default(),
    )
    .await
    .map_err(super::unavailable)
}

/// The consumer's queue, its parking queue and its bindings.
pub(crate) async fn declare_consumer(
    ch: &Channel,
    t: &Topology,
    sub: &Subscription,
) -> Result<(), BusError> {
    let queue = short(&sub.queue)?;
    let parked = short(&sub.parking_queue())?;
    let durable = QueueDeclareOptions {
        // Durable: the queue and its persistent messages survive a broker restart.
        durable: true,
        ..QueueDeclareOptions::default()
    };

    // Parking queue first, so nothing is ever dead-lettered into the void.
    ch.queue_declare(parked.clone(), durable, quorum_args())
        .await
        .map_err(super::unavailable)?;
    ch.queue_bind(
        parked,
        short(&t.dead_letter_exchange)?,
        queue.clone(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(super::unavailable)?;

    let mut args = quorum_args();
    // Rejected and exhausted messages go to the DLX instead of being dropped.
    args.insert(
        "x-dead-letter-exchange".into(),
        long(&t.dead_letter_exchange),
    );
    // Routes the dead letter to this queue's own parking queue only.
    args.insert("x-dead-letter-routing-key".into(), long(&sub.queue));
    // The broker keeps a dead letter until the parking queue confirms it: never lost in transit.
    args.insert("x-dead-letter-strategy".into(), long("at-least-once"));
    // Required by at-least-once dead-lettering: a full queue refuses publishes (the publisher
    // sees a nack and retries) rather than dropping its oldest message.
    args.insert("x-overflow".into(), long("reject-publish"));
    // Safety net for crash loops (a consumer dying before it settles): the handler path parks
    // after `max_deliveries` itself.
    let limit = i32::try_from(sub.max_deliveries).unwrap_or(i32::MAX);
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
    ch.queue_declare(queue.clone(), durable, args)
        .await
        .map_err(super::unavailable)?;

    for binding in &sub.bindings {
        ch.queue_bind(
            queue.clone(),
            short(&t.exchange)?,
            short(binding)?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(super::unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_the_production_ones_and_unique_ones_differ() {
        let d = Topology::default();
        assert_eq!(d.exchange, "omni.events");
        assert_eq!(d.dead_letter_exchange, "omni.dlx");
        assert_eq!(d.alternate_exchange, "omni.unrouted");
        let (a, b) = (Topology::unique("t"), Topology::unique("t"));
        assert_ne!(a.exchange, b.exchange);
        assert!(a.exchange.starts_with("t-") && a.exchange.ends_with(".events"));
    }
}
