//! BOPIS with the store API: ready, codes, lockout, partial pickup, expiry, returns.

use omni_order_routing::jobs::PickupExpiry;
use omni_platform::events::names;
use omni_proto::events::v1 as ev;
use omni_proto::orders::v1 as pb;
use tonic::Code;

use crate::support::{Harness, count, metadata, pickup_draft, place, reason};

async fn placed_pickup(h: &Harness, key: &str, lines: &[(&str, i32)]) -> pb::Order {
    for (sku, _) in lines {
        h.inventory.set_stock(sku, "s1", 10);
    }
    h.orders
        .clone()
        .place_order(place(key, pickup_draft("s1", lines)))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap()
}

async fn ready(h: &Harness, order: &pb::Order) -> pb::MarkReadyResponse {
    h.stores
        .clone()
        .mark_ready(pb::MarkReadyRequest {
            store_id: "s1".into(),
            order_id: order.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn confirm(order: &pb::Order, code: &str, key: &str) -> pb::ConfirmPickupRequest {
    pb::ConfirmPickupRequest {
        store_id: "s1".into(),
        order_id: order.id.clone(),
        pickup_code: code.into(),
        lines_taken: vec![],
        idempotency_key: key.into(),
    }
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn bopis_ready_wrong_code_right_code_completes() {
    let h = Harness::start().await;
    let order = placed_pickup(&h, "b1", &[("A", 1)]).await;
    let queue = h
        .stores
        .clone()
        .list_pickups(pb::ListPickupsRequest {
            store_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queue.pickups.len(), 1);
    assert_eq!(queue.pickups[0].status, pb::PickupStatus::ToPrepare as i32);
    let ready = ready(&h, &order).await;
    assert_eq!(ready.pickup_code.len(), 6);
    let events = h
        .wait_events("pickup ready", |e| count(e, names::ORDER_PICKUP_READY) == 1)
        .await;
    let published: ev::OrderPickupReady = events
        .iter()
        .find(|e| e.routing_key() == names::ORDER_PICKUP_READY)
        .unwrap()
        .data_as()
        .unwrap();
    assert_eq!(published.pickup_code, ready.pickup_code);
    // A second MarkReady cannot reveal the code again.
    let err = h
        .stores
        .clone()
        .mark_ready(pb::MarkReadyRequest {
            store_id: "s1".into(),
            order_id: order.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("ORDER_NOT_READYABLE"));

    let err = h
        .stores
        .clone()
        .confirm_pickup(confirm(&order, &wrong(&ready.pickup_code), "c1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err).as_deref(), Some("PICKUP_CODE_MISMATCH"));
    assert_eq!(metadata(&err, "attempts_left").as_deref(), Some("4"));

    let done = h
        .stores
        .clone()
        .confirm_pickup(confirm(&order, &ready.pickup_code, "c2"))
        .await
        .unwrap()
        .into_inner();
    let o = done.order.unwrap();
    assert_eq!(o.status, pb::OrderStatus::PickedUp as i32);
    h.wait_events("fulfilled + completed", |e| {
        count(e, names::ORDER_ALLOCATION_FULFILLED) == 1 && count(e, names::ORDER_COMPLETED) == 1
    })
    .await;
    // Another store cannot see it.
    let err = h
        .stores
        .clone()
        .mark_ready(pb::MarkReadyRequest {
            store_id: "s2".into(),
            order_id: o.id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn five_wrong_codes_lock_the_pickup_for_fifteen_minutes() {
    let h = Harness::start().await;
    let order = placed_pickup(&h, "lock", &[("A", 1)]).await;
    let code = ready(&h, &order).await.pickup_code;
    for i in 0..4 {
        let err = h
            .stores
            .clone()
            .confirm_pickup(confirm(&order, &wrong(&code), &format!("w{i}")))
            .await
            .unwrap_err();
        assert_eq!(reason(&err).as_deref(), Some("PICKUP_CODE_MISMATCH"));
    }
    let err = h
        .stores
        .clone()
        .confirm_pickup(confirm(&order, &wrong(&code), "w5"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("PICKUP_LOCKED"));
    let err = h
        .stores
        .clone()
        .confirm_pickup(confirm(&order, &code, "right-too-early"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("PICKUP_LOCKED"));
    h.clock.advance(chrono::Duration::minutes(16));
    let done = h
        .stores
        .clone()
        .confirm_pickup(confirm(&order, &code, "right"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.order.unwrap().status, pb::OrderStatus::PickedUp as i32);
    h.stop().await;
}

#[tokio::test]
async fn partial_pickup_cancels_and_releases_the_rest() {
    let h = Harness::start().await;
    let order = placed_pickup(&h, "part", &[("A", 1), ("B", 2)]).await;
    let code = ready(&h, &order).await.pickup_code;
    let mut req = confirm(&order, &code, "p");
    req.lines_taken = vec![pb::LineQuantity {
        line_id: "1".into(),
        quantity: 1,
    }];
    let done = h
        .stores
        .clone()
        .confirm_pickup(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.refund.unwrap().minor_units, 2_000);
    let o = done.order.unwrap();
    assert_eq!(o.lines[1].status, pb::OrderLineStatus::Cancelled as i32);
    h.wait_events("release of the rest", |e| {
        count(e, names::ORDER_ALLOCATION_RELEASED) == 1 && count(e, names::ORDER_CANCELLED) == 1
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn uncollected_pickups_expire_once_even_with_two_runners() {
    let h = Harness::start().await;
    let order = placed_pickup(&h, "exp", &[("A", 1)]).await;
    // The flags are stored after PlaceOrder answers; a runner meeting that write's row lock
    // skips the order until its next pass, and this test makes one pass.
    h.confirmations_become(vec![(order.id.clone(), false)])
        .await;
    let ready = ready(&h, &order).await;
    let expiry = PickupExpiry {
        orders: h.app().orders().clone(),
    };
    assert_eq!(
        expiry.run_once(h.clock_now()).await.unwrap(),
        0,
        "not yet due"
    );
    h.clock.advance(chrono::Duration::hours(3));
    let other = PickupExpiry {
        orders: h.app().orders().clone(),
    };
    let (a, b) = tokio::join!(
        expiry.run_once(h.clock_now()),
        other.run_once(h.clock_now())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let o = h.wait_order(&order.id, |_| true).await;
    assert_eq!(o.status, pb::OrderStatus::Cancelled as i32);
    assert!(ready.expires_at.is_some());
    let events = h
        .wait_events("expiry release", |e| {
            count(e, names::ORDER_ALLOCATION_RELEASED) == 1
        })
        .await;
    let released: ev::AllocationReleased = events
        .iter()
        .find(|e| e.routing_key() == names::ORDER_ALLOCATION_RELEASED)
        .unwrap()
        .data_as()
        .unwrap();
    assert_eq!(released.reason, ev::ReleaseReason::PickupExpired as i32);
    h.stop().await;
}

#[tokio::test]
async fn returns_come_back_at_the_store_with_a_refund() {
    let h = Harness::start().await;
    let order = placed_pickup(&h, "ret", &[("A", 2)]).await;
    let code = ready(&h, &order).await.pickup_code;
    h.stores
        .clone()
        .confirm_pickup(confirm(&order, &code, "k"))
        .await
        .unwrap();
    let req = pb::AcceptReturnRequest {
        store_id: "s2".into(),
        order_id: order.id.clone(),
        lines: vec![pb::LineQuantity {
            line_id: "1".into(),
            quantity: 1,
        }],
        reason: "too small".into(),
        idempotency_key: "ret-1".into(),
    };
    let done = h
        .stores
        .clone()
        .accept_return(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.refund.unwrap().minor_units, 1_000);
    assert_eq!(
        done.order.unwrap().status,
        pb::OrderStatus::PartiallyReturned as i32
    );
    let mut too_many = req;
    too_many.idempotency_key = "ret-2".into();
    too_many.lines[0].quantity = 2;
    let err = h.stores.clone().accept_return(too_many).await.unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("QUANTITY_EXCEEDS_RETURNABLE"));
    let events = h
        .wait_events("returned", |e| count(e, names::ORDER_RETURNED) == 1)
        .await;
    let returned: ev::OrderReturned = events
        .iter()
        .find(|e| e.routing_key() == names::ORDER_RETURNED)
        .unwrap()
        .data_as()
        .unwrap();
    assert_eq!(returned.location_id, "s2");
    assert_eq!(returned.return_id, "ret-1");
    h.stop().await;
}
