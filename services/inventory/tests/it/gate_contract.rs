//! The reservation gate's contract, written once over `Arc<dyn ReservationGate>` and run against
//! both adapters (see the `contract!` invocation at the bottom).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use omni_inventory::domain::{
    LineEffect, LineSelection, Reservation, ReservationStatus, StateError, StockLevel,
};
use omni_inventory::reservations::{
    ConvertOutcome, ConvertRequest, FeedEvent, GateError, GateStatus, HoldOutcome, HoldRecord,
    HoldState, RebuildSnapshot, ReservationGate, Shortfall,
};

use crate::support::*;

type Gate = Arc<dyn ReservationGate>;

async fn level(gate: &Gate, s: &str, l: &str) -> StockLevel {
    gate.levels(&[(sku(s), loc(l))]).await.unwrap()[0]
}

async fn stock(gate: &Gate, s: &str, l: &str, on_hand: i64, safety: i64) {
    gate.set_counters(&sku(s), &loc(l), on_hand, safety)
        .await
        .unwrap();
}

fn effect(s: &str, l: &str, qty: u32) -> LineEffect {
    LineEffect {
        sku: sku(s),
        location: loc(l),
        qty,
    }
}

async fn all_or_nothing(gate: Gate) {
    stock(&gate, "A", "s1", 5, 0).await;
    stock(&gate, "B", "s1", 5, 0).await;
    stock(&gate, "C", "s1", 3, 2).await;
    let id = hold_id("c1");
    let outcome = gate
        .reserve(hold(
            id.clone(),
            vec![line("A", "s1", 2), line("B", "s1", 2), line("C", "s1", 2)],
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        HoldOutcome::Insufficient(vec![Shortfall {
            sku: sku("C"),
            location: loc("s1"),
            requested: 2,
            available: 1,
        }])
    );
    for s in ["A", "B", "C"] {
        assert_eq!(level(&gate, s, "s1").await.reserved, 0, "{s} was held");
    }
    assert_eq!(gate.get(&id).await.unwrap(), None);
    assert!(
        gate.pending_older_than(at(10), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_key_named_twice_cannot_oversell(gate: Gate) {
    stock(&gate, "A", "s1", 3, 0).await;
    let outcome = gate
        .reserve(hold(
            hold_id("twice"),
            vec![line("A", "s1", 2), line("A", "s1", 2)],
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        HoldOutcome::Insufficient(vec![Shortfall {
            sku: sku("A"),
            location: loc("s1"),
            requested: 4,
            available: 3,
        }])
    );
    assert_eq!(level(&gate, "A", "s1").await.reserved, 0);
}

async fn a_hold_reports_the_counters_it_left(gate: Gate) {
    stock(&gate, "A", "s1", 10, 1).await;
    stock(&gate, "B", "s1", 4, 0).await;
    let outcome = gate
        .reserve(hold(
            hold_id("levels"),
            vec![line("A", "s1", 2), line("B", "s1", 1), line("A", "s1", 3)],
        ))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        HoldOutcome::Held {
            levels: vec![
                (sku("A"), loc("s1"), StockLevel::new(10, 5, 1)),
                (sku("B"), loc("s1"), StockLevel::new(4, 1, 0)),
            ]
        }
    );
}

async fn duplicate_is_idempotent(gate: Gate) {
    stock(&gate, "A", "s1", 10, 0).await;
    stock(&gate, "B", "s1", 10, 0).await;
    let id = order_id();
    let lines = vec![line("A", "s1", 2), line("B", "s1", 1)];
    let reordered = vec![line("B", "s1", 1), line("A", "s1", 2)];
    assert!(matches!(
        gate.reserve(hold(id.clone(), lines)).await.unwrap(),
        HoldOutcome::Held { .. }
    ));
    assert_eq!(
        gate.reserve(hold(id.clone(), reordered.clone()))
            .await
            .unwrap(),
        HoldOutcome::Duplicate {
            state: HoldState::Pending,
            same_lines: true
        }
    );
    gate.mark_durable(&id).await.unwrap();
    gate.mark_durable(&id).await.unwrap();
    assert_eq!(
        gate.reserve(hold(id.clone(), reordered)).await.unwrap(),
        HoldOutcome::Duplicate {
            state: HoldState::Durable,
            same_lines: true
        }
    );
    assert_eq!(
        gate.reserve(hold(id.clone(), vec![line("A", "s1", 3)]))
            .await
            .unwrap(),
        HoldOutcome::Duplicate {
            state: HoldState::Durable,
            same_lines: false
        }
    );
    assert_eq!(level(&gate, "A", "s1").await.reserved, 2);
    assert_eq!(level(&gate, "B", "s1").await.reserved, 1);
}

async fn concurrent_reserves_never_oversell(gate: Gate) {
    // 60 on hand, 10 safety: 50 sellable.
    stock(&gate, "HOT", "s1", 60, 10).await;
    let attempts = (0..200).map(|i| {
        let gate = gate.clone();
        tokio::spawn(async move {
            gate.reserve(hold(
                hold_id(&format!("buyer-{i}")),
                vec![line("HOT", "s1", 1)],
            ))
            .await
        })
    });
    let outcomes: Vec<HoldOutcome> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let held = outcomes
        .iter()
        .filter(|o| matches!(o, HoldOutcome::Held { .. }))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, HoldOutcome::Insufficient(_)))
        .count();
    assert_eq!((held, refused), (50, 150));
    let level = level(&gate, "HOT", "s1").await;
    assert_eq!(level, StockLevel::new(60, 50, 10));
    assert_eq!(level.available(), 0);
    // reserved equals what the records hold.
    let mut from_records = 0;
    for i in 0..200 {
        if let Some(record) = gate.get(&hold_id(&format!("buyer-{i}"))).await.unwrap() {
            from_records += record.reservation.remaining_on(&sku("HOT"), &loc("s1"));
        }
    }
    assert_eq!(from_records, 50);
}

async fn capacity_is_never_overrun(gate: Gate) {
    stock(&gate, "A", "s1", 1_000, 0).await;
    let attempts = (0..10).map(|_| {
        let gate = gate.clone();
        tokio::spawn(async move {
            let mut request = hold(order_id(), vec![line("A", "s1", 1)]);
            request.capacity = vec![claim("s1", 3)];
            gate.reserve(request).await
        })
    });
    let outcomes: Vec<HoldOutcome> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let held = outcomes
        .iter()
        .filter(|o| matches!(o, HoldOutcome::Held { .. }))
        .count();
    assert_eq!(held, 3);
    assert!(
        outcomes
            .iter()
            .filter(|o| !matches!(o, HoldOutcome::Held { .. }))
            .all(|o| *o == HoldOutcome::CapacityExhausted(vec![loc("s1")]))
    );
    assert_eq!(gate.capacity_used(&loc("s1"), day()).await.unwrap(), 3);
    assert_eq!(level(&gate, "A", "s1").await.reserved, 3);
}

async fn commit_and_release_arithmetic(gate: Gate) {
    stock(&gate, "A", "s1", 10, 0).await;
    stock(&gate, "B", "s1", 10, 0).await;
    let id = order_id();
    gate.reserve(hold(
        id.clone(),
        vec![line("A", "s1", 3), line("B", "s1", 2)],
    ))
    .await
    .unwrap();
    gate.mark_durable(&id).await.unwrap();
    gate.confirm(&id).await.unwrap();

    let err = gate
        .commit(&id, &LineSelection::Lines(vec![line("A", "s1", 4)]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        GateError::InvalidState(StateError::ExceedsRemaining {
            requested: 4,
            remaining: 3,
            ..
        })
    ));
    let err = gate
        .release(&id, &LineSelection::Lines(vec![line("Z", "s1", 1)]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        GateError::InvalidState(StateError::UnknownLine { .. })
    ));
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(10, 3, 0));

    let fx = gate
        .commit(&id, &LineSelection::Lines(vec![line("A", "s1", 2)]))
        .await
        .unwrap();
    assert_eq!(fx, vec![effect("A", "s1", 2)]);
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(8, 1, 0));

    let fx = gate.release(&id, &LineSelection::All).await.unwrap();
    assert_eq!(fx, vec![effect("A", "s1", 1), effect("B", "s1", 2)]);
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(8, 0, 0));
    assert_eq!(level(&gate, "B", "s1").await, StockLevel::new(10, 0, 0));

    let record = gate.get(&id).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        HoldState::Finished(ReservationStatus::Committed)
    );
    assert_eq!(record.reservation.lines[0].committed, 2);
    assert_eq!(record.reservation.lines[0].released, 1);
    assert_eq!(
        gate.commit(&id, &LineSelection::All).await,
        Err(GateError::InvalidState(StateError::InvalidTransition {
            from: ReservationStatus::Committed,
            to: ReservationStatus::Committed
        }))
    );
    assert_eq!(
        gate.commit(&order_id(), &LineSelection::All).await,
        Err(GateError::NotFound)
    );
}

