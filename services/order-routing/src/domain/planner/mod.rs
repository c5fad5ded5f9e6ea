//! The routing planner: `plan(order, candidates, profile) -> Plan`, a pure function.
//!
//! Rules (ARCHITECTURE §2 "Routing planner"):
//! - **Ship**: candidates are active, in the channel's pool, not excluded, with capacity left
//!   today, and either warehouses that ship or stores that ship from store (if the profile allows
//!   it). Objective, lexicographic: fewest shipments, then shortest total haversine distance to the
//!   delivery point, then preference (warehouses first if the profile says so), then location id.
//!   A single location serving everything is found exactly; otherwise a greedy set cover (each step
//!   takes the location covering the most remaining units, then lines, ties by the same order),
//!   bounded by the profile's `max_splits`.
//! - **Pickup**: the chosen store if it has every line; else missing lines are transferred from the
//!   nearest sources (same cover as shipping, distances measured to the store) if the profile
//!   allows it; else refuse and suggest up to three stores that can serve the whole order.
//!
//! Decisions:
//! - **A line is never split across locations**: each line is wholly served by one location. This
//!   keeps allocations, picking and refunds per line simple; a quantity no single location holds is
//!   unroutable.
//! - `capacity_left_today` is one unit per location per order (as inventory counts it), so
//!   "capacity left" is `> 0` and using each location at most once can never exceed it.
//! - `max_splits` bounds the number of allocations: shipments, or the pickup plus its transfers.
//! - Transfer sources follow the shipping rules (a transfer is a shipment to a store).
//! - Stock in a [`Candidate`] is already net of safety stock, so "available" is all the planner
//!   needs.

mod cover;
mod explain;
mod pickup;
mod ship;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, BTreeSet};

use omni_types::{GeoPoint, LocationId, Quantity, Sku};
use serde::{Deserialize, Serialize};

pub use explain::{
    CandidateVerdict, ConsideredCandidate, Decision, Explanation, LineExplanation, LineVerdict,
    Strategy, VerdictReason,
};

use crate::domain::order::{Fulfilment, LineId, MAX_LINES, OrderDraft};
use crate::domain::profile::RoutingProfile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LocationKind {
    Warehouse,
    Store,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub ships: bool,
    pub pickup: bool,
    pub ship_from_store: bool,
}

/// A location as the planner sees it for one order: what inventory reported when the order was
/// planned. Stored with the order so `SimulatePolicy` can replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub location: LocationId,
    pub kind: LocationKind,
    pub point: GeoPoint,
    pub capabilities: Capabilities,
    pub active: bool,
    /// Orders this location can still take today; `None` = no daily limit.
    pub capacity_left_today: Option<u32>,
    pub in_channel_pool: bool,
    /// Units available per SKU, already net of safety stock and reservations.
    pub stock: BTreeMap<Sku, u32>,
}

impl Candidate {
    pub fn available(&self, sku: &Sku) -> u32 {
        self.stock.get(sku).copied().unwrap_or(0)
    }

    pub fn has_capacity(&self) -> bool {
        self.capacity_left_today != Some(0)
    }

