use std::sync::Arc;

use omni_platform::events::{EventBus, ParkedMessages};

use super::{contract, support::Rabbit, support::event};

#[tokio::test]
async fn rabbitmq_bus_honours_the_contract() {
    let mut rabbit = Rabbit::new().await;
    let queues = [
        rabbit.queue("ack"),
        rabbit.queue("retry"),
        rabbit.queue("bystander"),
        rabbit.queue("reject"),
    ];
    let bus = Arc::new(rabbit.bus.clone());
    contract::run_all(bus, [&queues[0], &queues[1], &queues[2], &queues[3]]).await;
    rabbit.cleanup().await;
}

#[tokio::test]
async fn unroutable_events_are_confirmed_and_kept() {
    let rabbit = Rabbit::new().await;
    // No queue is bound at all: the alternate exchange keeps it, so the confirm is an ack.
    rabbit
        .bus
        .publish(&[event("order.placed", 1)])
        .await
        .unwrap();
    rabbit.cleanup().await;
}

#[tokio::test]
async fn listing_an_unknown_queue_is_a_caller_error() {
    let rabbit = Rabbit::new().await;
    let err = rabbit
        .bus
        .list_parked("test.nope.never", 5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, omni_platform::events::BusError::Invalid(_)),
        "{err}"
    );
    rabbit.cleanup().await;
}
