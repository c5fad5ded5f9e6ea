use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use omni_types::OrderId;
use uuid::Uuid;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 31, 10, 0, 0).unwrap()
}

fn order(n: u128) -> OrderId {
    OrderId::from(Uuid::from_u128(n))
}

fn cfg() -> LedgerConfig {
    LedgerConfig {
        lot_lifetime_months: 12,
        redemption_hold_secs: 600,
    }
}

fn sum(entries: &[LedgerEntry]) -> Points {
    entries.iter().map(|e| e.points).sum()
}

/// Three lots: 100 earned at t0 (expires 2025-01-31), 50 a month later (2025-02-29 → clamps to
/// 2025-02-28), 30 two months later (2025-03-31).
fn three_lots() -> Ledger {
    let mut ledger = Ledger::new();
    ledger.earn(order(1), 100, t0(), &cfg()).unwrap();
    ledger
        .earn(
            order(2),
            50,
            Utc.with_ymd_and_hms(2024, 2, 29, 10, 0, 0).unwrap(),
            &cfg(),
        )
        .unwrap();
    ledger
        .earn(
            order(3),
            30,
            Utc.with_ymd_and_hms(2024, 3, 31, 10, 0, 0).unwrap(),
            &cfg(),
        )
        .unwrap();
    ledger
}

fn remaining(ledger: &Ledger) -> Vec<Points> {
    ledger.lots().map(|lot| lot.remaining).collect()
}

#[test]
fn earning_creates_a_lot_expiring_n_months_later() {
    let ledger = three_lots();
    let lots: Vec<&Lot> = ledger.lots().collect();
    assert_eq!(
        lots[0].expires_at,
        Utc.with_ymd_and_hms(2025, 1, 31, 10, 0, 0).unwrap()
    );
    assert_eq!(
        lots[1].expires_at,
        Utc.with_ymd_and_hms(2025, 2, 28, 10, 0, 0).unwrap()
    );
    assert_eq!(ledger.balance(), 180);
}

#[test]
fn earning_is_idempotent_per_order_and_checks_points() {
    let mut ledger = three_lots();
    assert_eq!(ledger.earn(order(1), 100, t0(), &cfg()), Ok(vec![]));
    assert!(matches!(
        ledger.earn(order(1), 99, t0(), &cfg()),
        Err(LedgerError::EarnConflict {
            existing: 100,
            requested: 99,
            ..
        })
    ));
    assert_eq!(
        ledger.earn(order(9), 0, t0(), &cfg()),
        Err(LedgerError::NonPositivePoints { points: 0 })
    );
    assert_eq!(
        ledger.earn(order(9), -5, t0(), &cfg()),
        Err(LedgerError::NonPositivePoints { points: -5 })
    );
    assert_eq!(ledger.balance(), 180);
}

#[test]
fn redemption_consumes_oldest_expiring_first() {
    let mut ledger = three_lots();
    let now = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    let entries = ledger.redeem(order(10), 120, now, &cfg()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Redeem);
    assert_eq!(entries[0].points, -120);
    assert_eq!(
        entries[0].lots,
        vec![
            LotMovement {
                lot: LotId(1),
                points: -100
            },
            LotMovement {
                lot: LotId(2),
                points: -20
            },
        ]
    );
    assert_eq!(remaining(&ledger), vec![0, 30, 30]);
    assert_eq!(ledger.balance(), 60);
    let redemption = ledger.redemption(order(10)).unwrap();
    assert_eq!(redemption.status, RedemptionStatus::Pending);
    assert_eq!(redemption.expires_at, now + TimeDelta::seconds(600));
}

#[test]
fn redemption_is_refused_beyond_the_available_balance_and_changes_nothing() {
    let mut ledger = three_lots();
    let now = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    assert_eq!(
        ledger.redeem(order(10), 181, now, &cfg()),
        Err(LedgerError::InsufficientPoints {
            requested: 181,
            available: 180
        })
    );
    // After the first lot expired only 80 are spendable, though the job has not run yet.
    let later = Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap();
    assert_eq!(
        ledger.redeem(order(10), 81, later, &cfg()),
        Err(LedgerError::InsufficientPoints {
            requested: 81,
            available: 80
        })
    );
    assert_eq!(remaining(&ledger), vec![100, 50, 30]);
}

#[test]
fn spending_expires_due_lots_first_in_the_same_operation() {
    let mut ledger = three_lots();
    let later = Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap();
    let entries = ledger.redeem(order(10), 60, later, &cfg()).unwrap();
    assert_eq!(entries[0].kind, EntryKind::Expire);
    assert_eq!(entries[0].points, -100);
    assert_eq!(entries[1].points, -60);
    assert_eq!(remaining(&ledger), vec![0, 0, 20]);
    assert_eq!(ledger.balance(), 20);
}

