//! `SimulatePolicy`: replay a candidate profile against recent orders before switching to it.
//!
//! Each order is replayed on the planner input stored with it (the candidates and stock it saw),
//! not today's stock, so the comparison isolates the policy change.

use omni_types::OrderId;
use serde::{Deserialize, Serialize};

use crate::domain::planner::{self, AllocationKind, Candidate, LocationKind, PlanInput};
use crate::domain::profile::RoutingProfile;

/// What the planner saw for one order, stored with the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlanInput {
    pub order: OrderId,
    pub input: PlanInput,
    pub candidates: Vec<Candidate>,
}

impl StoredPlanInput {
    /// Keeps the candidates any profile could route this order to: those with stock for one of
    /// its lines, and the pickup store. A location without any of the order's SKUs can never be
    /// chosen, transferred from or suggested, and over hundreds of locations the full list was
    /// most of the order's row.
    pub fn new(order: OrderId, input: PlanInput, candidates: Vec<Candidate>) -> Self {
        let pickup_store = match input.destination() {
            planner::Destination::Pickup { store } => Some(store.clone()),
            planner::Destination::Ship { .. } => None,
        };
        let candidates = candidates
            .into_iter()
            .filter(|c| !c.stock.is_empty() || pickup_store.as_ref() == Some(&c.location))
            .collect();
        Self {
            order,
            input,
            candidates,
        }
    }
}

/// How one profile does over the replayed orders. Means are over routed orders only; a profile
/// that refuses hard orders should not look better for it, which is why `unroutable` is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileOutcome {
    pub profile_version: u32,
    pub orders: usize,
    pub unroutable: usize,
    pub mean_shipments_per_order: f64,
    pub mean_distance_km: f64,
    /// Share of customer shipments sent from stores (pickups and transfers are not shipments).
    pub ship_from_store_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    pub live: ProfileOutcome,
    pub candidate: ProfileOutcome,
    /// Orders whose allocations (locations and lines) differ between the two profiles.
    pub changed_orders: usize,
}

pub fn simulate(
    orders: &[StoredPlanInput],
    live: &RoutingProfile,
    candidate: &RoutingProfile,
) -> SimulationReport {
    let live_plans: Vec<_> = orders.iter().map(|o| replay(o, live)).collect();
    let candidate_plans: Vec<_> = orders.iter().map(|o| replay(o, candidate)).collect();
    let changed_orders = live_plans
        .iter()
        .zip(&candidate_plans)
        .filter(|(a, b)| a != b)
        .count();
    SimulationReport {
        live: outcome(live.version(), &live_plans),
        candidate: outcome(candidate.version(), &candidate_plans),
        changed_orders,
    }
}

/// The allocations only: explanations differ in wording without the routing differing.
type Replayed = Option<Vec<planner::PlannedAllocation>>;

fn replay(order: &StoredPlanInput, profile: &RoutingProfile) -> Replayed {
    planner::plan(&order.input, &order.candidates, profile)
        .ok()
        .map(|p| p.allocations)
}

fn outcome(version: u32, plans: &[Replayed]) -> ProfileOutcome {
    let routed: Vec<&Vec<planner::PlannedAllocation>> = plans.iter().flatten().collect();
    let n = routed.len();
    let mean = |total: f64| if n == 0 { 0.0 } else { total / n as f64 };
    let shipments: Vec<_> = routed
        .iter()
        .flat_map(|p| p.iter())
        .filter(|a| a.kind == AllocationKind::Ship)
        .collect();
    let from_stores = shipments
        .iter()
        .filter(|a| a.location_kind == LocationKind::Store)
        .count();
    ProfileOutcome {
        profile_version: version,
        orders: plans.len(),
        unroutable: plans.len() - n,
        mean_shipments_per_order: mean(routed.iter().map(|p| p.len() as f64).sum()),
        mean_distance_km: mean(
            routed
                .iter()
                .map(|p| p.iter().map(|a| a.distance_km).sum::<f64>())
                .sum(),
        ),
        ship_from_store_share: if shipments.is_empty() {
            0.0
        } else {
            from_stores as f64 / shipments.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::planner::tests::{candidate, ship_input, store, warehouse};
    use omni_types::ChannelId;

    fn profile(max_splits: u8, allow_ship_from_store: bool) -> RoutingProfile {
        let mut spec = RoutingProfile::default_for(ChannelId::parse("web").unwrap())
            .spec()
            .clone();
        spec.max_splits = max_splits;
        spec.allow_ship_from_store = allow_ship_from_store;
        RoutingProfile::parse(spec).unwrap()
    }

    #[test]
    fn stored_inputs_keep_only_candidates_that_could_serve_the_order() {
        let empty = candidate(warehouse("w0", 30.0, 120.0), &[]);
        let stocked = candidate(store("s1", 31.0, 121.1), &[("A", 5)]);
        let shipped = StoredPlanInput::new(
            OrderId::new(),
            ship_input(&[("A", 1)], (31.0, 121.0)),
            vec![empty.clone(), stocked.clone()],
        );
        assert_eq!(shipped.candidates, vec![stocked.clone()]);

        let empty_store = candidate(store("s2", 31.0, 121.2), &[]);
        let pickup = PlanInput::new(
            shipped.input.lines().to_vec(),
            planner::Destination::Pickup {
                store: empty_store.location.clone(),
            },
        )
        .unwrap();
        let picked = StoredPlanInput::new(
            OrderId::new(),
            pickup,
            vec![empty, stocked.clone(), empty_store.clone()],
        );
        assert_eq!(
            picked.candidates,
            vec![stocked, empty_store],
            "the pickup store is kept even without stock, so a replay can say why"
        );
    }

    #[test]
    fn compares_a_stricter_profile_on_stored_inputs() {
        // Order 1: only a nearby store has everything; a far warehouse has half.
        // Order 2: the warehouse has everything.
        let o1 = StoredPlanInput {
            order: OrderId::new(),
            input: ship_input(&[("A", 1), ("B", 1)], (31.0, 121.0)),
            candidates: vec![
                candidate(store("s1", 31.0, 121.1), &[("A", 5), ("B", 5)]),
                candidate(warehouse("w1", 35.0, 118.0), &[("A", 5)]),
            ],
        };
        let o2 = StoredPlanInput {
            order: OrderId::new(),
            input: ship_input(&[("A", 1)], (31.0, 121.0)),
            candidates: vec![candidate(warehouse("w1", 35.0, 118.0), &[("A", 5)])],
        };
        let report = simulate(&[o1, o2], &profile(3, true), &profile(3, false));
        assert_eq!(report.live.orders, 2);
        assert_eq!(report.live.unroutable, 0);
        assert_eq!(report.live.mean_shipments_per_order, 1.0);
        assert_eq!(report.live.ship_from_store_share, 0.5);
        assert_eq!(report.candidate.unroutable, 1);
        assert_eq!(report.candidate.ship_from_store_share, 0.0);
        assert_eq!(report.changed_orders, 1);
        assert!(report.live.mean_distance_km > 0.0);
    }

    #[test]
    fn an_empty_replay_reports_zeros() {
        let p = profile(3, true);
        let report = simulate(&[], &p, &p);
        assert_eq!(report.live.orders, 0);
        assert_eq!(report.live.mean_distance_km, 0.0);
        assert_eq!(report.changed_orders, 0);
    }
}
