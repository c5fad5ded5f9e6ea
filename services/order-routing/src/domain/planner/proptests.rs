//! Properties every plan must have, over random candidates, stock and profiles.

use std::collections::{BTreeMap, BTreeSet};

use omni_types::{GeoPoint, LocationId};
use proptest::prelude::{
    Just, ProptestConfig, Strategy, TestCaseError, any, prop, prop_assert, prop_assert_eq,
    prop_oneof, proptest,
};

use super::Strategy as PlanStrategy;
use super::ship::shipping_ineligibility;
use super::tests::{loc, pickup_input, profile_with, ship_input, sku};
use super::{
    AllocationKind, Candidate, Capabilities, Decision, LocationKind, Plan, PlanError, PlanInput,
    plan,
};
use crate::domain::profile::RoutingProfile;

const SKUS: [&str; 6] = ["S0", "S1", "S2", "S3", "S4", "S5"];

fn arb_candidate(i: usize) -> impl Strategy<Value = Candidate> {
    (
        any::<bool>(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.9),
        prop_oneof![Just(None), Just(Some(0u32)), (1u32..3).prop_map(Some)],
        (30.0f64..32.0, 120.0f64..122.0),
        prop::collection::vec(0u32..4, SKUS.len()),
    )
        .prop_map(
            move |(is_store, (ships, pickup, sfs), active, pool, capacity, (lat, lon), stock)| {
                Candidate {
                    location: LocationId::parse(format!("l-{i}")).unwrap(),
                    kind: if is_store {
                        LocationKind::Store
                    } else {
                        LocationKind::Warehouse
                    },
                    point: GeoPoint::parse(lat, lon).unwrap(),
                    capabilities: Capabilities {
                        ships,
                        pickup,
                        ship_from_store: sfs,
                    },
                    active,
                    capacity_left_today: capacity,
                    in_channel_pool: pool,
                    stock: SKUS
                        .iter()
                        .zip(stock)
                        .filter(|(_, q)| *q > 0)
                        .map(|(s, q)| (sku(s), q))
                        .collect(),
                }
            },
        )
}

fn arb_candidates() -> impl Strategy<Value = Vec<Candidate>> {
    (1usize..14).prop_flat_map(|n| (0..n).map(arb_candidate).collect::<Vec<_>>())
}

fn arb_lines() -> impl Strategy<Value = Vec<(&'static str, i64)>> {
    prop::collection::vec(1i64..4, 1..=SKUS.len())
        .prop_map(|qtys| SKUS.iter().copied().zip(qtys).collect())
}

fn arb_profile() -> impl Strategy<Value = RoutingProfile> {
    (
        1u8..5,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_set(0usize..14, 0..3),
    )
        .prop_map(|(max_splits, pw, sfs, transfer, excluded)| {
            profile_with(|p| {
                p.max_splits = max_splits;
                p.prefer_warehouses = pw;
                p.allow_ship_from_store = sfs;
                p.allow_transfer_to_store = transfer;
                p.excluded = excluded
                    .into_iter()
                    .map(|i| loc(&format!("l-{i}")))
                    .collect();
            })
        })
}

fn shuffled(cands: &[Candidate], seed: u64) -> Vec<Candidate> {
    let mut out = cands.to_vec();
    out.sort_by_key(|c| {
        c.location.as_str().bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    });
    out
}

