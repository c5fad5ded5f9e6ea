//! The planner's trace: for every line, every candidate and why it was taken or passed over.
//!
//! The explanation is stored with each order, and a plan over 1,000 candidates must take well
//! under a millisecond, so it is compact: candidates are listed once (id, distance, and a
//! location-level verdict when the location itself was unusable: inactive, outside the pool, no
//! capacity …), and each line lists `(candidate index, reason)` for the others. With 1,000
//! candidates and 100 lines the naive form would clone 100,000 ids per plan.
//! [`Explanation::verdicts_for`] gives the full per-line view, naming every candidate once.

use omni_types::{LocationId, Quantity, Sku};
use serde::{Deserialize, Serialize};

use crate::domain::order::LineId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// One location serves the whole order; found exactly.
    SingleLocation,
    /// No single location could; a greedy set cover chose the locations (may not be minimal).
    GreedyCover,
    /// The pickup store has every line.
    Pickup,
    /// The pickup store receives missing lines by transfer before the pickup is ready.
    PickupWithTransfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Taken,
    Passed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictReason {
    /// This location serves the line.
    Chosen,
    /// It has fewer units than the line needs (after safety stock).
    OutOfStock {
        available: u32,
    },
    /// No fulfilment capacity left today.
    NoCapacity,
    /// Not in the channel's pool.
    NotInPool,
    Inactive,
    /// Excluded by the routing profile.
    Excluded,
    /// A warehouse that does not ship, or a store without ship-from-store.
    CannotShip,
    /// A store that could ship, but the profile does not allow ship-from-store.
    ShipFromStoreNotAllowed,
    /// Pickup: the customer chose another store.
    NotChosenStore,
    /// Pickup: the line is served by the pickup store itself.
    ServedAtPickupStore,
    /// It has the line, but another location serves the whole order in one shipment.
    MoreShipments,
    /// Greedy step: another location covered more of what was left.
    CoversLess,
    /// Lost on distance to an otherwise equal location.
    Farther,
    /// Same distance, but the profile prefers the chosen location's kind.
    LowerPreference,
    /// Equal in every respect; the lower location id wins so plans are stable.
    IdOrder,
    /// It could serve the line, but the profile's split limit was already reached.
    SplitLimit,
}

/// A candidate as the explanation names it; lines refer to it by its index in
/// [`Explanation::candidates`] (sorted by location id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsideredCandidate {
    pub location: LocationId,
    /// To the delivery point, or to the pickup store for pickups and transfers.
    pub distance_km: f64,
    /// Set when the location itself was unusable: the verdict for every line.
    pub location_verdict: Option<VerdictReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineVerdict {
    /// Index into [`Explanation::candidates`].
    pub candidate: u32,
    pub reason: VerdictReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineExplanation {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: Quantity,
    /// Verdicts of the candidates without a location verdict.
    pub verdicts: Vec<LineVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub strategy: Strategy,
    pub summary: String,
    pub candidates: Vec<ConsideredCandidate>,
    pub lines: Vec<LineExplanation>,
}

/// One candidate's verdict for one line, resolved for reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateVerdict<'a> {
    pub location: &'a LocationId,
    pub decision: Decision,
    pub reason: VerdictReason,
    pub distance_km: f64,
}

impl Explanation {
    /// Every candidate's verdict for one line: location verdicts first, then the line's own.
    pub fn verdicts_for(&self, line: LineId) -> impl Iterator<Item = CandidateVerdict<'_>> {
        let location_level = self
            .candidates
            .iter()
            .filter_map(|c| c.location_verdict.map(|r| resolve(c, r)));
        let own = self
            .lines
            .iter()
            .filter(move |l| l.line_id == line)
            .flat_map(|l| l.verdicts.iter())
            .filter_map(|v| {
                self.candidates
                    .get(v.candidate as usize)
                    .map(|c| resolve(c, v.reason))
            });
        location_level.chain(own)
    }
}

fn resolve(c: &ConsideredCandidate, reason: VerdictReason) -> CandidateVerdict<'_> {
    CandidateVerdict {
        location: &c.location,
        decision: if reason == VerdictReason::Chosen {
            Decision::Taken
        } else {
            Decision::Passed
        },
        reason,
        distance_km: c.distance_km,
    }
}

/// The explanation's candidate table (in `by_id` order, distances to `to`) and, for each input
/// candidate, its index in that table.
pub(super) fn table(
    candidates: &[super::Candidate],
    by_id: &[u32],
    to: &omni_types::GeoPoint,
) -> (Vec<ConsideredCandidate>, Vec<u32>) {
    let mut slot = vec![0u32; candidates.len()];
    let table = by_id
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            let c = &candidates[i as usize];
            slot[i as usize] = pos as u32;
            ConsideredCandidate {
                location: c.location.clone(),
                distance_km: c.point.distance_km(to),
                location_verdict: None,
            }
        })
        .collect();
    (table, slot)
}
