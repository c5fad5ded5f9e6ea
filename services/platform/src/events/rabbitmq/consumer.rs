//! One subscription's consumer: manual acks, bounded prefetch, backoff before a retry, and
//! parking through the dead-letter exchange. A failed message is never acked.

use std::sync::Arc;

use futures::StreamExt;
use lapin::{
    Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    },
    types::FieldTable,
};
use tokio::{sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Live, headers, reconnect_delay, short, topology, unavailable};
use crate::events::{
    bus::{BusError, EventHandler, HandlerError, Subscription, retry_delay},
    envelope::Envelope,
    observe::{self, Parked},
    rabbitmq::Topology,
};

pub(super) struct Context {
    pub(super) live: watch::Receiver<Option<Live>>,
    pub(super) topology: Topology,
    pub(super) source: String,
    pub(super) sub: Subscription,
    pub(super) handler: Arc<dyn EventHandler>,
    pub(super) stop: CancellationToken,
}

pub(super) struct Session {
    channel: lapin::Channel,
    consumer: lapin::Consumer,
}

/// Declares the queue (so a new consumer never misses events published after it started)
/// and starts consuming on a channel of its own.
pub(super) async fn open(conn: &Connection, ctx: &Context) -> Result<Session, BusError> {
    let channel = conn.create_channel().await.map_err(unavailable)?;
    topology::declare_consumer(&channel, &ctx.topology, &ctx.sub).await?;
    // Caps unacked messages on this channel: bounds memory and handler concurrency, and leaves
    // the rest of the queue to other replicas.
    channel
        .basic_qos(ctx.sub.prefetch, BasicQosOptions { global: false })
        .await
        .map_err(unavailable)?;
    let tag = format!(
        "{}.{}.{}",
        ctx.source,
        ctx.sub.queue,
        uuid::Uuid::new_v4().simple()
    );
    let consumer = channel
        .basic_consume(
            short(&ctx.sub.queue)?,
            short(&tag)?,
            // Manual acks (no_ack = false): a message is settled only after its handler ran.
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    Ok(Session { channel, consumer })
}

/// Consumes until stopped, re-opening the session whenever the connection comes back.
pub(super) async fn run(mut ctx: Context, first: Session) {
    let mut session = Some(first);
    let mut attempt = 0;
    loop {
        let current = match session.take() {
            Some(s) => s,
            None => {
                let conn = tokio::select! {
                    () = ctx.stop.cancelled() => return,
                    conn = next_connection(&mut ctx.live) => match conn {
                        Some(c) => c,
                        // The bus is gone.
                        None => return,
                    },
                };
                match open(&conn, &ctx).await {
                    Ok(s) => {
                        tracing::info!(queue = %ctx.sub.queue, "consumer resumed");
                        attempt = 0;
                        s
                    }
                    Err(e) => {
                        let pause = reconnect_delay(attempt);
                        attempt += 1;
                        tracing::warn!(queue = %ctx.sub.queue, error = %e, ?pause, "cannot resume consumer");
                        tokio::select! {
                            () = ctx.stop.cancelled() => return,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                }
            }
        };
        consume(current, &ctx).await;
        if ctx.stop.is_cancelled() {
            return;
        }
    }
}

async fn next_connection(live: &mut watch::Receiver<Option<Live>>) -> Option<Arc<Connection>> {
    let current = live
        .wait_for(|l| l.as_ref().is_some_and(|l| l.conn.status().connected()))
        .await
        .ok()?;
    current.as_ref().map(|l| l.conn.clone())
}

async fn consume(session: Session, ctx: &Context) {
    let Session {
        channel,
        mut consumer,
    } = session;
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = ctx.stop.cancelled() => break,
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => log_join(done),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    in_flight.spawn(settle(
                        delivery,
                        ctx.handler.clone(),
                        ctx.sub.clone(),
                        ctx.stop.clone(),
                    ));
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %ctx.sub.queue, error = %e, "consumer interrupted");
                    break;
                }
                None => break,
            },
        }
    }
    if ctx.stop.is_cancelled() {
        // No new deliveries; what is prefetched but not started returns to the queue when the
        // channel closes.
        if let Err(e) = channel
            .basic_cancel(consumer.tag(), BasicCancelOptions::default())
            .await
        {
            tracing::debug!(error = %e, "cancelling consumer");
        }
    }
    while let Some(done) = in_flight.join_next().await {
        log_join(done);
    }
    if let Err(e) = channel.close(200, "consumer stopped".into()).await {
        tracing::debug!(error = %e, "closing consumer channel");
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        // The message stays unacked and is redelivered once the channel closes.
        tracing::error!(error = %e, "event handler panicked");
    }
}

async fn settle(
    delivery: Delivery,
    handler: Arc<dyn EventHandler>,
    sub: Subscription,
    stop: CancellationToken,
) {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    // Quorum queues count earlier deliveries in `x-delivery-count` (absent on the first).
    let earlier = headers::header_int(&headers, "x-delivery-count").unwrap_or(0);
    let this_delivery = u32::try_from(earlier.max(0))
        .unwrap_or(u32::MAX)
        .saturating_add(1);

    let envelope = match Envelope::from_json(&delivery.data) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(queue = %sub.queue, error = %e, "parking a message that is not an envelope");
            observe::parked(&sub.queue, Parked::Malformed);
            nack(&delivery, false).await;
            return;
        }
    };
    let envelope = match (
        envelope.traceparent(),
        headers::header_str(&headers, "traceparent"),
    ) {
        (None, Some(tp)) => envelope.clone().with_traceparent(tp),
        _ => envelope,
    };
    let span = observe::consume_span("rabbitmq", &sub.queue, &envelope, this_delivery);

    match handler.handle(&envelope).instrument(span).await {
        Ok(()) => {
            observe::handled(&sub.queue);
            if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                // Handled but not acked: it will be redelivered, and the inbox makes that a no-op.
                tracing::warn!(event_id = envelope.id(), error = %e, "ack failed");
            }
        }
        Err(HandlerError::Reject(reason)) => {
            tracing::warn!(event_id = envelope.id(), %reason, "handler rejected event; parking it");
            observe::parked(&sub.queue, Parked::Rejected);
            nack(&delivery, false).await;
        }
        Err(HandlerError::Retry(reason)) if this_delivery >= sub.max_deliveries => {
            tracing::warn!(event_id = envelope.id(), %reason, deliveries = this_delivery, "delivery limit reached; parking event");
            observe::parked(&sub.queue, Parked::DeliveryLimit);
            nack(&delivery, false).await;
        }
        Err(HandlerError::Retry(reason)) => {
            let pause = retry_delay(sub.retry_backoff, this_delivery);
            observe::retried(&sub.queue);
            tracing::info!(event_id = envelope.id(), %reason, ?pause, "event will be retried");
            // Back off before the nack so a short outage does not burn every delivery at once;
            // on shutdown give it back at once (the delivery still counts).
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => {}
            }
            nack(&delivery, true).await;
        }
    }
}

/// `requeue = false` dead-letters the message into its parking queue.
async fn nack(delivery: &Delivery, requeue: bool) {
    let options = BasicNackOptions {
        multiple: false,
        requeue,
    };
    if let Err(e) = delivery.acker.nack(options).await {
        // The channel is gone; the broker requeues the message by itself.
        tracing::warn!(error = %e, "nack failed");
    }
}
