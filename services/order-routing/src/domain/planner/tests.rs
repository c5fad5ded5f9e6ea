//! Table tests for the planner. Helpers are shared with the proptests and the simulation tests.

use std::collections::BTreeMap;

use omni_types::{ChannelId, GeoPoint, LocationId, Quantity, Sku};

use super::*;
use crate::domain::order::LineId;
use crate::domain::profile::{ProfileSpec, RoutingProfile};

pub(crate) fn loc(id: &str) -> LocationId {
    LocationId::parse(id).unwrap()
}

pub(crate) fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn base(id: &str, kind: LocationKind, lat: f64, lon: f64) -> Candidate {
    Candidate {
        location: loc(id),
        kind,
        point: GeoPoint::parse(lat, lon).unwrap(),
        capabilities: Capabilities {
            ships: kind == LocationKind::Warehouse,
            pickup: kind == LocationKind::Store,
            ship_from_store: kind == LocationKind::Store,
        },
        active: true,
        capacity_left_today: None,
        in_channel_pool: true,
        stock: BTreeMap::new(),
    }
}

pub(crate) fn warehouse(id: &str, lat: f64, lon: f64) -> Candidate {
    base(id, LocationKind::Warehouse, lat, lon)
}

pub(crate) fn store(id: &str, lat: f64, lon: f64) -> Candidate {
    base(id, LocationKind::Store, lat, lon)
}

pub(crate) fn candidate(mut c: Candidate, stock: &[(&str, u32)]) -> Candidate {
    c.stock = stock.iter().map(|(s, q)| (sku(s), *q)).collect();
    c
}

fn lines(items: &[(&str, i64)]) -> Vec<PlanLine> {
    items
        .iter()
        .enumerate()
        .map(|(i, (s, q))| PlanLine {
            line_id: LineId(i as u32 + 1),
            sku: sku(s),
            qty: Quantity::parse(*q).unwrap(),
        })
        .collect()
}

pub(crate) fn ship_input(items: &[(&str, i64)], (lat, lon): (f64, f64)) -> PlanInput {
    let point = GeoPoint::parse(lat, lon).unwrap();
    PlanInput::new(lines(items), Destination::Ship { point }).unwrap()
}

pub(crate) fn pickup_input(items: &[(&str, i64)], store: &str) -> PlanInput {
    PlanInput::new(lines(items), Destination::Pickup { store: loc(store) }).unwrap()
}

pub(crate) fn profile_with(f: impl FnOnce(&mut ProfileSpec)) -> RoutingProfile {
    let mut spec = RoutingProfile::default_for(ChannelId::parse("web").unwrap())
        .spec()
        .clone();
    f(&mut spec);
    RoutingProfile::parse(spec).unwrap()
}

fn default_profile() -> RoutingProfile {
    profile_with(|_| {})
}

/// (location, kind, line ids) of every allocation, in plan order.
fn shape(plan: &Plan) -> Vec<(String, AllocationKind, Vec<u32>)> {
    plan.allocations
        .iter()
        .map(|a| {
            (
                a.location.to_string(),
                a.kind.clone(),
                a.lines.iter().map(|l| l.line_id.0).collect(),
            )
        })
        .collect()
}

fn reason(plan: &Plan, line: u32, location: &str) -> VerdictReason {
    let found: Vec<_> = plan
        .explanation
        .verdicts_for(LineId(line))
        .filter(|v| v.location.as_str() == location)
        .collect();
    assert_eq!(found.len(), 1, "{location} named once for line {line}");
    found[0].reason
}

const HOME: (f64, f64) = (31.23, 121.47);

