//! Per-test queue names on a shared broker.
//!
//! Queue names are broker-wide, and inventory hard-codes its `inventory.stock-effects` (member
//! and order-routing take theirs from `Infra`). Two tests declaring the same queue
//! with different dead-letter exchanges would fail (PRECONDITION_FAILED), and two tests sharing
//! one queue would steal each other's events; so the harness hands each service a bus that
//! prefixes every queue it subscribes with the test's tag and remembers it for tear-down.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use omni_platform::events::{
    BusError, ConsumerHandle, Envelope, EventBus, EventHandler, Subscription,
};

/// The queues declared through any [`NamespacedBus`] of one test.
#[derive(Clone, Default)]
pub struct QueueLog(Arc<Mutex<Vec<String>>>);

impl QueueLog {
    fn record(&self, queue: &str) {
        let mut names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !names.iter().any(|n| n == queue) {
            names.push(queue.to_owned());
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct NamespacedBus {
    inner: Arc<dyn EventBus>,
    prefix: String,
    log: QueueLog,
}

impl NamespacedBus {
    pub fn new(inner: Arc<dyn EventBus>, prefix: &str, log: QueueLog) -> Self {
        Self {
            inner,
            prefix: prefix.to_owned(),
            log,
        }
    }
}

#[async_trait]
impl EventBus for NamespacedBus {
    async fn publish(&self, batch: &[Envelope]) -> Result<(), BusError> {
        self.inner.publish(batch).await
    }

    async fn subscribe(
        &self,
        mut sub: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<ConsumerHandle, BusError> {
        sub.queue = format!("{}.{}", self.prefix, sub.queue);
        self.log.record(&sub.queue);
        self.inner.subscribe(sub, handler).await
    }
}
