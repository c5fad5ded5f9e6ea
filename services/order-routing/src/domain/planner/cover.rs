//! Choosing the locations that cover a set of lines: exact for one location, greedy beyond.
//!
//! Lines are bits of a `u128` (an order has at most 100 lines), and each usable location's
//! "lines it can serve in full" mask and distance are computed once, so each greedy step is a
//! pass of bit operations over the locations rather than stock look-ups.

use std::cmp::Ordering;

use super::explain::{LineVerdict, VerdictReason};
use super::{Candidate, LocationKind, PlanLine};

pub(super) type LineMask = u128;

/// A location allowed to serve lines, with what it can serve.
pub(super) struct Site<'a> {
    pub cand: &'a Candidate,
    /// Index in the explanation's candidate table.
    pub slot: u32,
    pub distance_km: f64,
    /// 0 = preferred kind; compared after distance.
    pub preference: u8,
    pub mask: LineMask,
    /// Where this site's units of each target line start in the field's [`Units`].
    row: usize,
}

/// Units of every target line at every site, looked up in the candidates' stock maps once: the
/// masks and every out-of-stock verdict read them (a look-up compares SKU strings).
#[derive(Default)]
pub(super) struct Units(Vec<u32>);

impl Units {
    fn at(&self, site: &Site<'_>, line: usize) -> u32 {
        self.0[site.row + line]
    }
}

impl<'a> Site<'a> {
    pub fn new(
        cand: &'a Candidate,
        slot: u32,
        distance_km: f64,
        prefer_warehouses: bool,
        targets: &[&PlanLine],
        units: &mut Units,
    ) -> Self {
        let row = units.0.len();
        let mut mask = 0;
        for (i, line) in targets.iter().enumerate() {
            let available = cand.available(&line.sku);
            if available >= line.qty.get() {
                mask |= 1 << i;
            }
            units.0.push(available);
        }
        Self {
            cand,
            slot,
            distance_km,
            preference: u8::from(prefer_warehouses && cand.kind == LocationKind::Store),
            mask,
            row,
        }
    }

    /// The tie-break order after coverage: distance, preference, id.
    fn rank(&self, other: &Site<'_>) -> Ordering {
        self.distance_km
            .total_cmp(&other.distance_km)
            .then(self.preference.cmp(&other.preference))
            .then_with(|| self.cand.location.cmp(&other.cand.location))
    }
}

/// Sorts sites so that "first" means best by distance, preference, then id.
pub(super) fn sort_sites(sites: &mut [Site<'_>]) {
    sites.sort_by(|a, b| a.rank(b));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CoverKind {
    Single,
    Greedy,
}

pub(super) struct Pick {
    pub site: usize,
    pub lines: LineMask,
    /// Every site's (units, lines) score at this greedy step, by site index; explains the step
    /// without recomputing it per line. Empty for a single-location cover.
    pub scores: Vec<(u64, u32)>,
}

pub(super) struct Cover {
    pub kind: CoverKind,
    pub picks: Vec<Pick>,
    pub uncovered: LineMask,
}

pub(super) fn full_mask(n: usize) -> LineMask {
    if n >= 128 {
        LineMask::MAX
    } else {
        (1 << n) - 1
    }
}

/// Cover `targets` with at most `max_picks` of `sites` (sorted by [`sort_sites`]).
pub(super) fn cover(targets: &[&PlanLine], sites: &[Site<'_>], max_picks: usize) -> Cover {
    let all = full_mask(targets.len());
    if max_picks == 0 {
        return Cover {
            kind: CoverKind::Single,
            picks: Vec::new(),
            uncovered: all,
        };
    }
    if let Some(site) = sites.iter().position(|s| s.mask & all == all) {
        return Cover {
            kind: CoverKind::Single,
            picks: vec![Pick {
                site,
                lines: all,
                scores: Vec::new(),
            }],
            uncovered: 0,
        };
    }
    let mut remaining = all;
    let mut picks = Vec::new();
    while remaining != 0 && picks.len() < max_picks {
        let mut best: Option<(usize, (u64, u32))> = None;
        let mut scores = Vec::with_capacity(sites.len());
        for (i, site) in sites.iter().enumerate() {
            let key = coverage(targets, site.mask & remaining);
            scores.push(key);
            // Strictly better only: on equal coverage the earlier (closer, preferred, lower id)
            // site stays, which is what makes the cover deterministic.
            if key.1 > 0 && best.is_none_or(|(_, b)| key > b) {
                best = Some((i, key));
            }
        }
        let Some((site, _)) = best else { break };
        let lines = sites[site].mask & remaining;
        picks.push(Pick {
            site,
            lines,
            scores,
        });
        remaining &= !lines;
    }
    Cover {
        kind: CoverKind::Greedy,
        picks,
        uncovered: remaining,
    }
}

/// (units, lines) covered by `mask`: the greedy step's score.
fn coverage(targets: &[&PlanLine], mask: LineMask) -> (u64, u32) {
    let mut units = 0u64;
    let mut m = mask;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        units += u64::from(targets[i].qty.get());
        m &= m - 1;
    }
    (units, mask.count_ones())
}

/// The verdict of every site for every target line (outer index = target line).
pub(super) fn line_verdicts(
    targets: &[&PlanLine],
    sites: &[Site<'_>],
    units: &Units,
    cover: &Cover,
) -> Vec<Vec<LineVerdict>> {
    (0..targets.len())
        .map(|i| {
            let bit: LineMask = 1 << i;
            let pick = cover.picks.iter().find(|p| p.lines & bit != 0);
            sites
                .iter()
                .enumerate()
                .map(|(s, site)| {
                    let reason = if site.mask & bit == 0 {
                        VerdictReason::OutOfStock {
                            available: units.at(site, i),
                        }
                    } else {
                        match pick {
                            None => VerdictReason::SplitLimit,
                            Some(p) if p.site == s => VerdictReason::Chosen,
                            Some(p) => passed_over(targets, s, sites, p, cover.kind),
                        }
                    };
                    LineVerdict {
                        candidate: site.slot,
                        reason,
                    }
                })
                .collect()
        })
        .collect()
}

/// Why site `s`, which could serve the line, lost it to the site `pick` chose.
fn passed_over(
    targets: &[&PlanLine],
    s: usize,
    sites: &[Site<'_>],
    pick: &Pick,
    kind: CoverKind,
) -> VerdictReason {
    let (site, winner) = (&sites[s], &sites[pick.site]);
    let all = full_mask(targets.len());
    match kind {
        CoverKind::Single if site.mask & all != all => return VerdictReason::MoreShipments,
        CoverKind::Greedy if pick.scores.get(s) < pick.scores.get(pick.site) => {
            return VerdictReason::CoversLess;
        }
        _ => {}
    }
    match site.distance_km.total_cmp(&winner.distance_km) {
        Ordering::Greater => VerdictReason::Farther,
        _ if site.preference > winner.preference => VerdictReason::LowerPreference,
        _ => VerdictReason::IdOrder,
    }
}
