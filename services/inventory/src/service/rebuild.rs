//! Redis is a cache that can be lost (§3): rebuild the gate from PostgreSQL, and compare the
//! two (reconciler and `CheckInvariants`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use omni_types::{LocationId, Sku};

use super::{Inventory, InventoryError};
use crate::domain::StockLevel;
use crate::reservations::{GateStatus, HoldRecord, HoldState, RebuildSnapshot};
use crate::store::{AuditedLevel, Drift};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub epoch: u64,
    pub levels: usize,
    pub holds: usize,
}

impl Inventory {
    /// Rebuilds when the gate has no epoch (first start, Redis restarted, FLUSHALL, failover to
    /// an empty primary). Returns `None` when nothing was needed or another replica is at it.
    pub async fn rebuild_if_needed(&self) -> Result<Option<RebuildReport>, InventoryError> {
        match self.gate.status().await? {
            GateStatus::Missing => self.rebuild().await,
            GateStatus::Ready { .. } | GateStatus::Rebuilding => Ok(None),
        }
    }

    /// Takes the rebuild lock, writes a new epoch (holds under the old one now fail), waits one
    /// grace period for writes already in flight, then loads counters and HELD reservations
    /// from PostgreSQL. Reservations are refused with UNAVAILABLE until it finishes.
    pub async fn rebuild(&self) -> Result<Option<RebuildReport>, InventoryError> {
        let epoch = new_epoch();
        let lock_ttl = self.settings.hold_grace * 3 + Duration::from_secs(30);
        if !self.gate.begin_rebuild(epoch, lock_ttl).await? {
            return Ok(None);
        }
        tracing::warn!(epoch, "rebuilding the reservation gate from PostgreSQL");
        tokio::time::sleep(self.settings.hold_grace).await;
        let now = self.now();
        let levels = self.store.all_levels().await?;
        let holds: Vec<HoldRecord> = self
            .store
            .held_reservations()
            .await?
            .into_iter()
            .map(|stored| HoldRecord {
                reservation: stored.reservation,
                state: HoldState::Durable,
                epoch,
                created_at: stored.created_at,
                capacity: stored.capacity,
            })
            .collect();
        let capacity = self.store.recent_capacity(now).await?;
        let report = RebuildReport {
            epoch,
            levels: levels.len(),
            holds: holds.len(),
        };
        self.gate
            .load(RebuildSnapshot {
                epoch,
                levels,
                holds,
                capacity,
            })
            .await?;
        self.gate.finish_rebuild(epoch).await?;
        tracing::info!(
            epoch,
            levels = report.levels,
            holds = report.holds,
            "gate rebuilt"
        );
        Ok(Some(report))
    }

    /// Compares the gate with PostgreSQL and PostgreSQL with its own ledger, page by page. With
    /// `repair`, `on_hand` drift inside PostgreSQL is fixed from the ledger, `on_hand` and
    /// `safety` drift in the gate is overwritten from PostgreSQL, and `reserved` drift in the
    /// gate triggers a rebuild.
    ///
    /// The two stores are read at different instants, and a busy key is always between the
    /// two steps of some write (a hold is in Redis before PostgreSQL, a receipt the other way
    /// round). So a difference is only a suspicion: the key is read again after
    /// [`SETTLE`], and only a difference that stayed exactly the same counts as drift. A key
    /// that moved meanwhile is left to a later, quieter pass; repairing it now would write a
    /// value that was already stale.
    pub async fn check_invariants(&self, repair: bool) -> Result<InvariantReport, InventoryError> {
        self.compare_stores(repair, Pace::Flat).await
    }

    /// The background reconciler's pass: [`Inventory::check_invariants`] with repair, paced so
    /// that it never takes more than a small share of the service and its databases. Unpaced, a
    /// pass over 100,000 levels kept a PostgreSQL backend busy for some 2.5 s every minute, on a
    /// machine whose cores the calls in flight needed.
    pub async fn reconcile(&self) -> Result<InvariantReport, InventoryError> {
        self.compare_stores(true, Pace::Background).await
    }

