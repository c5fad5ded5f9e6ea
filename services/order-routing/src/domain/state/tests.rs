use std::collections::BTreeSet;

use omni_types::OrderId;
use proptest::prelude::*;

use super::*;
use crate::domain::order::{
    AddressInput, FulfilmentInput, OrderDraft, OrderDraftInput, OrderLineInput,
};
use crate::domain::planner::tests::{candidate, loc, profile_with, store, warehouse};
use crate::domain::planner::{self, PlanInput};

use AllocationStatus as S;

fn draft(prices: &[(i64, i64)], fulfilment: FulfilmentInput, points: i64) -> OrderDraft {
    OrderDraft::parse(OrderDraftInput {
        channel: "web".into(),
        member: None,
        lines: prices
            .iter()
            .enumerate()
            .map(|(i, (qty, price))| OrderLineInput {
                sku: format!("S{}", i + 1),
                qty: *qty,
                unit_price_minor: *price,
                currency: "CNY".into(),
            })
            .collect(),
        fulfilment: Some(fulfilment),
        points_to_redeem: points,
        checkout_hold: None,
    })
    .unwrap()
}

fn ship_to() -> FulfilmentInput {
    FulfilmentInput::Ship {
        address: AddressInput {
            recipient: "Han Meimei".into(),
            line1: "2 Huaihai Rd".into(),
            city: "Shanghai".into(),
            country: "CN".into(),
            ..Default::default()
        },
        lat: 31.2,
        lon: 121.4,
    }
}

/// Two lines shipped from two warehouses (line 1 from w-1, line 2 from w-2).
fn split_order(points: i64) -> OrderState {
    let d = draft(&[(2, 1_000), (1, 500)], ship_to(), points);
    let cands = vec![
        candidate(warehouse("w-1", 31.0, 121.0), &[("S1", 9)]),
        candidate(warehouse("w-2", 31.0, 121.0), &[("S2", 9)]),
    ];
    let plan = planner::plan(&PlanInput::from_draft(&d), &cands, &profile_with(|_| {})).unwrap();
    OrderState::place(OrderId::new(), &d, &plan).unwrap().0
}

/// Line 1 at the pickup store, line 2 transferred from w-1.
fn transfer_order() -> OrderState {
    let d = draft(
        &[(1, 1_000), (3, 200)],
        FulfilmentInput::Pickup {
            store: "s-1".into(),
        },
        0,
    );
    let cands = vec![
        candidate(store("s-1", 31.0, 121.0), &[("S1", 9)]),
        candidate(warehouse("w-1", 31.0, 121.0), &[("S2", 9)]),
    ];
    let profile = profile_with(|p| p.allow_transfer_to_store = true);
    let plan = planner::plan(&PlanInput::from_draft(&d), &cands, &profile).unwrap();
    OrderState::place(OrderId::new(), &d, &plan).unwrap().0
}

fn lines(ids: &[u32]) -> BTreeSet<LineId> {
    ids.iter().map(|i| LineId(*i)).collect()
}

#[test]
fn allocation_transition_table() {
    let ship = AllocationKind::Ship;
    let pickup = AllocationKind::Pickup;
    let transfer = AllocationKind::TransferToStore { to: loc("s-1") };
    let allowed = [
        (&ship, S::Allocated, S::Shipped),
        (&ship, S::Shipped, S::Delivered),
        (&ship, S::Delivered, S::Returned),
        (&ship, S::Allocated, S::Cancelled),
        (&pickup, S::Allocated, S::ReadyForPickup),
        (&pickup, S::ReadyForPickup, S::PickedUp),
        (&pickup, S::ReadyForPickup, S::Cancelled),
        (&pickup, S::PickedUp, S::Returned),
        (&transfer, S::Allocated, S::ReceivedAtStore),
        (&transfer, S::ReceivedAtStore, S::ReadyForPickup),
        (&transfer, S::ReceivedAtStore, S::Cancelled),
    ];
    for (kind, from, to) in allowed {
        assert_eq!(check_transition(kind, from, to), Ok(()), "{from} -> {to}");
    }
    let refused = [
        (&ship, S::Allocated, S::Delivered),
        (&ship, S::Shipped, S::Cancelled),
        (&ship, S::Allocated, S::ReadyForPickup),
        (&pickup, S::Allocated, S::PickedUp),
        (&pickup, S::Allocated, S::Shipped),
        (&transfer, S::Allocated, S::ReadyForPickup),
        (&ship, S::Cancelled, S::Allocated),
        (&ship, S::Returned, S::Returned),
        (&pickup, S::ReadyForPickup, S::Returned),
    ];
    for (kind, from, to) in refused {
        assert_eq!(
            check_transition(kind, from, to),
            Err(TransitionError { from, to }),
            "{from} -> {to}"
        );
    }
    let msg = TransitionError {
        from: S::Shipped,
        to: S::ReadyForPickup,
    }
    .to_string();
    assert_eq!(msg, "cannot move from SHIPPED to READY_FOR_PICKUP");
}

