//! Shipping to the customer: which locations may ship, and the plan over them. Transfers to a
//! pickup store use the same rules with the store as the destination.

use std::fmt::Write as _;

use omni_types::{GeoPoint, LocationId};

use super::cover::{self, Cover, CoverKind, LineMask, Site, Units};
use super::explain::{self, ConsideredCandidate, LineExplanation, VerdictReason};
use super::{
    AllocatedLine, AllocationKind, Candidate, LocationKind, Plan, PlanError, PlanInput, PlanLine,
    PlannedAllocation, Strategy, UnroutableLine, UnroutableReason,
};
use crate::domain::profile::RoutingProfile;

/// Why a location may not ship for this channel at all, or `None` if it may.
pub(super) fn shipping_ineligibility(
    c: &Candidate,
    profile: &RoutingProfile,
) -> Option<VerdictReason> {
    if !c.active {
        return Some(VerdictReason::Inactive);
    }
    if !c.in_channel_pool {
        return Some(VerdictReason::NotInPool);
    }
    if profile.is_excluded(&c.location) {
        return Some(VerdictReason::Excluded);
    }
    match c.kind {
        LocationKind::Warehouse if !c.capabilities.ships => return Some(VerdictReason::CannotShip),
        LocationKind::Store if !c.capabilities.ship_from_store => {
            return Some(VerdictReason::CannotShip);
        }
        LocationKind::Store if !profile.allow_ship_from_store() => {
            return Some(VerdictReason::ShipFromStoreNotAllowed);
        }
        _ => {}
    }
    if !c.has_capacity() {
        return Some(VerdictReason::NoCapacity);
    }
    None
}

/// Locations split into usable sites (sorted best first) and unusable ones with the reason.
pub(super) struct Field<'a> {
    pub sites: Vec<Site<'a>>,
    pub units: Units,
    pub ineligible: Vec<(&'a Candidate, VerdictReason)>,
}

/// Sorts `candidates` (except `skip`) into sites and unusable locations, recording the latter's
/// verdicts in the explanation's `table`.
pub(super) fn field<'a>(
    candidates: &'a [Candidate],
    skip: Option<&LocationId>,
    table: &mut [ConsideredCandidate],
    slots: &[u32],
    profile: &RoutingProfile,
    targets: &[&PlanLine],
) -> Field<'a> {
    let mut sites = Vec::new();
    let mut units = Units::default();
    let mut ineligible = Vec::new();
    for (c, &slot) in candidates.iter().zip(slots) {
        if Some(&c.location) == skip {
            continue;
        }
        let entry = &mut table[slot as usize];
        match shipping_ineligibility(c, profile) {
            Some(reason) => {
                entry.location_verdict = Some(reason);
                ineligible.push((c, reason));
            }
            None => sites.push(Site::new(
                c,
                slot,
                entry.distance_km,
                profile.prefer_warehouses(),
                targets,
                &mut units,
            )),
        }
    }
    cover::sort_sites(&mut sites);
    Field {
        sites,
        units,
        ineligible,
    }
}

impl Field<'_> {
    pub fn unroutable(&self, targets: &[&PlanLine], uncovered: LineMask) -> Vec<UnroutableLine> {
        targets
            .iter()
            .enumerate()
            .filter(|(i, _)| uncovered & (1 << i) != 0)
            .map(|(i, line)| UnroutableLine {
                line_id: line.line_id,
                sku: line.sku.clone(),
                reason: self.unroutable_reason(i, line),
            })
            .collect()
    }

    fn unroutable_reason(&self, i: usize, line: &PlanLine) -> UnroutableReason {
        if self.sites.iter().any(|s| s.mask & (1 << i) != 0) {
            return UnroutableReason::SplitLimit;
        }
        let holders: Vec<VerdictReason> = self
            .ineligible
            .iter()
            .filter(|(c, _)| c.serves(line))
            .map(|(_, r)| *r)
            .collect();
        if holders.contains(&VerdictReason::NoCapacity) {
            UnroutableReason::CapacityExhausted
        } else if holders.contains(&VerdictReason::NotInPool) {
            UnroutableReason::OnlyOutsidePool
        } else if !holders.is_empty() {
            UnroutableReason::OnlyAtUnusableLocations
        } else {
            UnroutableReason::NoStock
        }
    }

    /// The allocations a complete cover makes, in pick order.
    pub fn allocations(
        &self,
        targets: &[&PlanLine],
        cover: &Cover,
        kind: &AllocationKind,
    ) -> Vec<PlannedAllocation> {
        cover
            .picks
            .iter()
            .map(|pick| {
                let site = &self.sites[pick.site];
                PlannedAllocation {
                    location: site.cand.location.clone(),
                    location_kind: site.cand.kind,
                    kind: kind.clone(),
                    lines: targets
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| pick.lines & (1 << i) != 0)
                        .map(|(_, l)| AllocatedLine {
                            line_id: l.line_id,
                            sku: l.sku.clone(),
                            qty: l.qty,
                        })
                        .collect(),
                    distance_km: site.distance_km,
                }
            })
            .collect()
    }
}

pub(super) fn describe(allocations: &[PlannedAllocation]) -> String {
    let mut out = String::new();
    for (i, a) in allocations.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "{} ({} line(s), {:.1} km)",
            a.location,
            a.lines.len(),
            a.distance_km
        );
    }
    out
}

pub(super) fn plan_shipping(
    order: &PlanInput,
    candidates: &[Candidate],
    by_id: &[u32],
    profile: &RoutingProfile,
    to: &GeoPoint,
) -> Result<Plan, PlanError> {
    let targets: Vec<&PlanLine> = order.lines().iter().collect();
    let (mut table, slots) = explain::table(candidates, by_id, to);
    let field = field(candidates, None, &mut table, &slots, profile, &targets);
    let cover = cover::cover(&targets, &field.sites, profile.max_splits());
    if cover.uncovered != 0 {
        return Err(PlanError::Unroutable {
            lines: field.unroutable(&targets, cover.uncovered),
        });
    }
    let allocations = field.allocations(&targets, &cover, &AllocationKind::Ship);
    let (strategy, summary) = match cover.kind {
        CoverKind::Single => (
            Strategy::SingleLocation,
            format!(
                "one shipment from {}: the best single location that serves the whole order",
                describe(&allocations)
            ),
        ),
        CoverKind::Greedy => (
            Strategy::GreedyCover,
            format!(
                "no single location serves the whole order; greedy set cover (most remaining \
                 units first, at most {} shipments, may not be minimal) chose {} shipment(s): {}",
                profile.max_splits(),
                allocations.len(),
                describe(&allocations)
            ),
        ),
    };
    let lines = cover::line_verdicts(&targets, &field.sites, &field.units, &cover)
        .into_iter()
        .zip(&targets)
        .map(|(verdicts, line)| LineExplanation {
            line_id: line.line_id,
            sku: line.sku.clone(),
            qty: line.qty,
            verdicts,
        })
        .collect();
    Ok(Plan {
        allocations,
        explanation: super::Explanation {
            strategy,
            summary,
            candidates: table,
            lines,
        },
    })
}
