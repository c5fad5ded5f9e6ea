//! RabbitMQ adapter (lapin 4): the production event bus.
//!
//! One connection per bus, watched by a supervisor task that reconnects with capped backoff
//! after the broker restarts and re-declares the topology; each consumer re-opens its channel
//! on the new connection. Lapin's own recovery (`enable_auto_recover`) is left off so that
//! exactly one piece of code owns reconnection and `publish` can fail fast with
//! [`BusError::Unavailable`] while disconnected, leaving the events in the outbox.

mod consumer;
mod headers;
mod parked;
mod topology;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::StreamExt;
use lapin::{
    Channel, Confirmation, Connection, ConnectionProperties, Event,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
    },
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{LongString, ShortString},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use headers::{HeaderExtractor, HeaderInjector};
pub use topology::Topology;

use super::{
    bus::{
        BusError, ConsumerHandle, EventBus, EventHandler, ParkedMessage, ParkedMessages,
        PendingConfirms, ReplaySelection, Subscription, parking_queue,
    },
    envelope::Envelope,
};

/// A broker that has not confirmed a batch in this time is treated as unavailable; the outbox
/// keeps the rows and the relay retries.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(200);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the supervisor looks at the connection status between connection events.
const HEALTH_POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct RabbitMqBus {
    shared: Arc<Shared>,
    _lifetime: Arc<Lifetime>,
}

/// Stops the supervisor (and with it every consumer) when the last bus clone is dropped.
struct Lifetime(CancellationToken);

impl Drop for Lifetime {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

struct Shared {
    url: String,
    topology: Topology,
    source: String,
    /// The current connection, `None` while reconnecting; consumers wait on it.
    live: watch::Sender<Option<Live>>,
    /// One repair of a broken publishing channel at a time.
    publisher_repair: tokio::sync::Mutex<()>,
    stop: CancellationToken,
}

#[derive(Clone)]
struct Live {
    conn: Arc<Connection>,
    /// Confirm-mode channel shared by all publishers: confirms are matched per message.
    publisher: Channel,
}

/// Broker answers that mean the request is wrong, not that the broker is away.
fn is_caller_error(e: &lapin::Error) -> bool {
    matches!(
        e.kind(),
        lapin::ErrorKind::ProtocolError(amqp) if matches!(
            amqp.kind(),
            AMQPErrorKind::Soft(
                AMQPSoftError::NOTFOUND
                    | AMQPSoftError::PRECONDITIONFAILED
                    | AMQPSoftError::ACCESSREFUSED
            )
        )
    )
}

pub(crate) fn unavailable(e: lapin::Error) -> BusError {
    if is_caller_error(&e) {
        BusError::Invalid(e.to_string())
    } else {
        BusError::Unavailable(e.to_string())
    }
}

fn short(s: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s).map_err(|_| BusError::Invalid(format!("name too long: {s:?}")))
}

fn reconnect_delay(attempt: u32) -> Duration {
    RECONNECT_BACKOFF_MIN
        .saturating_mul(1u32 << attempt.min(10))
        .min(RECONNECT_BACKOFF_MAX)
}