#[test]
fn split_shipment_completes_once_both_parcels_arrive() {
    let mut o = split_order(0);
    assert_eq!(o.sequence, 3, "placed + two fulfilment requests");
    assert_eq!(o.status(), OrderStatus::Allocated);
    let e = o.dispatch(AllocationId(1)).unwrap();
    assert!(matches!(
        e[0].kind,
        OrderEventKind::AllocationFulfilled { .. }
    ));
    assert_eq!(o.status(), OrderStatus::InProgress);
    o.dispatch(AllocationId(2)).unwrap();
    assert_eq!(o.status(), OrderStatus::Shipped);
    assert!(o.deliver(AllocationId(1)).unwrap().is_empty());
    let e = o.deliver(AllocationId(2)).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, OrderEventKind::Completed);
    assert_eq!(e[0].sequence, 6);
    assert_eq!(o.status(), OrderStatus::Completed);
}

#[test]
fn refused_transitions_change_nothing() {
    let mut o = split_order(0);
    let before = o.clone();
    let err = o.deliver(AllocationId(1)).unwrap_err();
    assert_eq!(
        err,
        OrderStateError::Transition {
            allocation: AllocationId(1),
            source: TransitionError {
                from: S::Allocated,
                to: S::Delivered
            }
        }
    );
    assert!(err.to_string().contains("ALLOCATED") && err.to_string().contains("DELIVERED"));
    assert_eq!(o, before);
    assert_eq!(
        o.dispatch(AllocationId(9)),
        Err(OrderStateError::UnknownAllocation(AllocationId(9)))
    );
    assert!(matches!(
        o.mark_ready(&loc("s-1")),
        Err(OrderStateError::NotPickedUpHere(_))
    ));
    assert_eq!(o, before);
}

#[test]
fn cancelling_chosen_lines_refunds_their_value_and_releases_their_allocation() {
    let mut o = split_order(100);
    let e = o
        .cancel(Some(&lines(&[2])), CancelReason::Customer)
        .unwrap();
    assert_eq!(e.len(), 2);
    let OrderEventKind::AllocationReleased {
        allocation,
        location,
        lines: released,
    } = &e[0].kind
    else {
        panic!("{e:?}")
    };
    assert_eq!((*allocation, location.as_str()), (AllocationId(2), "w-2"));
    assert_eq!(released[0].qty, 1);
    let OrderEventKind::Cancelled { refund, .. } = &e[1].kind else {
        panic!("{e:?}")
    };
    // Line 2 is 500 of 2,500: a fifth of the 100 points.
    assert_eq!((refund.amount.minor_units, refund.points), (500, 20));
    assert_eq!(o.allocation(AllocationId(2)).unwrap().status, S::Cancelled);
    assert_eq!(o.status(), OrderStatus::Allocated);
    assert_eq!(e[1].sequence, e[0].sequence + 1);

    o.dispatch(AllocationId(1)).unwrap();
    let err = o.cancel(None, CancelReason::Customer).unwrap_err();
    assert!(matches!(
        err,
        OrderStateError::Transition {
            source: TransitionError {
                from: S::Shipped,
                ..
            },
            ..
        }
    ));
}