#[test]
fn ship_single_location_prefers_the_nearest_that_has_everything() {
    let order = ship_input(&[("A", 2), ("B", 1)], HOME);
    let cands = vec![
        candidate(warehouse("w-far", 39.9, 116.4), &[("A", 9), ("B", 9)]),
        candidate(warehouse("w-near", 31.3, 121.5), &[("A", 9), ("B", 9)]),
        candidate(warehouse("w-half", 31.2, 121.4), &[("A", 9)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    assert_eq!(
        shape(&plan),
        vec![("w-near".into(), AllocationKind::Ship, vec![1, 2])]
    );
    assert_eq!(plan.explanation.strategy, Strategy::SingleLocation);
    assert_eq!(reason(&plan, 1, "w-near"), VerdictReason::Chosen);
    assert_eq!(reason(&plan, 1, "w-far"), VerdictReason::Farther);
    assert_eq!(reason(&plan, 1, "w-half"), VerdictReason::MoreShipments);
    assert_eq!(
        reason(&plan, 2, "w-half"),
        VerdictReason::OutOfStock { available: 0 }
    );
}

#[test]
fn fewest_shipments_beats_distance() {
    let order = ship_input(&[("A", 1), ("B", 1)], HOME);
    let cands = vec![
        candidate(warehouse("w-a", 31.23, 121.47), &[("A", 1)]),
        candidate(warehouse("w-b", 31.23, 121.47), &[("B", 1)]),
        candidate(warehouse("w-both", 45.0, 126.0), &[("A", 1), ("B", 1)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    assert_eq!(plan.allocations.len(), 1);
    assert_eq!(plan.allocations[0].location.as_str(), "w-both");
}

#[test]
fn equal_distance_prefers_warehouses_then_lower_id() {
    let order = ship_input(&[("A", 1)], HOME);
    let cands = vec![
        candidate(store("a-store", 31.0, 121.0), &[("A", 1)]),
        candidate(warehouse("z-wh", 31.0, 121.0), &[("A", 1)]),
        candidate(warehouse("y-wh", 31.0, 121.0), &[("A", 1)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    assert_eq!(plan.allocations[0].location.as_str(), "y-wh");
    assert_eq!(reason(&plan, 1, "a-store"), VerdictReason::LowerPreference);
    assert_eq!(reason(&plan, 1, "z-wh"), VerdictReason::IdOrder);

    let no_pref = profile_with(|p| p.prefer_warehouses = false);
    let plan = super::plan(&order, &cands, &no_pref).unwrap();
    assert_eq!(plan.allocations[0].location.as_str(), "a-store");
}

#[test]
fn split_uses_greedy_cover_and_says_so() {
    let order = ship_input(&[("A", 5), ("B", 1), ("C", 1)], HOME);
    let cands = vec![
        candidate(warehouse("w-1", 31.0, 121.0), &[("A", 5)]),
        candidate(warehouse("w-2", 31.0, 121.0), &[("B", 1), ("C", 1)]),
        candidate(warehouse("w-3", 31.0, 121.0), &[("C", 1)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    assert_eq!(
        shape(&plan),
        vec![
            ("w-1".into(), AllocationKind::Ship, vec![1]),
            ("w-2".into(), AllocationKind::Ship, vec![2, 3]),
        ]
    );
    assert_eq!(plan.explanation.strategy, Strategy::GreedyCover);
    assert!(plan.explanation.summary.contains("greedy"));
    assert_eq!(reason(&plan, 3, "w-3"), VerdictReason::CoversLess);
}

#[test]
fn split_limit_makes_the_order_unroutable_per_line() {
    let order = ship_input(&[("A", 1), ("B", 1), ("C", 1)], HOME);
    let cands = vec![
        candidate(warehouse("w-1", 31.0, 121.0), &[("A", 1)]),
        candidate(warehouse("w-2", 31.0, 121.0), &[("B", 1)]),
        candidate(warehouse("w-3", 31.0, 121.0), &[("C", 1)]),
    ];
    let two = profile_with(|p| p.max_splits = 2);
    let err = plan(&order, &cands, &two).unwrap_err();
    let PlanError::Unroutable { lines } = err else {
        panic!("{err:?}")
    };
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].line_id, LineId(3));
    assert_eq!(lines[0].reason, UnroutableReason::SplitLimit);
}

#[test]
fn capacity_pool_exclusion_and_activity_are_respected_and_explained() {
    let order = ship_input(&[("A", 1)], HOME);
    let mut full = candidate(warehouse("w-full", 31.2, 121.4), &[("A", 1)]);
    full.capacity_left_today = Some(0);
    let mut outside = candidate(warehouse("w-outside", 31.2, 121.4), &[("A", 1)]);
    outside.in_channel_pool = false;
    let mut closed = candidate(warehouse("w-closed", 31.2, 121.4), &[("A", 1)]);
    closed.active = false;
    let excluded = candidate(warehouse("w-excluded", 31.2, 121.4), &[("A", 1)]);
    let mut no_ship = candidate(warehouse("w-noship", 31.2, 121.4), &[("A", 1)]);
    no_ship.capabilities.ships = false;
    let mut ok = candidate(warehouse("w-ok", 20.0, 110.0), &[("A", 1)]);
    ok.capacity_left_today = Some(1);
    let profile = profile_with(|p| {
        p.excluded.insert(loc("w-excluded"));
    });
    let cands = vec![full, outside, closed, excluded, no_ship, ok];
    let plan = plan(&order, &cands, &profile).unwrap();
    assert_eq!(plan.allocations[0].location.as_str(), "w-ok");
    assert_eq!(reason(&plan, 1, "w-full"), VerdictReason::NoCapacity);
    assert_eq!(reason(&plan, 1, "w-outside"), VerdictReason::NotInPool);
    assert_eq!(reason(&plan, 1, "w-closed"), VerdictReason::Inactive);
    assert_eq!(reason(&plan, 1, "w-excluded"), VerdictReason::Excluded);
    assert_eq!(reason(&plan, 1, "w-noship"), VerdictReason::CannotShip);
}

#[test]
fn unroutable_reasons_name_what_blocked_each_line() {
    let order = ship_input(&[("A", 1), ("B", 1), ("C", 1), ("D", 1)], HOME);
    let mut full = candidate(warehouse("w-full", 31.2, 121.4), &[("A", 1)]);
    full.capacity_left_today = Some(0);
    let mut outside = candidate(warehouse("w-outside", 31.2, 121.4), &[("B", 1)]);
    outside.in_channel_pool = false;
    let mut closed = candidate(warehouse("w-closed", 31.2, 121.4), &[("C", 1)]);
    closed.active = false;
    let err = plan(&order, &[full, outside, closed], &default_profile()).unwrap_err();
    let PlanError::Unroutable { lines } = err else {
        panic!("{err:?}")
    };
    let reasons: Vec<_> = lines.iter().map(|l| l.reason).collect();
    assert_eq!(
        reasons,
        vec![
            UnroutableReason::CapacityExhausted,
            UnroutableReason::OnlyOutsidePool,
            UnroutableReason::OnlyAtUnusableLocations,
            UnroutableReason::NoStock,
        ]
    );
}

#[test]
fn ship_from_store_follows_the_profile() {
    let order = ship_input(&[("A", 1)], HOME);
    let cands = vec![candidate(store("s-1", 31.2, 121.4), &[("A", 1)])];
    assert!(plan(&order, &cands, &default_profile()).is_ok());
    let no_sfs = profile_with(|p| p.allow_ship_from_store = false);
    let err = plan(&order, &cands, &no_sfs).unwrap_err();
    assert!(matches!(err, PlanError::Unroutable { .. }), "{err:?}");
}

#[test]
fn a_line_is_never_split_even_if_two_locations_together_have_enough() {
    let order = ship_input(&[("A", 4)], HOME);
    let cands = vec![
        candidate(warehouse("w-1", 31.0, 121.0), &[("A", 2)]),
        candidate(warehouse("w-2", 31.0, 121.0), &[("A", 2)]),
    ];
    let err = plan(&order, &cands, &default_profile()).unwrap_err();
    assert_eq!(
        err,
        PlanError::Unroutable {
            lines: vec![UnroutableLine {
                line_id: LineId(1),
                sku: sku("A"),
                reason: UnroutableReason::NoStock
            }]
        }
    );
}

#[test]
fn duplicate_candidates_are_refused() {
    let order = ship_input(&[("A", 1)], HOME);
    let c = candidate(warehouse("w-1", 31.0, 121.0), &[("A", 2)]);
    let err = plan(&order, &[c.clone(), c], &default_profile()).unwrap_err();
    assert!(matches!(err, PlanError::DuplicateCandidate { .. }));
}

#[test]
fn pickup_at_a_store_that_has_everything() {
    let order = pickup_input(&[("A", 1), ("B", 2)], "s-1");
    let cands = vec![
        candidate(store("s-1", 31.2, 121.4), &[("A", 1), ("B", 2)]),
        candidate(warehouse("w-1", 31.0, 121.0), &[("A", 9), ("B", 9)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    assert_eq!(
        shape(&plan),
        vec![("s-1".into(), AllocationKind::Pickup, vec![1, 2])]
    );
    assert_eq!(plan.explanation.strategy, Strategy::Pickup);
    assert_eq!(reason(&plan, 2, "w-1"), VerdictReason::NotChosenStore);
}

#[test]
fn pickup_refuses_with_the_nearest_stores_that_can_serve_everything() {
    let order = pickup_input(&[("A", 1), ("B", 1)], "s-home");
    let everything = &[("A", 1), ("B", 1)][..];
    let mut closed = candidate(store("s-closed", 31.2, 121.41), everything);
    closed.active = false;
    let mut no_pickup = candidate(store("s-nopickup", 31.2, 121.41), everything);
    no_pickup.capabilities.pickup = false;
    let cands = vec![
        candidate(store("s-home", 31.2, 121.4), &[("A", 1)]),
        candidate(store("s-4", 31.6, 121.4), everything),
        candidate(store("s-1", 31.25, 121.4), everything),
        candidate(store("s-3", 31.5, 121.4), everything),
        candidate(store("s-2", 31.3, 121.4), everything),
        candidate(store("s-half", 31.21, 121.4), &[("B", 1)]),
        candidate(warehouse("w-1", 31.2, 121.4), everything),
        closed,
        no_pickup,
    ];
    let err = plan(&order, &cands, &default_profile()).unwrap_err();
    let PlanError::PickupStoreCannotServe {
        store,
        missing,
        suggestions,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(store.as_str(), "s-home");
    assert_eq!(missing, vec![LineId(2)]);
    let names: Vec<_> = suggestions.iter().map(|s| s.store.as_str()).collect();
    assert_eq!(names, vec!["s-1", "s-2", "s-3"]);
    assert!(suggestions[0].distance_km < suggestions[1].distance_km);
}

#[test]
fn pickup_with_transfer_brings_missing_lines_from_the_nearest_source() {
    let order = pickup_input(&[("A", 1), ("B", 1)], "s-home");
    let cands = vec![
        candidate(store("s-home", 31.2, 121.4), &[("A", 1)]),
        candidate(warehouse("w-near", 31.3, 121.4), &[("B", 5)]),
        candidate(warehouse("w-far", 35.0, 121.4), &[("B", 5)]),
    ];
    let transfer = profile_with(|p| p.allow_transfer_to_store = true);
    let plan = plan(&order, &cands, &transfer).unwrap();
    let to = AllocationKind::TransferToStore { to: loc("s-home") };
    assert_eq!(
        shape(&plan),
        vec![
            ("s-home".into(), AllocationKind::Pickup, vec![1]),
            ("w-near".into(), to, vec![2]),
        ]
    );
    assert_eq!(plan.explanation.strategy, Strategy::PickupWithTransfer);
    assert_eq!(reason(&plan, 2, "w-far"), VerdictReason::Farther);
    assert_eq!(
        reason(&plan, 2, "s-home"),
        VerdictReason::OutOfStock { available: 0 }
    );
    assert_eq!(
        reason(&plan, 1, "w-near"),
        VerdictReason::ServedAtPickupStore
    );
}

#[test]
fn transfer_respects_the_split_limit() {
    let order = pickup_input(&[("A", 1), ("B", 1), ("C", 1)], "s-home");
    let cands = vec![
        candidate(store("s-home", 31.2, 121.4), &[("A", 1)]),
        candidate(warehouse("w-b", 31.3, 121.4), &[("B", 5)]),
        candidate(warehouse("w-c", 31.3, 121.4), &[("C", 5)]),
    ];
    let two = profile_with(|p| {
        p.allow_transfer_to_store = true;
        p.max_splits = 2;
    });
    assert!(matches!(
        plan(&order, &cands, &two),
        Err(PlanError::PickupStoreCannotServe { .. })
    ));
    let three = profile_with(|p| {
        p.allow_transfer_to_store = true;
        p.max_splits = 3;
    });
    assert_eq!(plan(&order, &cands, &three).unwrap().allocations.len(), 3);
}

#[test]
fn unknown_or_unusable_pickup_store_is_named() {
    let order = pickup_input(&[("A", 1)], "s-x");
    let err = plan(&order, &[], &default_profile()).unwrap_err();
    assert_eq!(err, PlanError::UnknownPickupStore { store: loc("s-x") });

    let mut no_pickup = candidate(store("s-x", 31.0, 121.0), &[("A", 1)]);
    no_pickup.capabilities.pickup = false;
    let err = plan(&order, &[no_pickup], &default_profile()).unwrap_err();
    assert_eq!(
        err,
        PlanError::PickupStoreUnavailable {
            store: loc("s-x"),
            reason: StoreUnavailable::NoPickup
        }
    );
    assert!(err.to_string().contains("s-x"));

    let wh = candidate(warehouse("s-x", 31.0, 121.0), &[("A", 1)]);
    assert!(matches!(
        plan(&order, &[wh], &default_profile()),
        Err(PlanError::PickupStoreUnavailable {
            reason: StoreUnavailable::NotAStore,
            ..
        })
    ));
}

#[test]
fn pickup_store_without_capacity_suggests_others() {
    let order = pickup_input(&[("A", 1)], "s-home");
    let mut home = candidate(store("s-home", 31.2, 121.4), &[("A", 1)]);
    home.capacity_left_today = Some(0);
    let cands = vec![home, candidate(store("s-2", 31.3, 121.4), &[("A", 1)])];
    let err = plan(&order, &cands, &default_profile()).unwrap_err();
    assert!(
        matches!(&err, PlanError::PickupStoreCannotServe { suggestions, .. } if suggestions.len() == 1),
        "{err:?}"
    );
}

#[test]
fn plan_input_refuses_duplicate_skus_also_when_deserialised() {
    let mut dup = lines(&[("A", 1), ("B", 1)]);
    dup[1].sku = sku("A");
    let point = GeoPoint::parse(0.0, 0.0).unwrap();
    let err = PlanInput::new(dup.clone(), Destination::Ship { point }).unwrap_err();
    assert_eq!(err, InvalidPlanInput::DuplicateSku(sku("A")));
    let json = serde_json::json!({"lines": dup, "destination": {"Ship": {"point": point}}});
    assert!(serde_json::from_value::<PlanInput>(json).is_err());
}

#[test]
fn plans_and_inputs_round_trip_through_json() {
    let order = ship_input(&[("A", 1), ("B", 1)], HOME);
    let cands = vec![
        candidate(warehouse("w-1", 31.0, 121.0), &[("A", 5)]),
        candidate(store("s-1", 31.0, 121.0), &[("B", 5)]),
    ];
    let plan = plan(&order, &cands, &default_profile()).unwrap();
    let back: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(back, plan);
    let input: PlanInput = serde_json::from_str(&serde_json::to_string(&order).unwrap()).unwrap();
    assert_eq!(input, order);
}

/// Not a timed assertion (machines differ); a guard that the 1,000-candidate case stays
/// linear enough to run the whole table in debug builds. Measure with `--release -- --ignored`.
#[test]
#[ignore = "performance probe; run with --release --ignored --nocapture"]
fn ten_lines_over_a_thousand_candidates() {
    let items: Vec<(String, i64)> = (0..10).map(|i| (format!("S{i}"), 1)).collect();
    let refs: Vec<(&str, i64)> = items.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    let order = ship_input(&refs, HOME);
    let cands: Vec<Candidate> = (0..1000)
        .map(|i| {
            let stock: Vec<(&str, u32)> = refs
                .iter()
                .enumerate()
                .filter(|(j, _)| (i + j) % 3 != 0)
                .map(|(_, (s, _))| (*s, 5))
                .collect();
            let lat = 20.0 + (i % 200) as f64 * 0.1;
            let lon = 100.0 + (i / 200) as f64;
            candidate(warehouse(&format!("w-{i}"), lat, lon), &stock)
        })
        .collect();
    let profile = default_profile();
    let runs = 200;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(plan(&order, &cands, &profile).unwrap());
    }
    println!("mean plan time: {:?}", start.elapsed() / runs);
}