    fn serves(&self, line: &PlanLine) -> bool {
        self.available(&line.sku) >= line.qty.get()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Destination {
    Ship { point: GeoPoint },
    Pickup { store: LocationId },
}

/// What the planner needs of an order. At most [`MAX_LINES`] lines, one per SKU, unique ids:
/// checked on construction and on deserialisation, so a stored input replays safely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlanInputParts", into = "PlanInputParts")]
pub struct PlanInput {
    lines: Vec<PlanLine>,
    destination: Destination,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInputParts {
    pub lines: Vec<PlanLine>,
    pub destination: Destination,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlanInput {
    #[error("a plan needs between 1 and {MAX_LINES} lines, got {0}")]
    LineCount(usize),
    #[error("SKU {0} appears on more than one line")]
    DuplicateSku(Sku),
    #[error("line {0} appears more than once")]
    DuplicateLine(LineId),
}

impl PlanInput {
    pub fn new(lines: Vec<PlanLine>, destination: Destination) -> Result<Self, InvalidPlanInput> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(InvalidPlanInput::LineCount(lines.len()));
        }
        let mut skus = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for line in &lines {
            if !skus.insert(&line.sku) {
                return Err(InvalidPlanInput::DuplicateSku(line.sku.clone()));
            }
            if !ids.insert(line.line_id) {
                return Err(InvalidPlanInput::DuplicateLine(line.line_id));
            }
        }
        Ok(Self { lines, destination })
    }

    pub fn from_draft(draft: &OrderDraft) -> Self {
        Self {
            lines: draft
                .lines()
                .iter()
                .map(|l| PlanLine {
                    line_id: l.line_id,
                    sku: l.sku.clone(),
                    qty: l.qty,
                })
                .collect(),
            destination: match draft.fulfilment() {
                Fulfilment::Ship { point, .. } => Destination::Ship { point: *point },
                Fulfilment::Pickup { store } => Destination::Pickup {
                    store: store.clone(),
                },
            },
        }
    }

    pub fn lines(&self) -> &[PlanLine] {
        &self.lines
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }
}

impl TryFrom<PlanInputParts> for PlanInput {
    type Error = InvalidPlanInput;
    fn try_from(parts: PlanInputParts) -> Result<Self, InvalidPlanInput> {
        Self::new(parts.lines, parts.destination)
    }
}

impl From<PlanInput> for PlanInputParts {
    fn from(input: PlanInput) -> Self {
        Self {
            lines: input.lines,
            destination: input.destination,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AllocationKind {
    Ship,
    Pickup,
    TransferToStore { to: LocationId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAllocation {
    pub location: LocationId,
    pub location_kind: LocationKind,
    pub kind: AllocationKind,
    pub lines: Vec<AllocatedLine>,
    /// To the delivery point (ship), to the pickup store (transfer), 0 for the pickup itself.
    pub distance_km: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub allocations: Vec<PlannedAllocation>,
    pub explanation: Explanation,
}

impl Plan {
    pub fn total_distance_km(&self) -> f64 {
        self.allocations.iter().map(|a| a.distance_km).sum()
    }
}

/// Why a line could not be routed, most actionable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnroutableReason {
    /// Locations could serve it, but only by exceeding the profile's split limit.
    SplitLimit,
    /// Only locations with no capacity left today have it.
    CapacityExhausted,
    /// Only locations outside the channel's pool have it.
    OnlyOutsidePool,
    /// Only inactive, excluded or non-shipping locations have it.
    OnlyAtUnusableLocations,
    /// No location holds the quantity (lines are not split across locations).
    NoStock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnroutableLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub reason: UnroutableReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreUnavailable {
    NotAStore,
    NoPickup,
    Inactive,
    NotInPool,
    Excluded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSuggestion {
    pub store: LocationId,
    pub distance_km: f64,
}

/// Why no plan exists. Every variant is an answer to the customer, not a fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot route {} line(s): {}", .lines.len(), describe_unroutable(.lines))]
    Unroutable { lines: Vec<UnroutableLine> },
    #[error("pickup store {store} is not known to this channel")]
    UnknownPickupStore { store: LocationId },
    #[error("pickup store {store} cannot take pickups: {reason:?}")]
    PickupStoreUnavailable {
        store: LocationId,
        reason: StoreUnavailable,
    },
    #[error("pickup store {store} cannot serve lines {missing:?}; nearby stores that can: {}", describe_suggestions(.suggestions))]
    PickupStoreCannotServe {
        store: LocationId,
        missing: Vec<LineId>,
        suggestions: Vec<StoreSuggestion>,
    },
    /// The caller built the candidate list wrongly; a bug upstream, not a customer answer.
    #[error("location {location} appears twice among the candidates")]
    DuplicateCandidate { location: LocationId },
}

fn describe_unroutable(lines: &[UnroutableLine]) -> String {
    lines
        .iter()
        .map(|l| format!("line {} ({}): {:?}", l.line_id, l.sku, l.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_suggestions(s: &[StoreSuggestion]) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.iter()
        .map(|s| format!("{} ({:.1} km)", s.store, s.distance_km))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Route `order` over `candidates` under `profile`. Deterministic: the same input gives the same
/// plan whatever the order of `candidates`.
pub fn plan(
    order: &PlanInput,
    candidates: &[Candidate],
    profile: &RoutingProfile,
) -> Result<Plan, PlanError> {
    let by_id = order_by_id(candidates)?;
    match &order.destination {
        Destination::Ship { point } => {
            ship::plan_shipping(order, candidates, &by_id, profile, point)
        }
        Destination::Pickup { store } => {
            pickup::plan_pickup(order, candidates, &by_id, profile, store)
        }
    }
}

/// Candidate indices in location id order, which is also the explanation's table order; sorting
/// once puts any duplicate next to its twin, so uniqueness needs no set of its own.
fn order_by_id(candidates: &[Candidate]) -> Result<Vec<u32>, PlanError> {
    let mut order: Vec<u32> = (0..candidates.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        candidates[a as usize]
            .location
            .cmp(&candidates[b as usize].location)
    });
    if let Some(pair) = order
        .windows(2)
        .find(|w| candidates[w[0] as usize].location == candidates[w[1] as usize].location)
    {
        return Err(PlanError::DuplicateCandidate {
            location: candidates[pair[0] as usize].location.clone(),
        });
    }
    Ok(order)
}
