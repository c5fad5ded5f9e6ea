//! Pickup in store (BOPIS): serve from the chosen store, fill gaps by transfer if the profile
//! allows, or refuse with nearby stores that could serve the whole order.
//!
//! The pickup store must have capacity left today even when everything comes by transfer: the
//! store's staff still prepare and hand over the order, which is what the capacity counts.

use omni_types::LocationId;

use super::cover::{self, CoverKind};
use super::explain::{self, Explanation, LineExplanation, LineVerdict, VerdictReason};
use super::ship;
use super::{
    AllocatedLine, AllocationKind, Candidate, LocationKind, Plan, PlanError, PlanInput, PlanLine,
    PlannedAllocation, StoreSuggestion, StoreUnavailable, Strategy,
};
use crate::domain::profile::RoutingProfile;

/// Most alternative stores offered when the chosen one cannot serve the order.
pub const MAX_SUGGESTIONS: usize = 3;

pub(super) fn plan_pickup(
    order: &PlanInput,
    candidates: &[Candidate],
    by_id: &[u32],
    profile: &RoutingProfile,
    store_id: &LocationId,
) -> Result<Plan, PlanError> {
    let store = candidates
        .iter()
        .find(|c| &c.location == store_id)
        .ok_or_else(|| PlanError::UnknownPickupStore {
            store: store_id.clone(),
        })?;
    if let Some(reason) = pickup_unavailable(store, profile) {
        return Err(PlanError::PickupStoreUnavailable {
            store: store_id.clone(),
            reason,
        });
    }
    let lines = order.lines();
    let refuse = |missing: &[&PlanLine]| PlanError::PickupStoreCannotServe {
        store: store_id.clone(),
        missing: missing.iter().map(|l| l.line_id).collect(),
        suggestions: suggestions(order, candidates, profile, store),
    };
    if !store.has_capacity() {
        return Err(refuse(&lines.iter().collect::<Vec<_>>()));
    }
    let (here, missing): (Vec<&PlanLine>, Vec<&PlanLine>) =
        lines.iter().partition(|l| store.serves(l));
    let pickup_allocation = (!here.is_empty()).then(|| PlannedAllocation {
        location: store.location.clone(),
        location_kind: store.kind,
        kind: AllocationKind::Pickup,
        lines: here
            .iter()
            .map(|l| AllocatedLine {
                line_id: l.line_id,
                sku: l.sku.clone(),
                qty: l.qty,
            })
            .collect(),
        distance_km: 0.0,
    });
    let (mut table, slots) = explain::table(candidates, by_id, &store.point);
    let store_slot = candidates
        .iter()
        .zip(&slots)
        .find(|(c, _)| c.location == store.location)
        .map_or(0, |(_, s)| *s);
    let store_verdict = |line: &PlanLine| {
        let reason = if store.serves(line) {
            VerdictReason::Chosen
        } else {
            VerdictReason::OutOfStock {
                available: store.available(&line.sku),
            }
        };
        LineVerdict {
            candidate: store_slot,
            reason,
        }
    };

    if missing.is_empty() {
        for (i, entry) in table.iter_mut().enumerate() {
            if i as u32 != store_slot {
                entry.location_verdict = Some(VerdictReason::NotChosenStore);
            }
        }
        return Ok(Plan {
            allocations: pickup_allocation.into_iter().collect(),
            explanation: Explanation {
                strategy: Strategy::Pickup,
                summary: format!("pickup at {}: the store has every line", store.location),
                candidates: table,
                lines: lines
                    .iter()
                    .map(|l| explain_line(l, vec![store_verdict(l)]))
                    .collect(),
            },
        });
    }

    if !profile.allow_transfer_to_store() {
        return Err(refuse(&missing));
    }
    let budget = profile
        .max_splits()
        .saturating_sub(usize::from(pickup_allocation.is_some()));
    let field = ship::field(
        candidates,
        Some(&store.location),
        &mut table,
        &slots,
        profile,
        &missing,
    );
    let cover = cover::cover(&missing, &field.sites, budget);
    if cover.uncovered != 0 {
        return Err(refuse(&missing));
    }
    let to = AllocationKind::TransferToStore {
        to: store.location.clone(),
    };
    let transfers = field.allocations(&missing, &cover, &to);
    let summary = format!(
        "pickup at {} once {} transfer(s) arrive: {}{}",
        store.location,
        transfers.len(),
        ship::describe(&transfers),
        if cover.kind == CoverKind::Greedy {
            "; sources chosen by greedy set cover (may not be minimal)"
        } else {
            ""
        }
    );
    let mut transfer_verdicts =
        cover::line_verdicts(&missing, &field.sites, &field.units, &cover).into_iter();
    let explained = lines
        .iter()
        .map(|l| {
            let mut verdicts = vec![store_verdict(l)];
            if store.serves(l) {
                verdicts.extend(field.sites.iter().map(|s| LineVerdict {
                    candidate: s.slot,
                    reason: VerdictReason::ServedAtPickupStore,
                }));
            } else {
                // `missing` keeps the order of `lines`, so the verdicts come out in step.
                verdicts.extend(transfer_verdicts.next().unwrap_or_default());
            }
            explain_line(l, verdicts)
        })
        .collect();
    Ok(Plan {
        allocations: pickup_allocation.into_iter().chain(transfers).collect(),
        explanation: Explanation {
            strategy: Strategy::PickupWithTransfer,
            summary,
            candidates: table,
            lines: explained,
        },
    })
}

fn explain_line(l: &PlanLine, verdicts: Vec<LineVerdict>) -> LineExplanation {
    LineExplanation {
        line_id: l.line_id,
        sku: l.sku.clone(),
        qty: l.qty,
        verdicts,
    }
}

fn pickup_unavailable(c: &Candidate, profile: &RoutingProfile) -> Option<StoreUnavailable> {
    if c.kind != LocationKind::Store {
        Some(StoreUnavailable::NotAStore)
    } else if !c.capabilities.pickup {
        Some(StoreUnavailable::NoPickup)
    } else if !c.active {
        Some(StoreUnavailable::Inactive)
    } else if !c.in_channel_pool {
        Some(StoreUnavailable::NotInPool)
    } else if profile.is_excluded(&c.location) {
        Some(StoreUnavailable::Excluded)
    } else {
        None
    }
}

/// The nearest other stores that could take this pickup whole, today.
fn suggestions(
    order: &PlanInput,
    candidates: &[Candidate],
    profile: &RoutingProfile,
    store: &Candidate,
) -> Vec<StoreSuggestion> {
    let mut found: Vec<StoreSuggestion> = candidates
        .iter()
        .filter(|c| c.location != store.location)
        .filter(|c| pickup_unavailable(c, profile).is_none() && c.has_capacity())
        .filter(|c| order.lines().iter().all(|l| c.serves(l)))
        .map(|c| StoreSuggestion {
            store: c.location.clone(),
            distance_km: c.point.distance_km(&store.point),
        })
        .collect();
    found.sort_by(|a, b| {
        a.distance_km
            .total_cmp(&b.distance_km)
            .then_with(|| a.store.cmp(&b.store))
    });
    found.truncate(MAX_SUGGESTIONS);
    found
}