async fn undo_gives_back_a_pending_hold(gate: Gate) {
    stock(&gate, "A", "s1", 5, 0).await;
    let id = order_id();
    let mut request = hold(id.clone(), vec![line("A", "s1", 4)]);
    request.capacity = vec![claim("s1", 2)];
    assert!(matches!(
        gate.reserve(request.clone()).await.unwrap(),
        HoldOutcome::Held { .. }
    ));
    assert_eq!(gate.capacity_used(&loc("s1"), day()).await.unwrap(), 1);

    gate.undo(&id).await.unwrap();
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(5, 0, 0));
    assert_eq!(gate.capacity_used(&loc("s1"), day()).await.unwrap(), 0);
    assert_eq!(gate.get(&id).await.unwrap(), None);
    assert!(
        gate.pending_older_than(at(1_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(gate.due_for_expiry(at(1_000), 10).await.unwrap().is_empty());
    assert_eq!(gate.undo(&id).await, Err(GateError::NotFound));

    // The id was never durable, so a retry may hold it afresh; once durable it cannot be undone.
    assert!(matches!(
        gate.reserve(request).await.unwrap(),
        HoldOutcome::Held { .. }
    ));
    gate.mark_durable(&id).await.unwrap();
    assert_eq!(
        gate.undo(&id).await,
        Err(GateError::InvalidState(StateError::Durable))
    );
    assert_eq!(level(&gate, "A", "s1").await.reserved, 4);
}

async fn convert_keeps_the_units_and_frees_the_hold(gate: Gate) {
    stock(&gate, "A", "s1", 3, 0).await;
    stock(&gate, "B", "s2", 3, 0).await;
    let hold_lines = vec![line("A", "s1", 2), line("B", "s2", 1)];
    let cart = hold_id("cart-9");
    gate.reserve(hold(cart.clone(), hold_lines.clone()))
        .await
        .unwrap();
    gate.mark_durable(&cart).await.unwrap();
    let before = gate
        .levels(&[(sku("A"), loc("s1")), (sku("B"), loc("s2"))])
        .await
        .unwrap();

    let order = order_id();
    let convert = ConvertRequest {
        hold_id: cart.clone(),
        order_id: order.clone(),
        expires_at: Some(at(120)),
        capacity: vec![claim("s1", 5), claim("s2", 5)],
        epoch: EPOCH,
        now: at(30),
    };
    assert_eq!(
        gate.convert(convert.clone()).await.unwrap(),
        ConvertOutcome::Converted
    );
    let after = gate
        .levels(&[(sku("A"), loc("s1")), (sku("B"), loc("s2"))])
        .await
        .unwrap();
    assert_eq!(before, after);

    let record = gate.get(&order).await.unwrap().unwrap();
    assert_eq!(record.state, HoldState::Pending);
    assert_eq!(record.created_at, at(30));
    assert_eq!(record.reservation.expires_at, Some(at(120)));
    assert_eq!(record.reservation.requested_lines(), hold_lines);
    assert_eq!(gate.capacity_used(&loc("s2"), day()).await.unwrap(), 1);
    assert_eq!(gate.get(&cart).await.unwrap(), None);
    assert_eq!(
        gate.due_for_expiry(at(1_000), 10).await.unwrap(),
        vec![order.clone()]
    );

    // The converted hold is gone, so converting again finds nothing; the cart id is free.
    assert_eq!(gate.convert(convert).await, Err(GateError::NotFound));
    assert!(matches!(
        gate.reserve(hold(cart.clone(), vec![line("A", "s1", 1)]))
            .await
            .unwrap(),
        HoldOutcome::Held { .. }
    ));
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(3, 3, 0));

    // A second conversion into the same order is a duplicate, and moves nothing.
    let outcome = gate
        .convert(ConvertRequest {
            hold_id: cart.clone(),
            order_id: order.clone(),
            expires_at: None,
            capacity: vec![],
            epoch: EPOCH,
            now: at(40),
        })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ConvertOutcome::Duplicate {
            state: HoldState::Pending,
            same_lines: false
        }
    );
    assert!(gate.get(&cart).await.unwrap().is_some());
}

