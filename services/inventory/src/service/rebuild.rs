//! Redis is a cache that can be lost (§3): rebuild the gate from PostgreSQL, and compare the
//! two (reconciler and `CheckInvariants`).

use std::collections::BTreeMap;
use std::time::Duration;

use omni_types::{LocationId, Sku};

use super::{Inventory, InventoryError};
use crate::reservations::{GateStatus, HoldRecord, HoldState, RebuildSnapshot};
use crate::store::Drift;

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

    /// Compares the gate with PostgreSQL and PostgreSQL with its own ledger. With `repair`,
    /// `on_hand` and `safety` drift in the gate is overwritten from PostgreSQL, drift inside
    /// PostgreSQL is fixed from the ledger and the reservations, and `reserved` drift in the
    /// gate triggers a rebuild. PENDING holds (not yet in PostgreSQL) are counted in.
    pub async fn check_invariants(&self, repair: bool) -> Result<Vec<Drift>, InventoryError> {
        let mut drifts = self.store.check_database(repair).await?;
        let rows = self.store.all_levels().await?;
        let keys: Vec<(Sku, LocationId)> = rows
            .iter()
            .map(|(s, l, _)| (s.clone(), l.clone()))
            .collect();
        let gate_levels = self.gate.levels(&keys).await?;
        let now = self.now();
        let mut pending: BTreeMap<(Sku, LocationId), i64> = BTreeMap::new();
        for id in self.gate.pending_older_than(now, 10_000).await? {
            if let Some(record) = self.gate.get(&id).await? {
                for line in &record.reservation.lines {
                    *pending
                        .entry((line.line.sku.clone(), line.line.location.clone()))
                        .or_default() += i64::from(line.remaining());
                }
            }
        }
        let mut rebuild = false;
        for ((sku, location, truth), seen) in rows.iter().zip(gate_levels) {
            let expected_reserved =
                truth.reserved + pending.get(&(sku.clone(), location.clone())).unwrap_or(&0);
            let mut counters_off = false;
            for (field, found, expected) in [
                ("on_hand", seen.on_hand, truth.on_hand),
                ("safety_stock", seen.safety_stock, truth.safety_stock),
                ("reserved", seen.reserved, expected_reserved),
            ] {
                if found == expected {
                    continue;
                }
                drifts.push(Drift {
                    sku: sku.to_string(),
                    location: location.to_string(),
                    field,
                    store: "redis",
                    found,
                    expected,
                    repaired: repair,
                });
                if field == "reserved" {
                    rebuild = true;
                } else {
                    counters_off = true;
                }
            }
            if repair && counters_off {
                self.gate
                    .set_counters(sku, location, truth.on_hand, truth.safety_stock)
                    .await?;
            }
        }
        if repair && rebuild {
            self.rebuild().await?;
        }
        Ok(drifts)
    }
}

/// Epochs only need to differ from the previous one; time-based keeps them readable in logs.
fn new_epoch() -> u64 {
    let micros = chrono::Utc::now().timestamp_micros().unsigned_abs();
    micros ^ u64::from(rand::random::<u16>())
}
