//! The event bus port: what services publish to and consume from, whatever the broker.
//!
//! Both adapters (RabbitMQ and in-process) honour one contract, checked by the same tests:
//! `publish` is Ok only once every event of the batch is safely stored; a consumer's failed
//! message is never acknowledged as handled: it is retried with backoff up to
//! `max_deliveries` deliveries, then parked, and parked messages can be listed and replayed.

use std::{collections::HashSet, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::envelope::Envelope;

/// Longest pause between two deliveries of a failing message: long enough to ride out a
/// database failover, short enough that a fixed dependency is noticed soon.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached or did not confirm in time: keep the events and retry later.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The broker refused a message (nack, or unroutable return): keep it and retry later; if
    /// it persists the topology is wrong.
    #[error("broker refused event {event_id}: {reason}")]
    Refused { event_id: String, reason: String },
    /// The request itself is wrong (queue name, binding, routing key): fix the caller.
    #[error("invalid bus request: {0}")]
    Invalid(String),
}

/// What a handler tells the bus about an event it could not process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Transient (database down, event arrived before the one it follows): back off, deliver
    /// again; counts toward the delivery limit.
    #[error("retry: {0}")]
    Retry(String),
    /// Poison (undecodable, refers to nothing we know): park at once for an operator.
    #[error("reject: {0}")]
    Reject(String),
}

#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError>;
}

/// A consumer: one durable queue, fed by the bindings, drained by one handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `<short name>.<purpose>`, e.g. `inventory.stock-effects`; also names its parking queue
    /// `<queue>.parked`.
    pub queue: String,
    /// Routing key patterns: `*` is one word, `#` zero or more (`order.#`).
    pub bindings: Vec<String>,
    /// Messages handed out before the first is acknowledged; also the handler concurrency.
    pub prefetch: u16,
    /// Deliveries a message gets (first try included) before it is parked.
    pub max_deliveries: u32,
    /// Pause before the first redelivery; doubles per delivery up to [`MAX_RETRY_BACKOFF`].
    pub retry_backoff: Duration,
}

impl Subscription {
    /// A subscription with defaults fit for a database-backed handler.
    pub fn new(
        queue: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            queue: queue.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 16,
            max_deliveries: 5,
            retry_backoff: Duration::from_secs(1),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BusError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 200
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !name_ok(&self.queue) {
            return Err(BusError::Invalid(format!(
                "queue name {:?} must be 1-200 chars of [a-z0-9._-]",
                self.queue
            )));
        }
        if self.bindings.is_empty() {
            return Err(BusError::Invalid(format!(
                "queue {} has no bindings",
                self.queue
            )));
        }
        for b in &self.bindings {
            let words_ok = b.split('.').all(|w| w == "*" || w == "#" || name_ok(w));
            if b.len() > 255 || !words_ok {
                return Err(BusError::Invalid(format!(
                    "binding {b:?} is not a topic pattern"
                )));
            }
        }
        if self.prefetch == 0 || self.max_deliveries == 0 {
            return Err(BusError::Invalid(format!(
                "queue {}: prefetch and max_deliveries must be at least 1",
                self.queue
            )));
        }
        Ok(())
    }

    pub fn parking_queue(&self) -> String {
        parking_queue(&self.queue)
    }
}

pub fn parking_queue(queue: &str) -> String {
    format!("{queue}.parked")
}

/// Pause before the delivery that follows failed delivery number `delivery` (1-based).
pub fn retry_delay(base: Duration, delivery: u32) -> Duration {
    let doublings = delivery.saturating_sub(1).min(16);
    base.saturating_mul(1u32 << doublings)
        .min(MAX_RETRY_BACKOFF)
}

/// The broker's answer to a batch already sent: Ok once it has stored every event of it.
pub type PendingConfirms = futures::future::BoxFuture<'static, Result<(), BusError>>;

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Ok only after the broker has stored every event of the batch.
    async fn publish(&self, batch: &[Envelope]) -> Result<(), BusError>;

    /// Sends the batch and returns the wait for its confirms, so a caller can send the next
    /// batch while the broker confirms this one. A later call's events go out after this one's.
    async fn send(&self, batch: &[Envelope]) -> Result<PendingConfirms, BusError> {
        self.publish(batch).await?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }

    /// Declares the queue and its bindings, then consumes until the handle is shut down or
    /// dropped. Messages already queued survive a restart of the consumer.
    async fn subscribe(
        &self,
        sub: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<ConsumerHandle, BusError>;
}

/// A message that exhausted its deliveries or was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedMessage {
    /// The event id (AMQP `message_id`); what `replay_parked` selects on.
    pub event_id: String,
    /// The envelope, or `None` if the body was not one (kept in `body`).
    pub envelope: Option<Envelope>,
    /// The raw body, lossily decoded, so an operator can read even a malformed message.
    pub body: String,
    /// Why it was parked (`rejected`, `delivery_limit`), as far as the broker says.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    All,
    Ids(HashSet<String>),
}

impl ReplaySelection {
    pub(crate) fn selects(&self, event_id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.contains(event_id),
        }
    }
}

/// Operator access to parked messages (used by the `omni` CLI).
///
/// Replay sends a message back to the queue it was parked from only, not through the topic
/// exchange: the other consumers of that event already handled it.
#[async_trait]
pub trait ParkedMessages: Send + Sync {
    /// Up to `limit` parked messages of `queue` (the consumer queue, not `.parked`), oldest
    /// first. Reading does not remove them.
    async fn list_parked(&self, queue: &str, limit: usize) -> Result<Vec<ParkedMessage>, BusError>;

    /// Moves the selected parked messages back to `queue` with a fresh delivery count; returns
    /// how many were replayed. A message leaves the parking queue only once it is back in
    /// `queue`.
    async fn replay_parked(&self, queue: &str, which: ReplaySelection) -> Result<usize, BusError>;
}

/// A running consumer. Dropping it stops the consumer; `shutdown` also waits until the
/// messages being handled are settled.
#[derive(Debug)]
pub struct ConsumerHandle {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ConsumerHandle {
    /// For adapters: `task` must finish soon after `stop` is cancelled.
    pub fn new(stop: CancellationToken, task: JoinHandle<()>) -> Self {
        Self {
            stop,
            task: Some(task),
        }
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "event consumer task failed");
        }
    }
}

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(retry_delay(base, 1), base);
        assert_eq!(retry_delay(base, 2), Duration::from_millis(200));
        assert_eq!(retry_delay(base, 4), Duration::from_millis(800));
        assert_eq!(retry_delay(base, 1000), MAX_RETRY_BACKOFF);
        assert_eq!(retry_delay(base, 0), base);
    }

    #[test]
    fn subscription_validation_names_the_problem() {
        assert!(
            Subscription::new("orders.wms", ["warehouse.#"])
                .validate()
                .is_ok()
        );
        assert!(
            Subscription::new("orders.wms", ["fulfilment.requested.*"])
                .validate()
                .is_ok()
        );
        for bad in [
            Subscription::new("Orders", ["a.b"]),
            Subscription::new("", ["a.b"]),
            Subscription::new("q", Vec::<String>::new()),
            Subscription::new("q", ["a..b"]),
            Subscription::new("q", ["a b"]),
            Subscription {
                prefetch: 0,
                ..Subscription::new("q", ["a"])
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(BusError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