#[test]
fn redeeming_again_is_idempotent_on_the_order() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 40, t0(), &cfg()).unwrap();
    assert_eq!(ledger.redeem(order(10), 40, t0(), &cfg()), Ok(vec![]));
    assert!(matches!(
        ledger.redeem(order(10), 41, t0(), &cfg()),
        Err(LedgerError::RedemptionConflict {
            existing: 40,
            requested: 41,
            ..
        })
    ));
    assert_eq!(ledger.balance(), 140);
}

#[test]
fn confirm_then_confirm_again_and_confirm_released() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 40, t0(), &cfg()).unwrap();
    let entries = ledger.confirm(order(10), t0()).unwrap();
    assert_eq!(entries[0].kind, EntryKind::RedeemConfirmed);
    assert_eq!(entries[0].points, 0);
    assert_eq!(ledger.confirm(order(10), t0()), Ok(vec![]));
    assert_eq!(
        ledger.confirm(order(11), t0()),
        Err(LedgerError::RedemptionNotFound { order: order(11) })
    );

    ledger.redeem(order(12), 10, t0(), &cfg()).unwrap();
    ledger.release(order(12), t0()).unwrap();
    assert_eq!(
        ledger.confirm(order(12), t0()),
        Err(LedgerError::RedemptionReleased { order: order(12) })
    );
}

#[test]
fn the_sweep_releases_only_holds_that_ran_out() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 120, t0(), &cfg()).unwrap();
    ledger
        .redeem(order(11), 10, t0() + TimeDelta::seconds(300), &cfg())
        .unwrap();
    assert!(
        ledger
            .release_expired_redemptions(t0() + TimeDelta::seconds(599))
            .is_empty()
    );

    let entries = ledger.release_expired_redemptions(t0() + TimeDelta::seconds(600));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::RedeemReleased);
    assert_eq!(entries[0].points, 120);
    // Latest-expiring points come back first.
    assert_eq!(
        entries[0].lots,
        vec![
            LotMovement {
                lot: LotId(2),
                points: 20
            },
            LotMovement {
                lot: LotId(1),
                points: 100
            },
        ]
    );
    assert_eq!(ledger.balance(), 170);
    assert_eq!(
        ledger.redemption(order(10)).unwrap().status,
        RedemptionStatus::Released
    );
    assert_eq!(
        ledger.redemption(order(11)).unwrap().status,
        RedemptionStatus::Pending
    );
    assert_eq!(ledger.release(order(10), t0()), Ok(vec![]));
}

#[test]
fn partial_refund_of_a_confirmed_redemption() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 120, t0(), &cfg()).unwrap();
    ledger.confirm(order(10), t0()).unwrap();
    let entries = ledger.refund(order(10), 30, t0()).unwrap();
    assert_eq!(entries[0].kind, EntryKind::RedeemRefunded);
    assert_eq!(
        entries[0].lots,
        vec![
            LotMovement {
                lot: LotId(2),
                points: 20
            },
            LotMovement {
                lot: LotId(1),
                points: 10
            },
        ]
    );
    assert_eq!(remaining(&ledger), vec![10, 50, 30]);
    assert_eq!(
        ledger.refund(order(10), 91, t0()),
        Err(LedgerError::RefundExceedsRedemption {
            order: order(10),
            requested: 91,
            refundable: 90
        })
    );
    let rest = ledger.release(order(10), t0()).unwrap();
    assert_eq!(rest[0].points, 90);
    assert_eq!(ledger.balance(), 180);
    assert_eq!(
        ledger.redemption(order(10)).unwrap().status,
        RedemptionStatus::Released
    );
}

#[test]
fn points_refunded_into_an_expired_lot_expire_at_once() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 120, t0(), &cfg()).unwrap();
    ledger.confirm(order(10), t0()).unwrap();
    // Lot 1 expired on 2025-01-31; lot 2 is still alive on 2025-02-10.
    let later = Utc.with_ymd_and_hms(2025, 2, 10, 0, 0, 0).unwrap();
    let entries = ledger.release(order(10), later).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, EntryKind::RedeemRefunded);
    assert_eq!(entries[0].points, 120);
    assert_eq!(entries[1].kind, EntryKind::Expire);
    assert_eq!(entries[1].points, -100);
    assert_eq!(
        entries[1].lots,
        vec![LotMovement {
            lot: LotId(1),
            points: -100
        }]
    );
    assert_eq!(remaining(&ledger), vec![0, 50, 30]);
    assert_eq!(ledger.balance(), 80);
}

#[test]
fn expiry_zeroes_due_lots_oldest_first_in_one_entry() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 110, t0(), &cfg()).unwrap();
    assert!(
        ledger
            .expire_lots(Utc.with_ymd_and_hms(2025, 1, 31, 9, 59, 59).unwrap())
            .is_empty()
    );
    let entries = ledger.expire_lots(Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap());
    // Lot 1 is already spent; lot 2 has 40 left.
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].points, -40);
    assert_eq!(
        entries[0].lots,
        vec![LotMovement {
            lot: LotId(2),
            points: -40
        }]
    );
    assert_eq!(ledger.balance(), 30);
    assert!(
        ledger
            .expire_lots(Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap())
            .is_empty()
    );
}

