//! Journey 7: a warehouse written from `docs/asyncapi.yaml` alone — raw AMQP, JSON read by the
//! field names the document gives, no Omni types — gets every fulfilment request exactly once
//! per allocation.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

use crate::support::*;

/// What the warehouse learnt from one message, by AsyncAPI field names.
#[derive(Debug)]
struct Request {
    order_id: String,
    location_id: String,
    lines: usize,
}

fn read(body: &[u8], routing_key: &str, message_id: Option<String>) -> (String, Request) {
    let event: Value = serde_json::from_slice(body).expect("a JSON CloudEvent");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "omni.fulfilment.requested.v1");
    assert_eq!(event["source"], "orders");
    let data = &event["data"];
    let location = data["locationId"]
        .as_str()
        .expect("data.locationId")
        .to_owned();
    assert_eq!(routing_key, format!("fulfilment.requested.{location}"));
    assert_eq!(event["routingkey"], routing_key);
    assert_eq!(event["subject"], data["orderId"], "subject = the order id");
    assert_eq!(
        message_id.as_deref(),
        event["id"].as_str(),
        "message_id = id"
    );
    let allocation = data["allocationId"].as_str().expect("data.allocationId");
    let lines = data["lines"].as_array().expect("data.lines");
    assert!(lines.iter().all(|l| {
        l["quantity"].as_i64().unwrap_or(0) > 0
            || l["quantity"]
                .as_str()
                .and_then(|q| q.parse::<i64>().ok())
                .unwrap_or(0)
                > 0
    }));
    (
        allocation.to_owned(),
        Request {
            order_id: data["orderId"].as_str().expect("data.orderId").to_owned(),
            location_id: location,
            lines: lines.len(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_only_warehouse_gets_each_allocation_once() {
    let system = System::start().await;
    let exchange = system.exchange.clone().expect("a RabbitMQ system");
    let conn = Connection::connect(
        &omni_platform::testkit::amqp_url(),
        ConnectionProperties::default(),
    )
    .await
    .expect("AMQP connection");
    let channel = conn.create_channel().await.expect("channel");
    let queue = format!("{exchange}.wms-contract");
    // Exclusive: this connection's own queue, gone with it whatever happens to the test.
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "fulfilment.requested.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let mut deliveries = channel
        .basic_consume(
            queue.as_str().into(),
            "wms-contract".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");

    system.warehouse("wh-north", (31.3500, 121.4000)).await;
    system.warehouse("wh-south", (31.0500, 121.5000)).await;
    system.pool("web", &["wh-north", "wh-south"]).await;
    system.receive("lamp", "wh-north", 10).await;
    system.receive("rug", "wh-south", 10).await;

    let mut expected = BTreeMap::new();
    for lines in [
        vec![line("lamp", 1, 12_000)],
        vec![line("rug", 2, 30_000)],
        // Split: lamps only in the north, rugs only in the south.
        vec![line("lamp", 1, 12_000), line("rug", 1, 30_000)],
    ] {
        let order = system
            .place(draft("web", None, lines, ship_to(CUSTOMER)))
            .await
            .expect("placed");
        for a in order.allocations {
            expected.insert(a.allocation_id, (order.id.clone(), a.location_id));
        }
    }
    assert_eq!(expected.len(), 4);

    let mut seen: BTreeMap<String, Request> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + EVENTUAL;
    while seen.len() < expected.len() {
        let delivery = tokio::time::timeout_at(deadline, deliveries.next())
            .await
            .unwrap_or_else(|_| {
                panic!("only {} of {} requests arrived", seen.len(), expected.len())
            })
            .expect("consumer open")
            .expect("delivery");
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string());
        let (allocation, request) = read(
            &delivery.data,
            &delivery.routing_key.to_string(),
            message_id,
        );
        delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        assert!(
            seen.insert(allocation.clone(), request).is_none(),
            "allocation {allocation} requested twice"
        );
    }
    for (allocation, request) in &seen {
        let (order, location) = expected.get(allocation).expect("a known allocation");
        assert_eq!((&request.order_id, &request.location_id), (order, location));
        assert!(request.lines >= 1);
    }

    // A marker order published after all of the above: a duplicate of an earlier request
    // would have to overtake it through the one outbox relay, so it arriving next with nothing
    // before it is the "exactly once".
    let marker = system
        .place(draft(
            "web",
            None,
            vec![line("lamp", 1, 12_000)],
            ship_to(CUSTOMER),
        ))
        .await
        .expect("marker placed");
    let delivery = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
        .await
        .expect("marker request arrives")
        .expect("consumer open")
        .expect("delivery");
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.to_string());
    let (allocation, _) = read(
        &delivery.data,
        &delivery.routing_key.to_string(),
        message_id,
    );
    assert_eq!(
        allocation, marker.allocations[0].allocation_id,
        "no duplicate before it"
    );
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .expect("ack");

    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    system.shutdown().await;
}
