//! The embedded-mode event bus: RabbitMQ's contract without RabbitMQ, for `omni up` with no
//! `AMQP_URL`. Queues live in memory, so events survive a consumer restart but not a process
//! restart; the outbox still holds anything not yet published.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    bus::{
        BusError, ConsumerHandle, EventBus, EventHandler, HandlerError, ParkedMessage,
        ParkedMessages, ReplaySelection, Subscription, retry_delay,
    },
    envelope::Envelope,
    observe::{self, Parked},
    topic,
};

#[derive(Clone, Default)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// What the alternate exchange would keep: events no queue was bound for.
    unrouted: Mutex<Vec<Envelope>>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    bindings: Vec<String>,
    ready: VecDeque<Message>,
    parked: Vec<ParkedMessage>,
}

struct Message {
    envelope: Envelope,
    /// Deliveries so far, like a quorum queue's `x-delivery-count`.
    deliveries: u32,
}

/// A panicking handler must not take the whole bus down with a poisoned lock; the state it
/// guards is updated in single steps, so it is consistent even then.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Events published while no queue was bound for them.
    pub fn unrouted(&self) -> Vec<Envelope> {
        lock(&self.inner.unrouted).clone()
    }

    fn queue(&self, name: &str) -> Result<Arc<Queue>, BusError> {
        lock(&self.inner.queues)
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::Invalid(format!("queue {name} does not exist")))
    }
}

impl Queue {
    fn push(&self, envelope: Envelope) {
        lock(&self.state).ready.push_back(Message {
            envelope,
            deliveries: 0,
        });
        self.ready.notify_one();
    }

    /// Puts a message that is still being retried back at the head, as a requeue does.
    fn requeue(&self, message: Message) {
        lock(&self.state).ready.push_front(message);
        self.ready.notify_one();
    }

    fn park(&self, message: Message, reason: &str) {
        tracing::warn!(event_id = message.envelope.id(), reason, "event parked");
        let body = message.envelope.to_json_string();
        lock(&self.state).parked.push(ParkedMessage {
            event_id: message.envelope.id().to_owned(),
            envelope: Some(message.envelope),
            body,
            reason: reason.to_owned(),
        });
    }

    async fn next(&self) -> Message {
        loop {
            // Registered before looking, so a push between the look and the wait is not missed.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(mut m) = lock(&self.state).ready.pop_front() {
                m.deliveries += 1;
                return m;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, batch: &[Envelope]) -> Result<(), BusError> {
        let queues: Vec<Arc<Queue>> = lock(&self.inner.queues).values().cloned().collect();
        for envelope in batch {
            let mut routed = false;
            for queue in &queues {
                let bound = lock(&queue.state)
                    .bindings
                    .iter()
                    .any(|b| topic::matches(b, envelope.routing_key()));
                if bound {
                    queue.push(envelope.clone());
                    routed = true;
                }
            }
            if !routed {
                lock(&self.inner.unrouted).push(envelope.clone());
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        sub: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<ConsumerHandle, BusError> {
        sub.validate()?;
        let queue = lock(&self.inner.queues)
            .entry(sub.queue.clone())
            .or_default()
            .clone();
        {
            let mut state = lock(&queue.state);
            for b in &sub.bindings {
                if !state.bindings.contains(b) {
                    state.bindings.push(b.clone());
                }
            }
        }
        let stop = CancellationToken::new();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..sub.prefetch {
            workers.spawn(worker(
                queue.clone(),
                sub.clone(),
                handler.clone(),
                stop.clone(),
            ));
        }
        let task = tokio::spawn(async move { while workers.join_next().await.is_some() {} });
        Ok(ConsumerHandle::new(stop, task))
    }
}

async fn worker(
    queue: Arc<Queue>,
    sub: Subscription,
    handler: Arc<dyn EventHandler>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            m = queue.next() => m,
        };
        let span = observe::consume_span(
            "in-process",
            &sub.queue,
            &message.envelope,
            message.deliveries,
        );
        match handler.handle(&message.envelope).instrument(span).await {
            Ok(()) => observe::handled(&sub.queue),
            Err(HandlerError::Reject(reason)) => {
                observe::parked(&sub.queue, Parked::Rejected);
                queue.park(message, &format!("rejected: {reason}"))
            }
            Err(HandlerError::Retry(reason)) if message.deliveries >= sub.max_deliveries => {
                observe::parked(&sub.queue, Parked::DeliveryLimit);
                queue.park(message, &format!("delivery_limit: {reason}"));
            }
            Err(HandlerError::Retry(reason)) => {
                observe::retried(&sub.queue);
                tracing::debug!(event_id = message.envelope.id(), %reason, "event will be retried");
                let pause = retry_delay(sub.retry_backoff, message.deliveries);
                tokio::select! {
                    () = tokio::time::sleep(pause) => queue.requeue(message),
                    () = stop.cancelled() => { queue.requeue(message); return; }
                }
            }
        }
    }
}

#[async_trait]
impl ParkedMessages for InProcessBus {
    async fn list_parked(&self, queue: &str, limit: usize) -> Result<Vec<ParkedMessage>, BusError> {
        let queue = self.queue(queue)?;
        let state = lock(&queue.state);
        Ok(state.parked.iter().take(limit).cloned().collect())
    }

    async fn replay_parked(&self, queue: &str, which: ReplaySelection) -> Result<usize, BusError> {
        let queue = self.queue(queue)?;
        let replay: Vec<Envelope> = {
            let mut state = lock(&queue.state);
            let (chosen, kept) = std::mem::take(&mut state.parked)
                .into_iter()
                .partition(|p| which.selects(&p.event_id));
            state.parked = kept;
            chosen
                .into_iter()
                .filter_map(|p: ParkedMessage| p.envelope)
                .collect()
        };
        let count = replay.len();
        for envelope in replay {
            queue.push(envelope);
        }
        Ok(count)
    }
}
