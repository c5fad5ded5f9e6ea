//! Property test: driving the domain rules through any sequence of operations on a small
//! in-memory model keeps the two invariants of ARCHITECTURE §2 — `reserved` equals the sum of the
//! HELD lines' remaining quantities and `on_hand` equals the sum of the ledger.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use omni_types::{LocationId, Quantity, ReservationId, Sku};
use proptest::prelude::*;

use super::*;

type Key = (Sku, LocationId);

#[derive(Debug, Clone)]
enum Op {
    Adjust {
        key: usize,
        amount: i64,
        count: bool,
    },
    Reserve {
        id: usize,
        lines: Vec<(usize, i64)>,
    },
    Commit {
        id: usize,
        qty: i64,
        key: usize,
    },
    CommitAll {
        id: usize,
    },
    Release {
        id: usize,
    },
    Confirm {
        id: usize,
    },
    Expire {
        id: usize,
        at: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, -5..20i64, any::<bool>()).prop_map(|(key, amount, count)| Op::Adjust {
            key,
            amount,
            count
        }),
        (0..4usize, prop::collection::vec((0..3usize, 1..6i64), 1..3))
            .prop_map(|(id, lines)| Op::Reserve { id, lines }),
        (0..4usize, 1..4i64, 0..3usize).prop_map(|(id, qty, key)| Op::Commit { id, qty, key }),
        (0..4usize).prop_map(|id| Op::CommitAll { id }),
        (0..4usize).prop_map(|id| Op::Release { id }),
        (0..4usize).prop_map(|id| Op::Confirm { id }),
        (0..4usize, 0..200i64).prop_map(|(id, at)| Op::Expire { id, at }),
    ]
}

#[derive(Default)]
struct Model {
    levels: HashMap<Key, StockLevel>,
    ledger: Vec<(Key, i64)>,
    reservations: HashMap<ReservationId, Reservation>,
}

fn keys() -> Vec<Key> {
    ["A", "B", "C"]
        .iter()
        .map(|s| (Sku::parse(*s).unwrap(), LocationId::parse("s1").unwrap()))
        .collect()
}

fn rid(i: usize) -> ReservationId {
    ReservationId::parse(&format!("hold:web:c{i}")).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

impl Model {
    fn level(&mut self, key: &Key) -> &mut StockLevel {
        self.levels.entry(key.clone()).or_default()
    }

    fn move_stock(&mut self, key: &Key, movement: Movement) {
        let delta = apply(self.level(key), &movement);
        self.level(key).on_hand += delta;
        self.ledger.push((key.clone(), delta));
    }

    fn settle(&mut self, effects: Vec<LineEffect>, commit: bool) {
        for e in effects {
            let key = (e.sku, e.location);
            self.level(&key).reserved -= i64::from(e.qty);
            if commit {
                let q = Quantity::parse(i64::from(e.qty)).unwrap();
                self.move_stock(&key, Movement::Lower(MovementKind::Commit, q));
            }
        }
    }

    fn run(&mut self, op: Op) {
        let keys = keys();
        match op {
            Op::Adjust { key, amount, count } => {
                let movement = if count {
                    Movement::parse(MovementKind::Count, amount.max(0))
                } else {
                    Movement::parse(MovementKind::Adjustment, amount)
                };
                if let Ok(m) = movement {
                    self.move_stock(&keys[key], m);
                }
            }
            Op::Reserve { id, lines } => {
                let raw = RawReserveRequest {
                    reservation_id: rid(id).to_string(),
                    lines: lines
                        .iter()
                        .map(|(k, q)| RawLine {
                            sku: keys[*k].0.to_string(),
                            location: keys[*k].1.to_string(),
                            quantity: *q,
                        })
                        .collect(),
                    ttl_seconds: Some(100),
                };
                let Ok(req) = ReserveRequest::parse(raw) else {
                    return;
                };
                if self.reservations.contains_key(&req.id) {
                    return;
                }
                let fits = req.lines.iter().all(|l| {
                    let key = (l.sku.clone(), l.location.clone());
                    self.levels
                        .get(&key)
                        .copied()
                        .unwrap_or_default()
                        .available()
                        >= l.qty.as_i64()
                });
                if !fits {
                    return;
                }
                for l in &req.lines {
                    self.level(&(l.sku.clone(), l.location.clone())).reserved += l.qty.as_i64();
                }
                let expires = req.expires_at(at(0));
                self.reservations.insert(
                    req.id.clone(),
                    Reservation::hold(req.id, req.lines, expires),
                );
            }
            Op::Commit { id, qty, key } => {
                let sel = LineSelection::Lines(vec![ReservationLine::new(
                    keys[key].0.clone(),
                    keys[key].1.clone(),
                    Quantity::parse(qty).unwrap(),
                )]);
                if let Some(Ok(fx)) = self.reservations.get_mut(&rid(id)).map(|r| r.commit(&sel)) {
                    self.settle(fx, true);
                }
            }
            Op::CommitAll { id } => {
                if let Some(Ok(fx)) = self
                    .reservations
                    .get_mut(&rid(id))
                    .map(|r| r.commit(&LineSelection::All))
                {
                    self.settle(fx, true);
                }
            }
            Op::Release { id } => {
                if let Some(Ok(fx)) = self
                    .reservations
                    .get_mut(&rid(id))
                    .map(|r| r.release(&LineSelection::All))
                {
                    self.settle(fx, false);
                }
            }
            Op::Confirm { id } => {
                if let Some(r) = self.reservations.get_mut(&rid(id)) {
                    let _ = r.confirm();
                }
            }
            Op::Expire { id, at: secs } => {
                if let Some(Ok(fx)) = self
                    .reservations
                    .get_mut(&rid(id))
                    .map(|r| r.expire(at(secs)))
                {
                    self.settle(fx, false);
                }
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for key in keys() {
            let level = self.levels.get(&key).copied().unwrap_or_default();
            let held: i64 = self
                .reservations
                .values()
                .map(|r| i64::from(r.remaining_on(&key.0, &key.1)))
                .sum();
            let ledger: i64 = self
                .ledger
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, d)| d)
                .sum();
            prop_assert_eq!(level.reserved, held, "reserved drifted for {:?}", key);
            prop_assert_eq!(level.on_hand, ledger, "on_hand drifted for {:?}", key);
            prop_assert!(level.available() >= 0);
        }
        Ok(())
    }
}

proptest! {
    #[test]
    fn counters_always_match_reservations_and_ledger(ops in prop::collection::vec(op(), 1..60)) {
        let mut model = Model::default();
        for op in ops {
            model.run(op);
            model.check()?;
        }
    }
}