#[test]
fn whole_cancel_refunds_everything_and_cancels_the_order() {
    let mut o = split_order(7);
    let e = o.cancel(None, CancelReason::Customer).unwrap();
    let refund = e
        .iter()
        .find_map(|e| match &e.kind {
            OrderEventKind::Cancelled { refund, .. } => Some(*refund),
            _ => None,
        })
        .unwrap();
    assert_eq!((refund.amount.minor_units, refund.points), (2_500, 7));
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert!(o.cancel(None, CancelReason::Customer).is_err());
}

#[test]
fn transfer_must_arrive_before_the_pickup_is_ready() {
    let mut o = transfer_order();
    let s1 = loc("s-1");
    assert_eq!(
        o.mark_ready(&s1),
        Err(OrderStateError::TransferPending(AllocationId(2)))
    );
    o.receive_transfer(AllocationId(2)).unwrap();
    let e = o.mark_ready(&s1).unwrap();
    assert_eq!(e[0].kind, OrderEventKind::PickupReady { store: s1.clone() });
    assert_eq!(o.status(), OrderStatus::ReadyForPickup);
    let e = o.confirm_pickup(&s1, None).unwrap();
    assert_eq!(e.last().unwrap().kind, OrderEventKind::Completed);
    assert_eq!(o.status(), OrderStatus::Completed);
}

#[test]
fn partial_pickup_cancels_and_releases_the_lines_left_behind() {
    let mut o = transfer_order();
    let s1 = loc("s-1");
    o.receive_transfer(AllocationId(2)).unwrap();
    o.mark_ready(&s1).unwrap();
    let e = o.confirm_pickup(&s1, Some(&lines(&[1]))).unwrap();
    let kinds: Vec<_> = e.iter().map(|e| &e.kind).collect();
    assert!(
        matches!(kinds[0], OrderEventKind::AllocationReleased { allocation, .. } if *allocation == AllocationId(2))
    );
    assert!(matches!(
        kinds[1],
        OrderEventKind::Cancelled {
            reason: CancelReason::NotCollected,
            refund: Refund { amount, .. },
            ..
        } if amount.minor_units == 600
    ));
    assert!(
        matches!(kinds[2], OrderEventKind::AllocationFulfilled { allocation, .. } if *allocation == AllocationId(1))
    );
    assert_eq!(kinds[3], &OrderEventKind::Completed);
    assert_eq!(o.allocation(AllocationId(2)).unwrap().status, S::Cancelled);
    assert_eq!(o.status(), OrderStatus::Completed);
}

#[test]
fn returns_are_per_unit_and_bounded_by_what_was_received() {
    let mut o = split_order(0);
    let w1 = loc("w-1");
    assert!(matches!(
        o.accept_return(&w1, &[(LineId(1), 1)]),
        Err(OrderStateError::Transition { .. })
    ));
    for a in [1, 2] {
        o.dispatch(AllocationId(a)).unwrap();
        o.deliver(AllocationId(a)).unwrap();
    }
    let e = o.accept_return(&w1, &[(LineId(1), 1)]).unwrap();
    let OrderEventKind::Returned { refund, .. } = &e[0].kind else {
        panic!("{e:?}")
    };
    assert_eq!(refund.amount.minor_units, 1_000);
    assert_eq!(o.status(), OrderStatus::PartiallyReturned);
    assert_eq!(
        o.accept_return(&w1, &[(LineId(1), 2)]),
        Err(OrderStateError::ReturnTooLarge {
            line: LineId(1),
            requested: 2,
            returnable: 1
        })
    );
    assert_eq!(
        o.accept_return(&w1, &[(LineId(7), 1)]),
        Err(OrderStateError::UnknownLine(LineId(7)))
    );
    o.accept_return(&w1, &[(LineId(1), 1), (LineId(2), 1)])
        .unwrap();
    assert_eq!(o.status(), OrderStatus::Returned);
    assert_eq!(o.refunded_minor, o.total_minor);
}