#[test]
fn reversal_takes_the_orders_own_lot_first_and_records_the_shortfall() {
    let mut ledger = three_lots();
    let entries = ledger.reverse(order(2), 60, t0()).unwrap();
    assert_eq!(entries[0].kind, EntryKind::Reverse);
    assert_eq!(entries[0].points, -60);
    assert_eq!(entries[0].shortfall, 0);
    assert_eq!(
        entries[0].lots,
        vec![
            LotMovement {
                lot: LotId(2),
                points: -50
            },
            LotMovement {
                lot: LotId(1),
                points: -10
            },
        ]
    );

    ledger.redeem(order(10), 100, t0(), &cfg()).unwrap();
    assert_eq!(ledger.balance(), 20);
    let entries = ledger.reverse(order(3), 45, t0()).unwrap();
    assert_eq!(entries[0].points, -20);
    assert_eq!(entries[0].shortfall, 25);
    assert_eq!(ledger.balance(), 0);
    let entries = ledger.reverse(order(3), 5, t0()).unwrap();
    assert_eq!((entries[0].points, entries[0].shortfall), (0, 5));
}

#[test]
fn absorb_moves_lots_with_their_dates_and_redemptions() {
    let mut target = Ledger::new();
    target.earn(order(50), 10, t0(), &cfg()).unwrap();
    let mut source = three_lots();
    source.redeem(order(10), 120, t0(), &cfg()).unwrap();
    let (a, b) = (MemberId::new(), MemberId::new());

    let merged = target.absorb(&mut source, a, b, t0()).unwrap();

    assert_eq!(merged.source.points, -60);
    assert_eq!(merged.source.counterpart, Some(a));
    assert_eq!(merged.target.points, 60);
    assert_eq!(merged.target.counterpart, Some(b));
    assert_eq!(target.balance(), 70);
    assert_eq!(source.balance(), 0);
    assert_eq!(source.lots().count(), 0);
    let expiries: Vec<_> = target.lots().map(|l| (l.id, l.expires_at)).collect();
    assert_eq!(expiries.len(), 4);
    assert_eq!(
        expiries[1],
        (
            LotId(2),
            Utc.with_ymd_and_hms(2025, 1, 31, 10, 0, 0).unwrap()
        )
    );
    // The pending redemption came along, pointing at the renumbered lots.
    target.release(order(10), t0()).unwrap();
    assert_eq!(target.balance(), 190);
    target.check_invariants().unwrap();
}

#[test]
fn absorb_refuses_two_redemptions_for_one_order() {
    let mut target = three_lots();
    let mut source = three_lots();
    target.redeem(order(10), 5, t0(), &cfg()).unwrap();
    source.redeem(order(10), 5, t0(), &cfg()).unwrap();
    let before = (target.clone(), source.clone());
    assert_eq!(
        target.absorb(&mut source, MemberId::new(), MemberId::new(), t0()),
        Err(LedgerError::MergeConflict { order: order(10) })
    );
    assert_eq!((target, source), before);
}

#[test]
fn stored_ledgers_round_trip_and_corrupt_rows_are_refused() {
    let mut ledger = three_lots();
    ledger.redeem(order(10), 120, t0(), &cfg()).unwrap();
    let json = serde_json::to_string(&ledger).unwrap();
    assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);

    let mut parts = LedgerParts::from(ledger);
    parts.lots[0].remaining = -1;
    assert!(matches!(
        Ledger::restore(parts.clone()),
        Err(LedgerError::Corrupt(_))
    ));
    parts.lots[0].remaining = 0;
    parts.redemptions[0].refunded = 1;
    assert!(matches!(
        Ledger::restore(parts),
        Err(LedgerError::Corrupt(_))
    ));
}

#[test]
fn entries_sum_to_the_balance_over_a_story() {
    let mut ledger = Ledger::new();
    let mut entries = Vec::new();
    entries.extend(ledger.earn(order(1), 100, t0(), &cfg()).unwrap());
    entries.extend(ledger.redeem(order(2), 70, t0(), &cfg()).unwrap());
    entries.extend(ledger.confirm(order(2), t0()).unwrap());
    entries.extend(ledger.reverse(order(1), 50, t0()).unwrap());
    entries.extend(ledger.refund(order(2), 20, t0()).unwrap());
    entries.extend(ledger.expire_lots(t0() + TimeDelta::days(400)));
    assert_eq!(sum(&entries), ledger.balance());
    assert_eq!(ledger.balance(), 0);
}