async fn stale_epoch_is_refused(gate: Gate) {
    stock(&gate, "A", "s1", 5, 0).await;
    let mut request = hold(hold_id("c"), vec![line("A", "s1", 1)]);
    request.epoch = EPOCH + 1;
    assert_eq!(
        gate.reserve(request).await,
        Err(GateError::EpochMismatch {
            current: Some(EPOCH)
        })
    );
    assert_eq!(level(&gate, "A", "s1").await.reserved, 0);
}

async fn rebuild_replaces_everything(gate: Gate) {
    stock(&gate, "A", "s1", 5, 0).await;
    stock(&gate, "OLD", "s1", 9, 0).await;
    gate.reserve(hold(hold_id("before"), vec![line("A", "s1", 1)]))
        .await
        .unwrap();

    let next = EPOCH + 1;
    assert!(
        gate.begin_rebuild(next, Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert!(
        !gate
            .begin_rebuild(next + 1, Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert_eq!(gate.status().await.unwrap(), GateStatus::Rebuilding);
    let mut during = hold(hold_id("during"), vec![line("A", "s1", 1)]);
    during.epoch = next;
    let refused = gate.reserve(during).await.unwrap_err();
    assert!(matches!(refused, GateError::Unavailable(_)), "{refused:?}");
    assert!(matches!(
        gate.apply_on_hand(&sku("A"), &loc("s1"), 1).await,
        Err(GateError::Unavailable(_))
    ));

    let order = order_id();
    let order_lines = vec![line("B", "s1", 1), line("A", "s1", 2)];
    let mut reservation = Reservation::hold(order.clone(), order_lines.clone(), None);
    reservation.confirm().unwrap();
    let snapshot = RebuildSnapshot {
        epoch: next,
        levels: vec![
            (sku("A"), loc("s1"), StockLevel::new(7, 2, 1)),
            (sku("B"), loc("s1"), StockLevel::new(3, 1, 0)),
        ],
        holds: vec![HoldRecord {
            reservation,
            state: HoldState::Durable,
            epoch: next,
            created_at: at(5),
            capacity: vec![(loc("s1"), day())],
        }],
        capacity: vec![(loc("s1"), day(), 2)],
    };
    assert!(matches!(
        gate.load(RebuildSnapshot {
            epoch: next + 5,
            ..RebuildSnapshot::default()
        })
        .await,
        Err(GateError::EpochMismatch { .. })
    ));
    gate.load(snapshot.clone()).await.unwrap();
    let mut feed = gate.subscribe().await.unwrap();
    gate.finish_rebuild(next).await.unwrap();
    // Watchers are told to take a fresh snapshot.
    let gap = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = feed.next().await {
            if event == FeedEvent::Gap {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        gap,
        Ok(true),
        "no gap after the rebuild within the deadline"
    );
    assert_eq!(
        gate.status().await.unwrap(),
        GateStatus::Ready { epoch: next }
    );

    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(7, 2, 1));
    assert_eq!(level(&gate, "OLD", "s1").await, StockLevel::default());
    assert_eq!(gate.get(&hold_id("before")).await.unwrap(), None);
    assert_eq!(
        gate.get(&order).await.unwrap(),
        Some(snapshot.holds[0].clone())
    );
    assert_eq!(gate.capacity_used(&loc("s1"), day()).await.unwrap(), 2);

    let mut stale = hold(hold_id("after"), vec![line("A", "s1", 1)]);
    assert_eq!(
        gate.reserve(stale.clone()).await,
        Err(GateError::EpochMismatch {
            current: Some(next)
        })
    );
    stale.epoch = next;
    assert!(matches!(
        gate.reserve(stale.clone()).await.unwrap(),
        HoldOutcome::Held { .. }
    ));
    stale.id = hold_id("after-2");
    stale.lines = vec![line("A", "s1", 4)];
    assert!(matches!(
        gate.reserve(stale).await.unwrap(),
        HoldOutcome::Insufficient(_)
    ));
    // The loaded reservation works like any other, and answers a replay of its request.
    let mut replay = hold(order.clone(), order_lines.into_iter().rev().collect());
    replay.epoch = next;
    assert_eq!(
        gate.reserve(replay).await.unwrap(),
        HoldOutcome::Duplicate {
            state: HoldState::Durable,
            same_lines: true
        }
    );
    gate.commit(&order, &LineSelection::All).await.unwrap();
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(5, 1, 1));
    assert_eq!(level(&gate, "B", "s1").await, StockLevel::new(2, 0, 0));
}

async fn expiry_and_orphan_queues(gate: Gate) {
    stock(&gate, "A", "s1", 10, 0).await;
    let (h1, h2, h3) = (hold_id("h1"), hold_id("h2"), hold_id("h3"));
    for (i, id) in [&h1, &h2, &h3].into_iter().enumerate() {
        let mut request = hold(id.clone(), vec![line("A", "s1", 1)]);
        request.now = at(i as i64);
        request.expires_at = Some(at(10 * (i as i64 + 1)));
        gate.reserve(request).await.unwrap();
    }
    gate.confirm(&h3).await.unwrap();

    assert_eq!(
        gate.due_for_expiry(at(15), 10).await.unwrap(),
        vec![h1.clone()]
    );
    assert_eq!(
        gate.due_for_expiry(at(1_000), 10).await.unwrap(),
        vec![h1.clone(), h2.clone()]
    );
    assert_eq!(
        gate.due_for_expiry(at(1_000), 1).await.unwrap(),
        vec![h1.clone()]
    );
    assert_eq!(
        gate.pending_older_than(at(1), 10).await.unwrap(),
        vec![h1.clone(), h2.clone()]
    );
    gate.mark_durable(&h2).await.unwrap();
    assert_eq!(
        gate.pending_older_than(at(100), 10).await.unwrap(),
        vec![h1.clone(), h3.clone()]
    );

    // Not yet due, or confirmed: refused and left alone.
    assert!(matches!(
        gate.expire(&h2, at(15)).await,
        Err(GateError::InvalidState(StateError::NotDue { .. }))
    ));
    assert_eq!(
        gate.expire(&h3, at(1_000)).await,
        Err(GateError::InvalidState(StateError::Confirmed))
    );
    gate.extend(&h2, at(50)).await.unwrap();
    assert_eq!(
        gate.due_for_expiry(at(30), 10).await.unwrap(),
        vec![h1.clone()]
    );

    assert_eq!(
        gate.expire(&h1, at(15)).await.unwrap(),
        vec![effect("A", "s1", 1)]
    );
    let record = gate.get(&h1).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        HoldState::Finished(ReservationStatus::Expired)
    );
    assert!(gate.due_for_expiry(at(30), 10).await.unwrap().is_empty());
    assert_eq!(
        gate.pending_older_than(at(100), 10).await.unwrap(),
        vec![h3]
    );
    assert_eq!(level(&gate, "A", "s1").await.reserved, 2);
}

async fn change_feed_reports_a_reserve(gate: Gate) {
    stock(&gate, "FEED", "s1", 4, 1).await;
    let mut feed = gate.subscribe().await.unwrap();
    gate.reserve(hold(hold_id("watch"), vec![line("FEED", "s1", 2)]))
        .await
        .unwrap();
    let wanted = StockLevel::new(4, 2, 1);
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = feed.next().await {
            if let FeedEvent::Change(change) = event
                && change.sku == sku("FEED")
                && change.level == wanted
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        seen,
        Ok(true),
        "no change for the reserve within the deadline"
    );
}

async fn tombstone_answers_a_late_replay(gate: Gate) {
    stock(&gate, "A", "s1", 5, 0).await;
    let id = order_id();
    let lines = vec![line("A", "s1", 2)];
    gate.reserve(hold(id.clone(), lines.clone())).await.unwrap();
    gate.mark_durable(&id).await.unwrap();
    gate.release(&id, &LineSelection::All).await.unwrap();
    assert_eq!(
        gate.reserve(hold(id.clone(), lines)).await.unwrap(),
        HoldOutcome::Duplicate {
            state: HoldState::Finished(ReservationStatus::Released),
            same_lines: true
        }
    );
    assert_eq!(level(&gate, "A", "s1").await, StockLevel::new(5, 0, 0));
    assert!(
        gate.due_for_expiry(at(10_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn counter_writes_and_bulk_reads(gate: Gate) {
    assert_eq!(
        gate.apply_on_hand(&sku("A"), &loc("s1"), 5).await.unwrap(),
        StockLevel::new(5, 0, 0)
    );
    assert_eq!(
        gate.apply_on_hand(&sku("A"), &loc("s1"), -7).await.unwrap(),
        StockLevel::new(-2, 0, 0)
    );
    assert_eq!(
        gate.set_safety(&sku("A"), &loc("s1"), 3).await.unwrap(),
        StockLevel::new(-2, 0, 3)
    );
    stock(&gate, "B", "s2", 4, 1).await;
    let levels = gate
        .levels(&[
            (sku("B"), loc("s2")),
            (sku("NOPE"), loc("s1")),
            (sku("A"), loc("s1")),
        ])
        .await
        .unwrap();
    assert_eq!(
        levels,
        vec![
            StockLevel::new(4, 0, 1),
            StockLevel::default(),
            StockLevel::new(-2, 0, 3)
        ]
    );
}

/// Generates one test per contract function and adapter.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let gate = crate::support::memory_gate().await;
                    super::$name(gate.gate.clone()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let gate = crate::support::redis_gate().await;
                    super::$name(gate.gate.clone()).await;
                }
            )*
        }
    };
}

contract!(
    all_or_nothing,
    a_key_named_twice_cannot_oversell,
    a_hold_reports_the_counters_it_left,
    duplicate_is_idempotent,
    concurrent_reserves_never_oversell,
    capacity_is_never_overrun,
    commit_and_release_arithmetic,
    undo_gives_back_a_pending_hold,
    convert_keeps_the_units_and_frees_the_hold,
    stale_epoch_is_refused,
    rebuild_replaces_everything,
    expiry_and_orphan_queues,
    change_feed_reports_a_reserve,
    tombstone_answers_a_late_replay,
    counter_writes_and_bulk_reads,
);

/// Redis-only: the tombstone outlives a week, and rejected reservations leave no key behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tombstones_last_a_week_and_rejections_write_nothing() {
    let test_gate = redis_gate().await;
    let gate = test_gate.gate.clone();
    let prefix = test_gate.prefix.clone().unwrap();
    stock(&gate, "A", "s1", 1, 0).await;
    let id = order_id();
    gate.reserve(hold(id.clone(), vec![line("A", "s1", 1)]))
        .await
        .unwrap();
    gate.release(&id, &LineSelection::All).await.unwrap();

    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = ::redis::cmd("TTL")
        .arg(format!("{prefix}:res:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 6 * 24 * 3600, "tombstone ttl {ttl}");

    let keys_before: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = gate
        .reserve(hold(
            hold_id("nope"),
            vec![line("A", "s1", 2), line("Q", "s9", 1)],
        ))
        .await
        .unwrap();
    assert!(matches!(refused, HoldOutcome::Insufficient(ref s) if s.len() == 2));
    let mut keys_after: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut keys_before = keys_before;
    keys_before.sort();
    keys_after.sort();
    assert_eq!(keys_before, keys_after);
}