    async fn compare_stores(
        &self,
        repair: bool,
        pace: Pace,
    ) -> Result<InvariantReport, InventoryError> {
        let mut suspects = Vec::new();
        let mut pairs_checked = 0;
        let mut after: Option<(Sku, LocationId)> = None;
        loop {
            let started = Instant::now();
            // Per page: a paced pass lasts long enough for holds pending at its start to have
            // their rows by its end, and a stale list would make every later page suspect.
            let pending = self.unrecorded_pending().await?;
            let page = self.store.audit_page(after.as_ref(), AUDIT_PAGE).await?;
            pairs_checked += page.len();
            let last_page = (page.len() as u64) < AUDIT_PAGE;
            after = page.last().map(|a| (a.sku.clone(), a.location.clone()));
            suspects.extend(
                self.observe(page, &pending, repair)
                    .await?
                    .into_iter()
                    .filter(|o| !o.findings().is_empty()),
            );
            if last_page {
                break;
            }
            pace.rest_after(started.elapsed()).await;
        }
        let mut report = InvariantReport {
            drifts: Vec::new(),
            pairs_checked,
            unsettled: 0,
        };
        if suspects.is_empty() {
            return Ok(report);
        }
        tokio::time::sleep(SETTLE).await;
        let keys: Vec<_> = suspects
            .iter()
            .map(|o| (o.audit.sku.clone(), o.audit.location.clone()))
            .collect();
        let pending = self.unrecorded_pending().await?;
        let again = self
            .observe(self.store.audit_keys(&keys).await?, &pending, repair)
            .await?;
        let mut rebuild = false;
        for first in suspects {
            if !again.contains(&first) {
                report.unsettled += 1;
                continue;
            }
            let findings = first.findings();
            let (sku, location) = (&first.audit.sku, &first.audit.location);
            let mut counters_off = false;
            for (store, field, found, expected) in findings {
                report.drifts.push(Drift {
                    sku: sku.to_string(),
                    location: location.to_string(),
                    field,
                    store,
                    found,
                    expected,
                    repaired: repair,
                });
                match (store, field) {
                    ("postgres", _) if repair => {
                        self.store
                            .set_on_hand_from_ledger(sku, location, first.audit.ledger)
                            .await?;
                    }
                    ("redis", "reserved") => rebuild = true,
                    ("redis", _) => counters_off = true,
                    _ => {}
                }
            }
            if repair && counters_off {
                self.gate
                    .set_counters(
                        sku,
                        location,
                        first.expected_on_hand(),
                        first.audit.level.safety_stock,
                    )
                    .await?;
            }
        }
        if report.unsettled > 0 {
            tracing::info!(
                keys = report.unsettled,
                "keys changed while being compared; left to the next pass"
            );
        }
        if repair && rebuild {
            self.rebuild().await?;
        }
        Ok(report)
    }

    /// What PENDING holds add to `reserved` in the gate beyond PostgreSQL's HELD rows: the
    /// ones with no row yet (a PENDING hold whose row committed is already in the HELD sum).
    async fn unrecorded_pending(&self) -> Result<BTreeMap<(Sku, LocationId), i64>, InventoryError> {
        let mut records = Vec::new();
        for id in self.gate.pending_older_than(self.now(), 10_000).await? {
            if let Some(record) = self.gate.get(&id).await? {
                records.push(record);
            }
        }
        let ids: Vec<String> = records
            .iter()
            .map(|r| r.reservation.id.to_string())
            .collect();
        let recorded = self.store.recorded_reservations(&ids).await?;
        let mut pending: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        for (record, _) in records
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !recorded.contains(*id))
        {
            for line in &record.reservation.lines {
                *pending
                    .entry((line.line.sku.clone(), line.line.location.clone()))
                    .or_default() += i64::from(line.remaining());
            }
        }
        Ok(pending)
    }

    async fn observe(
        &self,
        audits: Vec<AuditedLevel>,
        pending: &BTreeMap<(Sku, LocationId), i64>,
        repair: bool,
    ) -> Result<Vec<Observation>, InventoryError> {
        let keys: Vec<(Sku, LocationId)> = audits
            .iter()
            .map(|a| (a.sku.clone(), a.location.clone()))
            .collect();
        let gate = self.gate.stored_levels(&keys).await?;
        Ok(audits
            .into_iter()
            .zip(keys)
            .zip(gate)
            .map(|((audit, key), gate)| Observation {
                pending: pending.get(&key).copied().unwrap_or(0),
                audit,
                gate,
                repair,
            })
            .collect())
    }
}

