//! WMS events through the `orders.warehouse` consumer.

use omni_platform::events::{Envelope, names};
use omni_proto::events::v1 as ev;
use omni_proto::orders::v1 as pb;

use crate::support::{Harness, count, place, ship_draft};

pub fn dispatched(order: &pb::Order) -> Envelope {
    Envelope::new(
        "wms",
        names::WAREHOUSE_SHIPMENT_DISPATCHED,
        &order.id,
        ev::ShipmentDispatched {
            order_id: order.id.clone(),
            allocation_id: order.allocations[0].allocation_id.clone(),
            location_id: order.allocations[0].location_id.clone(),
            carrier: "SF".into(),
            tracking_number: "SF123".into(),
            tracking_url: String::new(),
            dispatched_at: None,
        },
    )
    .unwrap()
}

fn delivered(order: &pb::Order) -> Envelope {
    Envelope::new(
        "wms",
        names::WAREHOUSE_SHIPMENT_DELIVERED,
        &order.id,
        ev::ShipmentDelivered {
            order_id: order.id.clone(),
            allocation_id: order.allocations[0].allocation_id.clone(),
            carrier: "SF".into(),
            tracking_number: "SF123".into(),
            delivered_at: None,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn dispatched_then_delivered_completes_the_order_once() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    let order = h
        .orders
        .clone()
        .place_order(place("wms", ship_draft(&[("A", 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let d = dispatched(&order);
    h.publish(d.clone()).await;
    let shipped = h
        .wait_order(&order.id, |o| o.status == pb::OrderStatus::Shipped as i32)
        .await;
    assert_eq!(
        shipped.allocations[0]
            .tracking
            .as_ref()
            .unwrap()
            .tracking_number,
        "SF123"
    );
    // A redelivery of the same event has no second effect.
    h.publish(d).await;
    h.publish(delivered(&order)).await;
    h.wait_order(&order.id, |o| o.status == pb::OrderStatus::Delivered as i32)
        .await;
    let events = h
        .wait_events("committed + completed", |e| {
            count(e, names::ORDER_ALLOCATION_FULFILLED) == 1
                && count(e, names::ORDER_COMPLETED) == 1
        })
        .await;
    let fulfilled: ev::AllocationFulfilled = events
        .iter()
        .find(|e| e.routing_key() == names::ORDER_ALLOCATION_FULFILLED)
        .unwrap()
        .data_as()
        .unwrap();
    assert_eq!(fulfilled.reservation_id, format!("order:{}", order.id));
    assert_eq!(count(&events, names::ORDER_ALLOCATION_FULFILLED), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_delivery_before_its_dispatch_waits_for_it() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    let order = h
        .orders
        .clone()
        .place_order(place("early", ship_draft(&[("A", 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    h.publish(delivered(&order)).await;
    h.publish(dispatched(&order)).await;
    h.wait_order(&order.id, |o| o.status == pb::OrderStatus::Delivered as i32)
        .await;
    h.stop().await;
}