#[test]
fn sequence_numbers_are_contiguous_across_operations() {
    let mut o = split_order(0);
    let mut seen: Vec<u64> = vec![1, 2, 3];
    for e in [
        o.dispatch(AllocationId(1)).unwrap(),
        o.cancel(Some(&lines(&[2])), CancelReason::Customer)
            .unwrap(),
        o.deliver(AllocationId(1)).unwrap(),
    ] {
        seen.extend(e.iter().map(|e| e.sequence));
    }
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected);
    assert_eq!(o.sequence, seen.len() as u64);
}

proptest! {
    /// However the lines are cancelled (one by one, in any order), the refunds add up to exactly
    /// the order total and the points redeemed: pro-rata rounding never loses or invents a point.
    #[test]
    fn refunds_add_up_to_the_order(
        prices in proptest::collection::vec((1i64..5, 0i64..10_000), 1..8),
        points in 0i64..100_000,
        seed in any::<u64>(),
    ) {
        let d = draft(&prices, ship_to(), points);
        let stock: Vec<(String, u32)> = (1..=prices.len()).map(|i| (format!("S{i}"), 9)).collect();
        let refs: Vec<(&str, u32)> = stock.iter().map(|(s, q)| (s.as_str(), *q)).collect();
        let cands = vec![candidate(warehouse("w-1", 31.0, 121.0), &refs)];
        let plan = planner::plan(&PlanInput::from_draft(&d), &cands, &profile_with(|_| {})).unwrap();
        let (mut o, _) = OrderState::place(OrderId::new(), &d, &plan).unwrap();
        let mut ids: Vec<u32> = (1..=prices.len() as u32).collect();
        // A cheap deterministic shuffle driven by the seed.
        ids.sort_by_key(|i| (u64::from(*i)).wrapping_mul(seed | 1).rotate_left(17));
        let (mut money, mut pts) = (0i64, 0u64);
        for id in ids {
            for e in o.cancel(Some(&lines(&[id])), CancelReason::Customer).unwrap() {
                if let OrderEventKind::Cancelled { refund, .. } = e.kind {
                    money += refund.amount.minor_units;
                    pts += refund.points;
                }
            }
        }
        prop_assert_eq!(money, d.total().minor_units);
        prop_assert_eq!(pts, points as u64);
        prop_assert_eq!(o.status(), OrderStatus::Cancelled);
    }
}

#[test]
fn reroute_moves_open_lines_to_a_new_allocation_and_releases_the_old_one() {
    let mut o = split_order(0);
    let before = o.clone();
    let (created, events) = o
        .reroute(&[RerouteTo {
            location: loc("w-3"),
            kind: AllocationKind::Ship,
            lines: vec![LineId(1)],
        }])
        .unwrap();
    assert_eq!(created, vec![AllocationId(3)]);
    assert_eq!(o.lines[0].allocation, AllocationId(3));
    // Line 1 was all that allocation 1 had: it is cancelled, and the order is still whole.
    assert_eq!(o.allocation(AllocationId(1)).unwrap().status, S::Cancelled);
    assert_eq!(o.allocation(AllocationId(3)).unwrap().status, S::Allocated);
    assert_eq!(o.status(), OrderStatus::Allocated);
    assert_eq!(o.refunded_minor, 0);
    let kinds: Vec<_> = events.iter().map(|e| &e.kind).collect();
    assert!(matches!(
        kinds[0],
        OrderEventKind::AllocationReleased { allocation: AllocationId(1), lines, .. } if lines.len() == 1
    ));
    assert!(matches!(
        kinds[1],
        OrderEventKind::FulfilmentRequested { allocation: AllocationId(3), lines, .. } if lines[0].qty == 2
    ));
    assert_eq!(events[1].sequence, before.sequence + 2);

    // A line that already left cannot be re-routed, and nothing changes.
    let mut shipped = before.clone();
    shipped.dispatch(AllocationId(2)).unwrap();
    let snapshot = shipped.clone();
    let to = [RerouteTo {
        location: loc("w-3"),
        kind: AllocationKind::Ship,
        lines: vec![LineId(2)],
    }];
    assert!(shipped.reroute(&to).is_err());
    assert_eq!(shipped, snapshot);
    assert_eq!(
        before.clone().reroute(&[]),
        Err(OrderStateError::NothingSelected)
    );
}
