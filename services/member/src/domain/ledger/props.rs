//! Any sequence of operations keeps the balance ≥ 0, equal to the sum of the entries, and every
//! lot's remaining points within `0..=earned`.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use omni_types::OrderId;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Earn(u8, Points),
    Redeem(u8, Points),
    Confirm(u8),
    Release(u8),
    Refund(u8, Points),
    Reverse(u8, Points),
    ExpireLots,
    Sweep,
    Absorb(Vec<Points>),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let order = 0u8..6;
    let points = -5i64..400;
    prop_oneof![
        (order.clone(), points.clone()).prop_map(|(o, p)| Op::Earn(o, p)),
        (order.clone(), points.clone()).prop_map(|(o, p)| Op::Redeem(o, p)),
        order.clone().prop_map(Op::Confirm),
        order.clone().prop_map(Op::Release),
        (order.clone(), points.clone()).prop_map(|(o, p)| Op::Refund(o, p)),
        (order, points).prop_map(|(o, p)| Op::Reverse(o, p)),
        Just(Op::ExpireLots),
        Just(Op::Sweep),
        proptest::collection::vec(1i64..300, 0..3).prop_map(Op::Absorb),
        (0i64..200).prop_map(Op::Advance),
    ]
}

fn order(n: u8) -> OrderId {
    OrderId::from(Uuid::from_u128(u128::from(n) + 1))
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
        let config = LedgerConfig { lot_lifetime_months: 3, redemption_hold_secs: 86_400 };
        let mut ledger = Ledger::new();
        let mut now = start();
        let mut entries: Vec<LedgerEntry> = Vec::new();
        // Orders of absorbed ledgers must not collide with ours: they use ids from 1000 up.
        let mut foreign = 1000u128;
        for op in ops {
            let before = ledger.clone();
            let result = match op {
                Op::Earn(o, p) => ledger.earn(order(o), p, now, &config),
                Op::Redeem(o, p) => ledger.redeem(order(o), p, now, &config),
                Op::Confirm(o) => ledger.confirm(order(o), now),
                Op::Release(o) => ledger.release(order(o), now),
                Op::Refund(o, p) => ledger.refund(order(o), p, now),
                Op::Reverse(o, p) => ledger.reverse(order(o), p, now),
                Op::ExpireLots => Ok(ledger.expire_lots(now)),
                Op::Sweep => Ok(ledger.release_expired_redemptions(now)),
                Op::Absorb(earnings) => {
                    let mut other = Ledger::new();
                    for p in earnings {
                        foreign += 1;
                        other.earn(OrderId::from(Uuid::from_u128(foreign)), p, now, &config)?;
                    }
                    ledger
                        .absorb(&mut other, MemberId::new(), MemberId::new(), now)
                        .map(|merged| vec![merged.target])
                }
                Op::Advance(days) => {
                    now += TimeDelta::days(days);
                    Ok(Vec::new())
                }
            };
            match result {
                Ok(new_entries) => entries.extend(new_entries),
                // A refused operation changes nothing.
                Err(_) => prop_assert_eq!(&ledger, &before),
            }
            let balance = ledger.balance();
            prop_assert!(balance >= 0);
            prop_assert_eq!(balance, entries.iter().map(|e| e.points).sum::<Points>());
            for lot in ledger.lots() {
                prop_assert!(lot.remaining >= 0 && lot.remaining <= lot.earned);
            }
            prop_assert!(ledger.check_invariants().is_ok());
            for entry in &entries {
                let moved: Points = entry.lots.iter().map(|m| m.points).sum();
                prop_assert_eq!(moved, entry.points, "lot detail explains {:?}", entry.kind);
                prop_assert!(entry.shortfall >= 0);
            }
        }
    }
}