impl RabbitMqBus {
    /// Connects, declares the shared exchanges and starts the reconnecting supervisor.
    /// `source` is the service's short name, used to name the connection and consumers.
    pub async fn connect(
        amqp_url: &str,
        topology: Topology,
        source: &str,
    ) -> Result<Self, BusError> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            url: amqp_url.to_owned(),
            topology,
            source: source.to_owned(),
            live: watch::channel(None).0,
            publisher_repair: tokio::sync::Mutex::new(()),
            stop: stop.clone(),
        });
        let live = establish(&shared).await?;
        shared.live.send_replace(Some(live.clone()));
        tokio::spawn(supervise(shared.clone(), live));
        Ok(Self {
            shared,
            _lifetime: Arc::new(Lifetime(stop)),
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// True while a connection is up (false while the supervisor reconnects).
    pub fn is_connected(&self) -> bool {
        self.shared
            .live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.conn.status().connected())
    }

    /// Waits until connected, for at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.live.subscribe();
        tokio::time::timeout(
            timeout,
            rx.wait_for(|l| l.as_ref().is_some_and(|l| l.conn.status().connected())),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// Stops consumers and closes the connection.
    pub fn close(&self) {
        self.shared.stop.cancel();
    }

    /// Deletes this topology's exchanges and the unrouted queue, plus the given consumer
    /// queues and their parking queues. For test teardown; refuses the production names.
    pub async fn delete_topology(&self, queues: &[&str]) -> Result<(), BusError> {
        let t = &self.shared.topology;
        if *t == Topology::default() {
            return Err(BusError::Invalid(
                "refusing to delete the production topology".into(),
            ));
        }
        let conn = self.connection()?;
        let ch = conn.create_channel().await.map_err(unavailable)?;
        let parked: Vec<String> = queues.iter().map(|q| parking_queue(q)).collect();
        let all_queues = queues
            .iter()
            .copied()
            .chain(parked.iter().map(String::as_str))
            .chain([t.alternate_exchange.as_str()]);
        for q in all_queues {
            ch.queue_delete(short(q)?, QueueDeleteOptions::default())
                .await
                .map_err(unavailable)?;
        }
        for x in [&t.exchange, &t.dead_letter_exchange, &t.alternate_exchange] {
            ch.exchange_delete(short(x)?, ExchangeDeleteOptions::default())
                .await
                .map_err(unavailable)?;
        }
        ch.close(200, "topology deleted".into())
            .await
            .map_err(unavailable)
    }

    fn connection(&self) -> Result<Arc<Connection>, BusError> {
        self.shared
            .live
            .borrow()
            .as_ref()
            .map(|l| l.conn.clone())
            .ok_or_else(disconnected)
    }

    /// The confirm-mode channel, re-opened if the broker closed it (a channel-level error
    /// closes only that channel, not the connection).
    async fn publisher(&self) -> Result<Channel, BusError> {
        let current = || self.shared.live.borrow().clone().ok_or_else(disconnected);
        let live = current()?;
        if live.publisher.status().connected() {
            return Ok(live.publisher);
        }
        let _repairing = self.shared.publisher_repair.lock().await;
        let live = current()?;
        if live.publisher.status().connected() {
            return Ok(live.publisher);
        }
        if !live.conn.status().connected() {
            return Err(disconnected());
        }
        let channel = confirm_channel(&live.conn).await?;
        self.shared.live.send_modify(|l| {
            if let Some(l) = l
                && Arc::ptr_eq(&l.conn, &live.conn)
            {
                l.publisher = channel.clone();
            }
        });
        Ok(channel)
    }
}

fn disconnected() -> BusError {
    BusError::Unavailable("not connected to RabbitMQ (reconnecting)".into())
}

async fn confirm_channel(conn: &Connection) -> Result<Channel, BusError> {
    let channel = conn.create_channel().await.map_err(unavailable)?;
    // Publisher confirms: the broker acks each message once it is stored (replicated, for
    // quorum queues), which is what lets the outbox mark a row as sent.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(unavailable)?;
    Ok(channel)
}

async fn establish(shared: &Shared) -> Result<Live, BusError> {
    let props = ConnectionProperties::default()
        .with_connection_name(LongString::from(shared.source.clone()));
    let conn = Connection::connect(&shared.url, props)
        .await
        .map_err(unavailable)?;
    let publisher = confirm_channel(&conn).await?;
    topology::declare_exchanges(&publisher, &shared.topology).await?;
    Ok(Live {
        conn: Arc::new(conn),
        publisher,
    })
}

async fn supervise(shared: Arc<Shared>, mut live: Live) {
    loop {
        wait_until_lost(&live.conn, &shared.stop).await;
        shared.live.send_replace(None);
        if shared.stop.is_cancelled() {
            if let Err(e) = live.conn.close(200, "shutting down".into()).await {
                tracing::debug!(error = %e, "closing RabbitMQ connection");
            }
            return;
        }
        tracing::warn!("lost the RabbitMQ connection; reconnecting");
        let mut attempt = 0;
        live = loop {
            match establish(&shared).await {
                Ok(l) => break l,
                Err(e) => {
                    let pause = reconnect_delay(attempt);
                    attempt += 1;
                    tracing::warn!(error = %e, ?pause, attempt, "RabbitMQ reconnect failed");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shared.stop.cancelled() => return,
                    }
                }
            }
        };
        tracing::info!(attempts = attempt + 1, "reconnected to RabbitMQ");
        shared.live.send_replace(Some(live.clone()));
    }
}