/// The properties shared by ship and pickup plans.
fn check_plan(
    order: &PlanInput,
    cands: &[Candidate],
    profile: &RoutingProfile,
    plan: &Plan,
) -> Result<(), TestCaseError> {
    let by_id: BTreeMap<&LocationId, &Candidate> = cands.iter().map(|c| (&c.location, c)).collect();
    // Every line exactly once.
    let mut seen = BTreeMap::new();
    for a in &plan.allocations {
        for l in &a.lines {
            *seen.entry(l.line_id).or_insert(0) += 1;
        }
    }
    let expected: BTreeMap<_, _> = order.lines().iter().map(|l| (l.line_id, 1)).collect();
    prop_assert_eq!(seen, expected);
    // Split limit, one allocation per location.
    prop_assert!(plan.allocations.len() <= profile.max_splits());
    let distinct: BTreeSet<_> = plan.allocations.iter().map(|a| &a.location).collect();
    prop_assert_eq!(distinct.len(), plan.allocations.len());
    for a in &plan.allocations {
        let c = by_id[&a.location];
        // Availability, pool, activity, exclusion, capacity.
        for l in &a.lines {
            prop_assert!(c.available(&l.sku) >= l.qty.get());
        }
        prop_assert!(c.active && c.in_channel_pool && c.has_capacity());
        prop_assert!(!profile.is_excluded(&c.location));
        if a.kind != AllocationKind::Pickup {
            prop_assert_eq!(shipping_ineligibility(c, profile), None);
        }
    }
    // Every candidate is named exactly once for every line; the taken one is the allocation.
    let all: BTreeSet<&LocationId> = by_id.keys().copied().collect();
    for l in order.lines() {
        let named: Vec<_> = plan.explanation.verdicts_for(l.line_id).collect();
        let names: BTreeSet<&LocationId> = named.iter().map(|v| v.location).collect();
        prop_assert_eq!(names.len(), named.len(), "a candidate named twice");
        prop_assert_eq!(&names, &all);
        let taken: Vec<_> = named
            .iter()
            .filter(|v| v.decision == Decision::Taken)
            .map(|v| v.location)
            .collect();
        let owner = plan
            .allocations
            .iter()
            .find(|a| a.lines.iter().any(|x| x.line_id == l.line_id))
            .map(|a| &a.location);
        prop_assert_eq!(taken, owner.into_iter().collect::<Vec<_>>());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ship_plans_hold_every_invariant(
        lines in arb_lines(),
        cands in arb_candidates(),
        profile in arb_profile(),
        seed in any::<u64>(),
    ) {
        let order = ship_input(&lines, (31.0, 121.0));
        let result = plan(&order, &cands, &profile);
        let single_exists = cands.iter().any(|c| {
            shipping_ineligibility(c, &profile).is_none()
                && order.lines().iter().all(|l| c.serves(l))
        });
        match &result {
            Ok(p) => {
                check_plan(&order, &cands, &profile, p)?;
                if single_exists {
                    prop_assert_eq!(p.allocations.len(), 1);
                    prop_assert_eq!(p.explanation.strategy, PlanStrategy::SingleLocation);
                }
            }
            Err(PlanError::Unroutable { lines }) => {
                prop_assert!(!single_exists);
                prop_assert!(!lines.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        prop_assert_eq!(plan(&order, &shuffled(&cands, seed), &profile), result);
    }

    #[test]
    fn pickup_plans_hold_every_invariant(
        lines in arb_lines(),
        cands in arb_candidates(),
        profile in arb_profile(),
        seed in any::<u64>(),
    ) {
        let order = pickup_input(&lines, "l-0");
        let result = plan(&order, &cands, &profile);
        match &result {
            Ok(p) => {
                check_plan(&order, &cands, &profile, p)?;
                let transfers_to_store = p.allocations.iter().all(|a| match &a.kind {
                    AllocationKind::Pickup => a.location.as_str() == "l-0",
                    AllocationKind::TransferToStore { to } => to.as_str() == "l-0",
                    AllocationKind::Ship => false,
                });
                prop_assert!(transfers_to_store);
                if !profile.allow_transfer_to_store() {
                    prop_assert_eq!(p.explanation.strategy, PlanStrategy::Pickup);
                }
            }
            Err(PlanError::PickupStoreCannotServe { suggestions, .. }) => {
                prop_assert!(suggestions.len() <= 3);
                for s in suggestions {
                    let c = cands.iter().find(|c| c.location == s.store).unwrap();
                    prop_assert!(c.kind == LocationKind::Store && c.capabilities.pickup);
                    prop_assert!(c.active && c.in_channel_pool && c.has_capacity());
                    prop_assert!(order.lines().iter().all(|l| c.serves(l)));
                }
                let d: Vec<f64> = suggestions.iter().map(|s| s.distance_km).collect();
                prop_assert!(d.windows(2).all(|w| w[0] <= w[1]));
            }
            Err(PlanError::PickupStoreUnavailable { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        prop_assert_eq!(plan(&order, &shuffled(&cands, seed), &profile), result);
    }
}
