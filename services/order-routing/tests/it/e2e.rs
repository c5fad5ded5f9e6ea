//! Journeys through order-routing and the real inventory service (see `e2e_harness`).

use std::sync::Arc;

use omni_order_routing::jobs::{ConfirmationSweeper, PickupExpiry, SWEEP_GRACE};
use omni_order_routing::service::SagaProbe;
use omni_platform::events::{Envelope, names};
use omni_proto::events::v1 as ev;
use omni_proto::orders::v1 as pb;

use crate::e2e_harness::{E2e, status_is};
use crate::support::{count, pickup_draft, place, reason, ship_draft};

fn data<T: serde::de::DeserializeOwned>(e: &Envelope) -> T {
    e.data_as().unwrap()
}

fn named<'a>(events: &'a [Envelope], name: &'a str) -> impl Iterator<Item = &'a Envelope> {
    events.iter().filter(move |e| e.event_name() == name)
}

fn for_order<'a>(events: &'a [Envelope], name: &'a str, order: &'a str) -> Vec<&'a Envelope> {
    named(events, name)
        .filter(|e| e.subject() == order)
        .collect()
}

async fn place_ok(h: &E2e, key: &str, draft: pb::OrderDraft) -> pb::Order {
    h.orders
        .clone()
        .place_order(place(key, draft))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
}

fn shipment(name: &str, order: &pb::Order, allocation: &pb::Allocation) -> Envelope {
    let (order_id, allocation_id) = (order.id.clone(), allocation.allocation_id.clone());
    if name == names::WAREHOUSE_SHIPMENT_DISPATCHED {
        Envelope::new(
            "wms",
            name,
            &order.id,
            ev::ShipmentDispatched {
                order_id,
                allocation_id,
                location_id: allocation.location_id.clone(),
                carrier: "SF".into(),
                tracking_number: format!("SF-{}", allocation.allocation_id),
                tracking_url: String::new(),
                dispatched_at: None,
            },
        )
        .unwrap()
    } else {
        Envelope::new(
            "wms",
            name,
            &order.id,
            ev::ShipmentDelivered {
                order_id,
                allocation_id,
                carrier: "SF".into(),
                tracking_number: format!("SF-{}", allocation.allocation_id),
                delivered_at: None,
            },
        )
        .unwrap()
    }
}

