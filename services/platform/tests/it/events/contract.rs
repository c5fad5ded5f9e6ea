//! The bus contract, written once and run against every adapter.

use std::{collections::HashSet, sync::Arc, time::Duration};

use omni_platform::events::{EventBus, ParkedMessages, ReplaySelection, Subscription};

use super::support::{ACK, REJECT, RETRY, Recorder, event, eventually, flush};

pub trait Bus: EventBus + ParkedMessages {}
impl<T: EventBus + ParkedMessages> Bus for T {}

fn sub(queue: &str, binding: &str, max_deliveries: u32) -> Subscription {
    Subscription {
        queue: queue.to_owned(),
        bindings: vec![binding.to_owned()],
        prefetch: 1,
        max_deliveries,
        retry_backoff: Duration::from_millis(10),
    }
}

/// Published with confirms, consumed, acked once: a new consumer on the same queue gets only
/// what came after.
pub async fn publish_consume_ack(bus: &dyn Bus, queue: &str) {
    let recorder = Recorder::new(ACK);
    let consumer = bus
        .subscribe(sub(queue, "order.#", 3), recorder.clone())
        .await
        .unwrap();
    let batch: Vec<_> = (0..5).map(|n| event("order.placed", n)).collect();
    bus.publish(&batch).await.unwrap();
    // Not bound: must not arrive.
    bus.publish(&[event("member.tier.changed", 9)])
        .await
        .unwrap();
    flush(bus, &recorder, "order.flush").await;
    let ids: Vec<String> = batch.iter().map(|e| e.id().to_owned()).collect();
    let handled = recorder.handled();
    assert_eq!(
        &handled[..5],
        &ids[..],
        "in order, each once, nothing unbound"
    );
    assert_eq!(handled.len(), 6);
    consumer.shutdown().await;

    let again = Recorder::new(ACK);
    let consumer = bus
        .subscribe(sub(queue, "order.#", 3), again.clone())
        .await
        .unwrap();
    flush(bus, &again, "order.flush").await;
    assert_eq!(again.handled().len(), 1, "acked events are not redelivered");
    consumer.shutdown().await;
}

/// A failing handler is retried `max_deliveries` times, then parked; listing does not
/// consume it; replay brings it back to this queue only.
pub async fn retried_then_parked_then_replayed(bus: &dyn Bus, queue: &str, other_queue: &str) {
    let recorder = Recorder::new(RETRY);
    let bystander = Recorder::new(ACK);
    let consumer = bus
        .subscribe(sub(queue, "order.*", 3), recorder.clone())
        .await
        .unwrap();
    let other = bus
        .subscribe(sub(other_queue, "order.*", 3), bystander.clone())
        .await
        .unwrap();
    let poison = event("order.cancelled", 1);
    bus.publish(std::slice::from_ref(&poison)).await.unwrap();

    eventually("the failing event is parked", || async {
        !bus.list_parked(queue, 10).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(
        recorder.deliveries_of(poison.id()),
        3,
        "exactly max_deliveries tries"
    );
    let parked = bus.list_parked(queue, 10).await.unwrap();
    assert_eq!(parked.len(), 1, "listing leaves it parked: {parked:?}");
    assert_eq!(parked[0].event_id, poison.id());
    assert_eq!(parked[0].envelope.as_ref(), Some(&poison));
    assert_eq!(
        parked[0].envelope.as_ref().unwrap().routing_key(),
        "order.cancelled"
    );

    recorder.set_mode(ACK);
    let replayed = bus
        .replay_parked(
            queue,
            ReplaySelection::Ids(HashSet::from([poison.id().to_owned()])),
        )
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    eventually("the replayed event is handled", || {
        let done = recorder.handled_count(poison.id()) == 1;
        async move { done }
    })
    .await;
    assert!(bus.list_parked(queue, 10).await.unwrap().is_empty());
    flush(bus, &bystander, "order.flush").await;
    assert_eq!(
        bystander.handled_count(poison.id()),
        1,
        "replay goes to the parked queue only"
    );
    consumer.shutdown().await;
    other.shutdown().await;
}

/// `Reject` parks at once, without retries; replay of other ids leaves it there.
pub async fn rejected_is_parked_at_once(bus: &dyn Bus, queue: &str) {
    let recorder = Recorder::new(REJECT);
    let consumer = bus
        .subscribe(sub(queue, "fulfilment.requested.*", 5), recorder.clone())
        .await
        .unwrap();
    let e = event("fulfilment.requested.wh-1", 1);
    bus.publish(std::slice::from_ref(&e)).await.unwrap();
    eventually("the rejected event is parked", || async {
        bus.list_parked(queue, 10).await.unwrap().len() == 1
    })
    .await;
    assert_eq!(recorder.deliveries_of(e.id()), 1);
    let n = bus
        .replay_parked(
            queue,
            ReplaySelection::Ids(HashSet::from(["other".to_owned()])),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(bus.list_parked(queue, 10).await.unwrap().len(), 1);
    recorder.set_mode(ACK);
    assert_eq!(
        bus.replay_parked(queue, ReplaySelection::All)
            .await
            .unwrap(),
        1
    );
    eventually("replayed after reject", || {
        let done = recorder.handled_count(e.id()) == 1;
        async move { done }
    })
    .await;
    consumer.shutdown().await;
}

pub async fn run_all(bus: Arc<dyn Bus>, queues: [&str; 4]) {
    publish_consume_ack(bus.as_ref(), queues[0]).await;
    retried_then_parked_then_replayed(bus.as_ref(), queues[1], queues[2]).await;
    rejected_is_parked_at_once(bus.as_ref(), queues[3]).await;
}
