//! The PlaceOrder saga and its hazards (ARCHITECTURE §3), with injected failures.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use omni_platform::events::names;
use omni_proto::common::v1 as common;
use omni_proto::orders::v1 as pb;
use omni_types::OrderId;
use tokio::sync::Semaphore;
use tonic::Code;

use crate::support::{Harness, count, place, reason, ship_draft};

fn order_id(o: &pb::Order) -> OrderId {
    OrderId::parse(&o.id).unwrap()
}

#[tokio::test]
async fn places_a_ship_order_publishes_and_confirms() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    let order = h
        .orders
        .clone()
        .place_order(place("k1", ship_draft(&[("A", 2)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status, pb::OrderStatus::Allocated as i32);
    assert_eq!(order.allocations.len(), 1);
    assert_eq!(order.allocations[0].location_id, "w1");
    assert_eq!(order.reservation_id, format!("order:{}", order.id));
    let r = h.inventory.reservation(order_id(&order)).unwrap();
    assert!(
        r.confirmed,
        "the saga confirms the reservation once the order is durable"
    );
    let events = h
        .wait_events("placed + fulfilment", |e| {
            count(e, names::ORDER_PLACED) == 1 && count(e, "fulfilment.requested.w1") == 1
        })
        .await;
    let placed = events
        .iter()
        .find(|e| e.routing_key() == names::ORDER_PLACED)
        .unwrap();
    assert_eq!(placed.sequence(), Some(1));
    // A replay returns the same order; another draft under the key is ALREADY_EXISTS.
    let again = h
        .orders
        .clone()
        .place_order(place("k1", ship_draft(&[("A", 2)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(again.id, order.id);
    let err = h
        .orders
        .clone()
        .place_order(place("k1", ship_draft(&[("A", 3)])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(h.inventory.held_total(), 2);
    assert_eq!(
        h.stored_confirmations().await,
        vec![(order.id.clone(), false)],
        "the cleared flags are stored"
    );
    h.stop().await;
}

#[tokio::test]
async fn orders_placed_together_all_store_their_cleared_flags() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 100);
    // Placed at once, their flags are written together, in the statements of a few batches.
    let placing: Vec<_> = (0..24)
        .map(|i| {
            let mut client = h.orders.clone();
            tokio::spawn(async move {
                client
                    .place_order(place(&format!("together-{i}"), ship_draft(&[("A", 1)])))
                    .await
            })
        })
        .collect();
    let mut placed = Vec::new();
    for p in placing {
        placed.push(p.await.unwrap().unwrap().into_inner().order.unwrap().id);
    }
    // Every order's cleared flags are stored.
    h.confirmations_become(placed.into_iter().map(|id| (id, false)).collect())
        .await;
    h.stop().await;
}

#[tokio::test]
async fn clearing_the_flags_writes_the_column_and_loading_believes_it() {
    use sea_orm::{ConnectionTrait, Statement};
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    let placed = h
        .orders
        .clone()
        .place_order(place("cleared", ship_draft(&[("A", 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let id = order_id(&placed);
    h.confirmations_become(vec![(placed.id.clone(), false)])
        .await;
    let db = h.app().orders().db();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT document FROM orders WHERE id = $1",
            [placed.id.clone().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let document: serde_json::Value =
        serde_json::from_str(&row.try_get::<String>("", "document").unwrap()).unwrap();
    assert_eq!(
        document["unconfirmed"]["reservation"], true,
        "the document stays as the insert wrote it"
    );
    let loaded = omni_order_routing::store::orders::load(db, id.as_uuid())
        .await
        .unwrap()
        .unwrap();
    assert!(!loaded.confirmations_pending(), "{:?}", loaded.unconfirmed);
    h.stop().await;
}

#[tokio::test]
async fn an_order_changed_before_its_confirmation_is_stored_keeps_the_change() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    let gate = Arc::new(Semaphore::new(0));
    *h.inventory.confirm_gate.lock().unwrap() = Some(gate.clone());
    let mut client = h.orders.clone();
    let placing = tokio::spawn(async move {
        client
            .place_order(place("changed", ship_draft(&[("A", 1)])))
            .await
    });
    // Durable, its confirmation pending: the warehouse dispatches it meanwhile.
    let id = loop {
        if let Some((id, _)) = h.stored_confirmations().await.pop() {
            break id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let order = h.wait_order(&id, |_| true).await;
    h.publish(crate::warehouse::dispatched(&order)).await;
    h.wait_order(&id, |o| o.status == pb::OrderStatus::Shipped as i32)
        .await;
    gate.add_permits(1);
    let placed = placing.await.unwrap().unwrap().into_inner().order.unwrap();
    assert_eq!(placed.id, id);
    assert!(
        h.inventory
            .reservation(order_id(&placed))
            .unwrap()
            .confirmed
    );
    h.confirmations_become(vec![(id.clone(), false)]).await;
    let stored = h.wait_order(&id, |_| true).await;
    assert_eq!(
        stored.status,
        pb::OrderStatus::Shipped as i32,
        "storing the confirmation kept the dispatch written meanwhile"
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_wire_field_and_writes_nothing() {
    let h = Harness::start().await;
    let mut draft = ship_draft(&[("A", 0)]);
    draft.channel_id = "Web!".into();
    let err = h
        .orders
        .clone()
        .place_order(place("k", draft))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = omni_platform::grpc::status::violations_of(&err)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(
        fields.contains(&"order.channel_id".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"order.lines[0].quantity".to_owned()),
        "{fields:?}"
    );
    assert_eq!(h.inventory.reserve_calls.load(Ordering::SeqCst), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_crash_between_reserve_and_commit_leaves_nothing_and_a_retry_completes() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 1);
    h.crash.0.store(true, Ordering::SeqCst);
    let err = h
        .orders
        .clone()
        .place_order(place("crash", ship_draft(&[("A", 1)])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    h.crash.0.store(false, Ordering::SeqCst);
    // Nothing durable: no order listed, nothing published; only the unconfirmed hold exists.
    let listed = h
        .orders
        .clone()
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.orders.is_empty());
    assert_eq!(h.inventory.held_total(), 1);
    // The crashed attempt still owns the key: a retry now is told to retry later, not success.
    let err = h
        .orders
        .clone()
        .place_order(place("crash", ship_draft(&[("A", 1)])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // Time passes: the hold expires (stock is free again) and the lease runs out.
    h.clock.advance(chrono::Duration::seconds(120));
    assert_eq!(h.inventory.held_total(), 0);
    let order = h
        .orders
        .clone()
        .place_order(place("crash", ship_draft(&[("A", 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status, pb::OrderStatus::Allocated as i32);
    assert!(h.inventory.reservation(order_id(&order)).unwrap().confirmed);
    assert_eq!(h.inventory.held_total(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_retry_after_a_crash_reuses_a_hold_that_is_still_held() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 1);
    h.crash.0.store(true, Ordering::SeqCst);
    h.orders
        .clone()
        .place_order(place("k", ship_draft(&[("A", 1)])))
        .await
        .unwrap_err();
    h.crash.0.store(false, Ordering::SeqCst);
    // Past the lease (30 s) but within the hold (60 s): the held stock is this order's own.
    h.clock.advance(chrono::Duration::seconds(40));
    let order = h
        .orders
        .clone()
        .place_order(place("k", ship_draft(&[("A", 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.allocations[0].location_id, "w1");
    assert_eq!(h.inventory.held_total(), 1, "one hold, not two");
    h.stop().await;
}

#[tokio::test]
async fn member_down_refuses_the_order_and_releases_the_hold() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 3);
    h.member.enroll("+8613800000000", 500);
    h.member.down.store(true, Ordering::SeqCst);
    let mut draft = ship_draft(&[("A", 1)]);
    draft.member = Some(pb::MemberRef {
        member: Some(pb::member_ref::Member::MemberId(
            h.member.members.lock().unwrap()["+8613800000000"].to_string(),
        )),
    });
    draft.points_to_redeem = 100;
    let err = h
        .orders
        .clone()
        .place_order(place("pts", draft.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(h.inventory.held_total(), 0, "the saga released its hold");
    // The key was not burnt: once member is back the same request succeeds.
    h.member.down.store(false, Ordering::SeqCst);
    let order = h
        .orders
        .clone()
        .place_order(place("pts", draft))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.points_redeemed, 100);
    let redemption =
        h.member.redemptions.lock().unwrap()[&uuid::Uuid::parse_str(&order.id).unwrap()];
    assert_eq!(redemption, (100, true));
    h.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_make_one_order_and_never_succeed_early() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 10);
    let gate = Arc::new(Semaphore::new(0));
    *h.inventory.gate.lock().unwrap() = Some(gate.clone());
    let first = {
        let mut client = h.orders.clone();
        tokio::spawn(async move {
            client
                .place_order(place("dup", ship_draft(&[("A", 1)])))
                .await
        })
    };
    // Wait until the first attempt is inside Reserve, holding the key.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.inventory.reserve_calls.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut dups = Vec::new();
    for _ in 0..9 {
        let mut client = h.orders.clone();
        dups.push(tokio::spawn(async move {
            client
                .place_order(place("dup", ship_draft(&[("A", 1)])))
                .await
        }));
    }
    for d in dups {
        let err = d.await.unwrap().unwrap_err();
        assert_eq!(
            err.code(),
            Code::Aborted,
            "an in-flight duplicate must not succeed"
        );
    }
    gate.add_permits(100);
    let order = first.await.unwrap().unwrap().into_inner().order.unwrap();
    let listed = h
        .orders
        .clone()
        .list_orders(pb::ListOrdersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders.len(), 1);
    assert_eq!(listed.orders[0].id, order.id);
    assert_eq!(h.inventory.reserve_calls.load(Ordering::SeqCst), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_lost_race_re_plans_then_fails_with_insufficient_stock() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 2);
    h.inventory.set_stock("A", "s2", 2);
    // Someone takes w1's stock right before our reserve: the re-plan goes to s2.
    h.inventory.steal_before_reserve.store(1, Ordering::SeqCst);
    let order = h
        .orders
        .clone()
        .place_order(place("race", ship_draft(&[("A", 2)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.allocations[0].location_id, "s2");
    // Every attempt loses: after three plans the answer names the line.
    h.inventory.set_stock("B", "w1", 1);
    h.inventory.set_stock("B", "s1", 1);
    h.inventory.set_stock("B", "s2", 1);
    h.inventory.steal_before_reserve.store(3, Ordering::SeqCst);
    let mut draft = ship_draft(&[("B", 1)]);
    draft.lines[0].unit_price = Some(common::Money {
        minor_units: 5,
        currency: "CNY".into(),
    });
    let err = h
        .orders
        .clone()
        .place_order(place("race2", draft))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err).as_deref(), Some("INSUFFICIENT_STOCK"));
    assert_eq!(
        crate::support::metadata(&err, "lines").as_deref(),
        Some("0")
    );
    h.stop().await;
}

#[tokio::test]
async fn unroutable_orders_name_their_lines() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 1);
    let err = h
        .orders
        .clone()
        .place_order(place("u", ship_draft(&[("A", 1), ("Z", 1)])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Nothing anywhere holds Z: a buyer is told it is sold out, with the line named.
    assert_eq!(reason(&err).as_deref(), Some("INSUFFICIENT_STOCK"));
    assert_eq!(
        crate::support::metadata(&err, "lines").as_deref(),
        Some("1")
    );
    // PlanOrder answers the same as a plan, not an error, and reserves nothing.
    let plan = h
        .orders
        .clone()
        .plan_order(pb::PlanOrderRequest {
            order: Some(ship_draft(&[("A", 1)])),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(plan.outcome, pb::PlanOutcome::Routed as i32);
    assert_eq!(plan.allocations[0].location_id, "w1");
    assert_eq!(h.inventory.held_total(), 0);
    h.stop().await;
}

#[tokio::test]
async fn cancel_releases_refunds_and_replays() {
    let h = Harness::start().await;
    h.inventory.set_stock("A", "w1", 5);
    h.inventory.set_stock("B", "w1", 5);
    let order = h
        .orders
        .clone()
        .place_order(place("c", ship_draft(&[("A", 1), ("B", 2)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let cancel = pb::CancelOrderRequest {
        order_id: order.id.clone(),
        lines: vec![pb::LineQuantity {
            line_id: "2".into(),
            quantity: 2,
        }],
        reason: "changed mind".into(),
        idempotency_key: "cancel-1".into(),
    };
    let first = h
        .orders
        .clone()
        .cancel_order(cancel.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.refund.unwrap().minor_units, 2_000);
    let replay = h
        .orders
        .clone()
        .cancel_order(cancel)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.refund.unwrap().minor_units, 2_000);
    let events = h
        .wait_events("release + cancel", |e| {
            count(e, names::ORDER_ALLOCATION_RELEASED) == 1 && count(e, names::ORDER_CANCELLED) == 1
        })
        .await;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e.sequence()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequences increase: {seqs:?}"
    );
    let whole = h
        .orders
        .clone()
        .cancel_order(pb::CancelOrderRequest {
            order_id: order.id.clone(),
            lines: vec![],
            reason: "all".into(),
            idempotency_key: "cancel-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        whole.order.unwrap().status,
        pb::OrderStatus::Cancelled as i32
    );
    let err = h
        .orders
        .clone()
        .cancel_order(pb::CancelOrderRequest {
            order_id: order.id,
            lines: vec![],
            reason: "again".into(),
            idempotency_key: "cancel-3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("ORDER_NOT_CANCELLABLE"));
    h.stop().await;
}

#[tokio::test]
async fn routing_profiles_are_versioned_with_optimistic_concurrency() {
    let h = Harness::start().await;
    let live = h
        .orders
        .clone()
        .get_routing_profile(pb::GetRoutingProfileRequest {
            channel_id: "web".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(live.version, 0, "the built-in default");
    let mut changed = live.clone();
    changed.max_splits = 1;
    let updated = h
        .orders
        .clone()
        .update_routing_profile(pb::UpdateRoutingProfileRequest {
            profile: Some(changed.clone()),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(updated.version, 1);
    assert_eq!(updated.max_splits, 1);
    let err = h
        .orders
        .clone()
        .update_routing_profile(pb::UpdateRoutingProfileRequest {
            profile: Some(changed),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err).as_deref(), Some("VERSION_MISMATCH"));
    h.stop().await;
}