async fn mark_ready(h: &E2e, store: &str, order: &str) -> String {
    h.stores
        .clone()
        .mark_ready(pb::MarkReadyRequest {
            store_id: store.into(),
            order_id: order.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pickup_code
}

fn confirm(store: &str, order: &str, code: &str, key: &str) -> pb::ConfirmPickupRequest {
    pb::ConfirmPickupRequest {
        store_id: store.into(),
        order_id: order.into(),
        pickup_code: code.into(),
        lines_taken: Vec::new(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn bopis_from_placement_to_handover_commits_the_store_stock() {
    let h = E2e::start().await;
    h.receive("SKU-A", "s1", 5).await;
    let order = place_ok(&h, "bopis-1", pickup_draft("s1", &[("SKU-A", 2)])).await;
    assert_eq!(order.status, pb::OrderStatus::Allocated as i32);
    h.wait_level("SKU-A", "s1", 5, 2).await;
    let seen = h
        .wait_events("fulfilment.requested.s1", |e| {
            count(e, "fulfilment.requested.s1") == 1
        })
        .await;
    let request: ev::FulfilmentRequested = data(
        named(&seen, names::FULFILMENT_REQUESTED)
            .next()
            .expect("fulfilment request"),
    );
    assert_eq!(request.order_id, order.id);
    assert_eq!(request.lines[0].quantity, 2);
    // The saga confirmed the reservation: it no longer expires.
    assert!(h.reservation(&order.reservation_id).await.confirmed);

    let code = mark_ready(&h, "s1", &order.id).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = h
        .stores
        .clone()
        .confirm_pickup(confirm("s1", &order.id, wrong, "pickup-wrong"))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused).as_deref(), Some("PICKUP_CODE_MISMATCH"));
    assert_eq!(
        h.order(&order.id).await.status,
        pb::OrderStatus::ReadyForPickup as i32
    );

    let picked = h
        .stores
        .clone()
        .confirm_pickup(confirm("s1", &order.id, &code, "pickup-right"))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(picked.status, pb::OrderStatus::PickedUp as i32);
    h.wait_level("SKU-A", "s1", 3, 0).await;
    let seen = h
        .wait_events("order.completed", |e| count(e, names::ORDER_COMPLETED) == 1)
        .await;
    let completed: ev::OrderCompleted = data(named(&seen, names::ORDER_COMPLETED).next().unwrap());
    assert_eq!(completed.amount.unwrap().minor_units, 2_000);
    h.stop().await;
}

#[tokio::test]
async fn ship_from_store_is_dispatched_and_delivered() {
    let h = E2e::start().await;
    // Only the store near the customer has it: the store ships.
    h.receive("SKU-A", "s1", 3).await;
    let order = place_ok(&h, "sfs-1", ship_draft(&[("SKU-A", 1)])).await;
    assert_eq!(order.allocations.len(), 1);
    let allocation = &order.allocations[0];
    assert_eq!(allocation.location_id, "s1");
    assert_eq!(allocation.kind, pb::AllocationKind::Ship as i32);
    h.wait_events("fulfilment.requested.s1", |e| {
        count(e, "fulfilment.requested.s1") == 1
    })
    .await;
    h.wait_level("SKU-A", "s1", 3, 1).await;

    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DISPATCHED,
        &order,
        allocation,
    ))
    .await;
    h.wait_order(&order.id, status_is(pb::OrderStatus::Shipped))
        .await;
    h.wait_level("SKU-A", "s1", 2, 0).await;

    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DELIVERED,
        &order,
        allocation,
    ))
    .await;
    h.wait_order(&order.id, status_is(pb::OrderStatus::Delivered))
        .await;
    h.wait_events("order.completed", |e| count(e, names::ORDER_COMPLETED) == 1)
        .await;
    h.stop().await;
}