async fn wait_until_lost(conn: &Connection, stop: &CancellationToken) {
    let mut events = conn.events_listener();
    let mut events_open = true;
    let mut poll = tokio::time::interval(HEALTH_POLL);
    loop {
        if !conn.status().connected() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            event = events.next(), if events_open => match event {
                Some(Event::Error(e)) => tracing::debug!(error = %e, "RabbitMQ connection event"),
                Some(_) => {}
                None => events_open = false,
            },
            _ = poll.tick() => {}
        }
    }
}

#[async_trait]
impl EventBus for RabbitMqBus {
    async fn publish(&self, batch: &[Envelope]) -> Result<(), BusError> {
        self.send(batch).await?.await
    }

    async fn send(&self, batch: &[Envelope]) -> Result<PendingConfirms, BusError> {
        if batch.is_empty() {
            return Ok(Box::pin(std::future::ready(Ok(()))));
        }
        let channel = self.publisher().await?;
        let exchange = short(&self.shared.topology.exchange)?;
        // Publish everything first, then await the confirms: one round trip per batch, not
        // per message.
        let mut pending = Vec::with_capacity(batch.len());
        for envelope in batch {
            let confirm = channel
                .basic_publish(
                    exchange.clone(),
                    short(envelope.routing_key())?,
                    BasicPublishOptions {
                        // A message that reaches no queue, not even the alternate exchange's,
                        // comes back as an error instead of vanishing.
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &envelope.to_json(),
                    headers::properties_for(envelope),
                )
                .await
                .map_err(unavailable)?;
            pending.push((envelope.id().to_owned(), confirm));
        }
        let confirmed = async move {
            for (event_id, confirm) in pending {
                let refused = |reason: String| BusError::Refused {
                    event_id: event_id.clone(),
                    reason,
                };
                match confirm.await.map_err(unavailable)? {
                    Confirmation::Ack(None) => {}
                    Confirmation::Ack(Some(returned)) => {
                        return Err(refused(format!("returned: {}", returned.reply_text)));
                    }
                    Confirmation::Nack(_) => return Err(refused("nacked by the broker".into())),
                    Confirmation::NotRequested => {
                        return Err(BusError::Unavailable(
                            "channel is not in confirm mode".into(),
                        ));
                    }
                }
            }
            Ok(())
        };
        Ok(Box::pin(async move {
            tokio::time::timeout(CONFIRM_TIMEOUT, confirmed)
                .await
                .map_err(|_| {
                    BusError::Unavailable(format!(
                        "no publisher confirm within {CONFIRM_TIMEOUT:?}"
                    ))
                })?
        }))
    }

    async fn subscribe(
        &self,
        sub: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<ConsumerHandle, BusError> {
        sub.validate()?;
        let conn = self.connection()?;
        let ctx = consumer::Context {
            live: self.shared.live.subscribe(),
            topology: self.shared.topology.clone(),
            source: self.shared.source.clone(),
            sub,
            handler,
            stop: self.shared.stop.child_token(),
        };
        let session = consumer::open(&conn, &ctx).await?;
        let stop = ctx.stop.clone();
        let task = tokio::spawn(consumer::run(ctx, session));
        Ok(ConsumerHandle::new(stop, task))
    }
}

#[async_trait]
impl ParkedMessages for RabbitMqBus {
    async fn list_parked(&self, queue: &str, limit: usize) -> Result<Vec<ParkedMessage>, BusError> {
        let conn = self.connection()?;
        parked::list(&conn, queue, limit).await
    }

    async fn replay_parked(&self, queue: &str, which: ReplaySelection) -> Result<usize, BusError> {
        let conn = self.connection()?;
        parked::replay(&conn, queue, &which).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_grows_and_is_capped() {
        assert_eq!(reconnect_delay(0), RECONNECT_BACKOFF_MIN);
        assert_eq!(reconnect_delay(1), RECONNECT_BACKOFF_MIN * 2);
        assert_eq!(reconnect_delay(40), RECONNECT_BACKOFF_MAX);
    }
}