/// Keys compared per page: bounds the reconciler's memory and the size of one Redis pipeline, and
/// keeps each page's query short (about 6 ms of PostgreSQL on the bench machine), so calls
/// waiting behind it on a busy core wait little.
const AUDIT_PAGE: u64 = 250;

/// How a comparison spaces its pages.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Page after page: an operator asked and waits for the answer.
    Flat,
    /// After each page, rest [`BACKGROUND_REST_PER_WORK`] times as long as the page took.
    Background,
}

/// The background reconciler works at most a fifth of the time it runs: each key of a page costs
/// the database two correlated sums, and the job has a minute until its next pass.
const BACKGROUND_REST_PER_WORK: u32 = 4;

impl Pace {
    async fn rest_after(self, worked: Duration) {
        if let Pace::Background = self {
            tokio::time::sleep(worked * BACKGROUND_REST_PER_WORK).await;
        }
    }
}
/// How long a suspect key must keep exactly the same values before its difference counts.
/// Far longer than the gap between the two steps of any write, far shorter than a pass.
const SETTLE: Duration = Duration::from_millis(250);

/// One reconciler pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvariantReport {
    pub drifts: Vec<Drift>,
    pub pairs_checked: usize,
    /// Keys that differed at first and changed before the second look: not judged this pass.
    pub unsettled: usize,
}

/// One key as both stores showed it at (nearly) one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observation {
    audit: AuditedLevel,
    gate: StockLevel,
    /// Units of PENDING holds on this key that PostgreSQL has no row for yet.
    pending: i64,
    /// Repairing: PostgreSQL's `on_hand` is (about to be) the ledger's sum.
    repair: bool,
}

impl Observation {
    fn expected_on_hand(&self) -> i64 {
        if self.repair {
            self.audit.ledger
        } else {
            self.audit.level.on_hand
        }
    }

    /// (store, field, found, expected) for every counter that differs.
    fn findings(&self) -> Vec<(&'static str, &'static str, i64, i64)> {
        let truth = &self.audit.level;
        let mut out = Vec::new();
        if truth.on_hand != self.audit.ledger {
            out.push(("postgres", "on_hand", truth.on_hand, self.audit.ledger));
        }
        for (field, found, expected) in [
            ("on_hand", self.gate.on_hand, self.expected_on_hand()),
            ("safety_stock", self.gate.safety_stock, truth.safety_stock),
            (
                "reserved",
                self.gate.reserved,
                truth.reserved + self.pending,
            ),
        ] {
            if found != expected {
                out.push(("redis", field, found, expected));
            }
        }
        out
    }
}

/// Epochs only need to differ from the previous one; time-based keeps them readable in logs.
fn new_epoch() -> u64 {
    let micros = chrono::Utc::now().timestamp_micros().unsigned_abs();
    micros ^ u64::from(rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_background_pace_rests_four_times_the_work_and_the_flat_one_not_at_all() {
        let worked = Duration::from_millis(25);
        let start = tokio::time::Instant::now();
        Pace::Background.rest_after(worked).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));

        let start = tokio::time::Instant::now();
        Pace::Flat.rest_after(worked).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