#[tokio::test]
async fn split_shipment_completes_when_the_last_parcel_is_delivered() {
    let h = E2e::start().await;
    // No single location has both: two parcels.
    h.receive("SKU-A", "w1", 5).await;
    h.receive("SKU-B", "s2", 5).await;
    let order = place_ok(&h, "split-1", ship_draft(&[("SKU-A", 1), ("SKU-B", 2)])).await;
    assert_eq!(order.allocations.len(), 2);
    h.wait_events("both fulfilment requests", |e| {
        count(e, "fulfilment.requested.w1") == 1 && count(e, "fulfilment.requested.s2") == 1
    })
    .await;
    h.wait_level("SKU-A", "w1", 5, 1).await;
    h.wait_level("SKU-B", "s2", 5, 2).await;

    for allocation in &order.allocations {
        h.publish(shipment(
            names::WAREHOUSE_SHIPMENT_DISPATCHED,
            &order,
            allocation,
        ))
        .await;
    }
    h.wait_order(&order.id, status_is(pb::OrderStatus::Shipped))
        .await;
    h.wait_level("SKU-A", "w1", 4, 0).await;
    h.wait_level("SKU-B", "s2", 3, 0).await;

    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DELIVERED,
        &order,
        &order.allocations[0],
    ))
    .await;
    let half = h
        .wait_order(&order.id, |o| {
            o.allocations
                .iter()
                .any(|a| a.status == pb::AllocationStatus::Delivered as i32)
        })
        .await;
    assert_eq!(half.status, pb::OrderStatus::Shipped as i32);
    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DELIVERED,
        &order,
        &order.allocations[1],
    ))
    .await;
    h.wait_order(&order.id, status_is(pb::OrderStatus::Delivered))
        .await;
    let seen = h
        .wait_events("order.completed", |e| count(e, names::ORDER_COMPLETED) == 1)
        .await;
    assert_eq!(for_order(&seen, names::ORDER_COMPLETED, &order.id).len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_uncollected_pickup_expires_and_its_stock_is_released() {
    let h = E2e::start().await;
    h.receive("SKU-A", "s1", 4).await;
    let order = place_ok(&h, "expiry-1", pickup_draft("s1", &[("SKU-A", 3)])).await;
    h.wait_level("SKU-A", "s1", 4, 3).await;
    mark_ready(&h, "s1", &order.id).await;

    let job = PickupExpiry {
        orders: h.app().orders().clone(),
    };
    // The store's hold is one hour: not yet.
    h.clock.advance(chrono::Duration::minutes(59));
    let now = omni_platform::clock::Clock::now(&h.clock);
    job.run_once(now).await.unwrap();
    assert_eq!(
        h.order(&order.id).await.status,
        pb::OrderStatus::ReadyForPickup as i32
    );
    h.clock.advance(chrono::Duration::minutes(2));
    let now = omni_platform::clock::Clock::now(&h.clock);
    job.run_once(now).await.unwrap();
    h.wait_order(&order.id, status_is(pb::OrderStatus::Cancelled))
        .await;
    h.wait_level("SKU-A", "s1", 4, 0).await;
    let seen = h
        .wait_events("order.cancelled", |e| count(e, names::ORDER_CANCELLED) == 1)
        .await;
    let cancelled: ev::OrderCancelled = data(named(&seen, names::ORDER_CANCELLED).next().unwrap());
    assert!(cancelled.whole_order);
    assert_eq!(cancelled.refund_amount.unwrap().minor_units, 3_000);
    h.stop().await;
}

#[tokio::test]
async fn an_in_store_return_puts_the_stock_back_at_that_store() {
    let h = E2e::start().await;
    h.receive("SKU-A", "w1", 5).await;
    let order = place_ok(&h, "return-1", ship_draft(&[("SKU-A", 2)])).await;
    let allocation = &order.allocations[0];
    assert_eq!(allocation.location_id, "w1");
    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DISPATCHED,
        &order,
        allocation,
    ))
    .await;
    h.wait_level("SKU-A", "w1", 3, 0).await;
    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DELIVERED,
        &order,
        allocation,
    ))
    .await;
    h.wait_order(&order.id, status_is(pb::OrderStatus::Delivered))
        .await;

    // Bought online, shipped from the warehouse, brought back to store s2.
    let returned = h
        .stores
        .clone()
        .accept_return(pb::AcceptReturnRequest {
            store_id: "s2".into(),
            order_id: order.id.clone(),
            lines: vec![pb::LineQuantity {
                line_id: order.lines[0].line_id.clone(),
                quantity: 1,
            }],
            reason: "too small".into(),
            idempotency_key: "return-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(returned.refund.unwrap().minor_units, 1_000);
    h.wait_level("SKU-A", "s2", 1, 0).await;
    assert_eq!(h.level("SKU-A", "w1").await.on_hand, 3);
    h.stop().await;
}

#[tokio::test]
async fn ten_concurrent_identical_place_orders_make_one_order() {
    let h = E2e::start().await;
    h.receive("SKU-A", "w1", 10).await;
    let attempts = (0..10).map(|_| {
        let mut client = h.orders.clone();
        async move {
            client
                .place_order(place("same-key", ship_draft(&[("SKU-A", 2)])))
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let mut ids = std::collections::BTreeSet::new();
    for answer in &answers {
        match answer {
            Ok(r) => {
                ids.insert(r.get_ref().order.as_ref().unwrap().id.clone());
            }
            // A duplicate while the first is in flight is told to retry, never a false success.
            Err(s) => assert_eq!(s.code(), tonic::Code::Aborted, "{s:?}"),
        }
    }
    assert_eq!(ids.len(), 1, "{answers:?}");
    // The retry after the first finished gets that same order.
    let again = place_ok(&h, "same-key", ship_draft(&[("SKU-A", 2)])).await;
    assert!(ids.contains(&again.id));
    h.wait_level("SKU-A", "w1", 10, 2).await;
    let listed = h
        .orders
        .clone()
        .list_orders(pb::ListOrdersRequest {
            channel_id: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders.len(), 1);
    h.stop().await;
}

/// Holds the first Reserve of two sagas until both have planned, so both plan on the same
/// last unit and the race is lost every time, not only when the scheduler says so.
struct BothPlanFirst {
    barrier: tokio::sync::Barrier,
    waiting: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl SagaProbe for BothPlanFirst {
    async fn before_reserve(&self, _order: omni_types::OrderId) {
        use std::sync::atomic::Ordering;
        let ticket = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if ticket.is_ok() {
            self.barrier.wait().await;
        }
    }
}

#[tokio::test]
async fn two_buyers_racing_for_the_last_unit_make_one_order() {
    let h = E2e::start_with(Arc::new(BothPlanFirst {
        barrier: tokio::sync::Barrier::new(2),
        waiting: std::sync::atomic::AtomicUsize::new(2),
    }))
    .await;
    h.receive("SKU-LAST", "w1", 1).await;
    let (mut first, mut second) = (h.orders.clone(), h.orders.clone());
    let (a, b) = tokio::join!(
        first.place_order(place("buyer-a", ship_draft(&[("SKU-LAST", 1)]))),
        second.place_order(place("buyer-b", ship_draft(&[("SKU-LAST", 1)]))),
    );
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w.into_inner().order.unwrap(), l),
        other => panic!("expected one order and one refusal, got {other:?}"),
    };
    assert_eq!(lost.code(), tonic::Code::FailedPrecondition, "{lost:?}");
    assert_eq!(
        reason(&lost).as_deref(),
        Some("INSUFFICIENT_STOCK"),
        "{lost:?}"
    );
    assert_eq!(won.status, pb::OrderStatus::Allocated as i32);
    h.wait_level("SKU-LAST", "w1", 1, 1).await;
    h.stop().await;
}

fn released_and_fulfilled_ids(events: &[Envelope], order: &str) -> (Vec<String>, Vec<String>) {
    let released = for_order(events, names::ORDER_ALLOCATION_RELEASED, order)
        .into_iter()
        .map(|e| data::<ev::AllocationReleased>(e).reservation_id)
        .collect();
    let fulfilled = for_order(events, names::ORDER_ALLOCATION_FULFILLED, order)
        .into_iter()
        .map(|e| data::<ev::AllocationFulfilled>(e).reservation_id)
        .collect();
    (released, fulfilled)
}

#[tokio::test]
async fn a_line_the_store_cannot_find_is_rerouted_and_shipped_from_elsewhere() {
    let h = E2e::start().await;
    // s1 is nearest the customer and ships from store; w1 has it too.
    h.receive("SKU-A", "s1", 2).await;
    h.receive("SKU-A", "w1", 5).await;
    let order = place_ok(&h, "reroute-1", ship_draft(&[("SKU-A", 1)])).await;
    assert_eq!(order.allocations[0].location_id, "s1");
    h.wait_level("SKU-A", "s1", 2, 1).await;

    let answer = h
        .stores
        .clone()
        .reject_line(pb::RejectLineRequest {
            store_id: "s1".into(),
            order_id: order.id.clone(),
            line_id: order.lines[0].line_id.clone(),
            quantity: 0,
            reason: "not on the shelf".into(),
            action: pb::RejectAction::Reroute as i32,
            idempotency_key: "reject-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.outcome, pb::RejectOutcome::Rerouted as i32);
    let rerouted = answer.order.unwrap();
    assert_eq!(rerouted.status, pb::OrderStatus::Allocated as i32);
    let live: Vec<_> = rerouted
        .allocations
        .iter()
        .filter(|a| a.status != pb::AllocationStatus::Cancelled as i32)
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].location_id, "w1");
    h.wait_events("fulfilment.requested.w1", |e| {
        count(e, "fulfilment.requested.w1") == 1
    })
    .await;
    // The store's units are released, the warehouse's held under the new reservation.
    h.wait_level("SKU-A", "s1", 2, 0).await;
    h.wait_level("SKU-A", "w1", 5, 1).await;

    h.publish(shipment(
        names::WAREHOUSE_SHIPMENT_DISPATCHED,
        &rerouted,
        live[0],
    ))
    .await;
    h.wait_level("SKU-A", "w1", 4, 0).await;
    let seen = h
        .wait_events("allocation fulfilled", |e| {
            count(e, names::ORDER_ALLOCATION_FULFILLED) == 1
        })
        .await;
    let (released, fulfilled) = released_and_fulfilled_ids(&seen, &order.id);
    assert_eq!(released, vec![order.reservation_id.clone()]);
    assert_eq!(fulfilled.len(), 1);
    assert_ne!(fulfilled[0], order.reservation_id);
    assert!(fulfilled[0].starts_with("order:"));
    // Confirmed after the move: the new hold no longer expires.
    let held = h.reservation(&fulfilled[0]).await;
    assert!(held.confirmed, "{held:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_shortage_at_the_warehouse_reroutes_the_order_to_a_store() {
    let h = E2e::start().await;
    h.receive("SKU-B", "w1", 1).await;
    h.receive("SKU-B", "s2", 3).await;
    let order = place_ok(&h, "shortage-1", ship_draft(&[("SKU-B", 1)])).await;
    assert_eq!(order.allocations[0].location_id, "w1");
    h.wait_level("SKU-B", "w1", 1, 1).await;

    // The last unit is sold at the warehouse's till: inventory reports the shortage.
    h.sell_at_till("SKU-B", "w1", 1).await;
    let moved = h
        .wait_order(&order.id, |o| {
            o.allocations.iter().any(|a| {
                a.location_id == "s2" && a.status == pb::AllocationStatus::Allocated as i32
            })
        })
        .await;
    assert_eq!(moved.status, pb::OrderStatus::Allocated as i32);
    h.wait_level("SKU-B", "w1", 0, 0).await;
    h.wait_level("SKU-B", "s2", 3, 1).await;
    h.wait_events("fulfilment.requested.s2", |e| {
        count(e, "fulfilment.requested.s2") == 1
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn the_sweeper_confirms_a_durable_order_whose_confirmation_was_lost() {
    let h = E2e::start().await;
    h.receive("SKU-A", "w1", 5).await;
    h.peer
        .lose_confirms
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let order = place_ok(&h, "sweep-1", ship_draft(&[("SKU-A", 1)])).await;
    assert!(!h.reservation(&order.reservation_id).await.confirmed);
    h.peer
        .lose_confirms
        .store(false, std::sync::atomic::Ordering::SeqCst);

    let sweeper = ConfirmationSweeper {
        orders: h.app().orders().clone(),
    };
    // Within the grace the order's own saga may still be confirming: left alone.
    let now = omni_platform::clock::Clock::now(&h.clock);
    assert_eq!(sweeper.run_once(now).await.unwrap(), 0);
    h.clock
        .advance(chrono::Duration::from_std(SWEEP_GRACE).unwrap() + chrono::Duration::seconds(1));
    let now = omni_platform::clock::Clock::now(&h.clock);
    assert_eq!(sweeper.run_once(now).await.unwrap(), 1);
    assert!(h.reservation(&order.reservation_id).await.confirmed);
    // Nothing is left owed.
    assert_eq!(sweeper.run_once(now).await.unwrap(), 0);
    h.stop().await;
}
