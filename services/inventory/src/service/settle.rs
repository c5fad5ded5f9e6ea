//! Confirm, extend, commit, release and expire a reservation, and the reaper's two sweeps.

use chrono::{DateTime, Utc};
use omni_types::ReservationId;

use super::{Inventory, InventoryError};
use crate::domain::{LineSelection, Reservation, StateError};
use crate::events::outgoing::{self, Cause};
use crate::reservations::{GateError, HoldState};
use crate::store::{HoldChange, SettleAction, SettleRefused, Settled};

/// What one pass of the reaper did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    pub expired: usize,
    pub orphans_undone: usize,
    pub orphans_kept: usize,
}

impl Inventory {
    /// The owner of the reservation is durable: it no longer expires.
    pub async fn confirm(&self, id: &ReservationId) -> Result<Reservation, InventoryError> {
        let reservation = self.change_hold(id, HoldChange::Confirm).await?;
        if let Err(error) = self.gate.confirm(id).await {
            // PostgreSQL is the authority the reaper checks before expiring anything.
            tracing::warn!(reservation = %id, %error, "gate confirm failed; PostgreSQL has it");
        }
        Ok(reservation)
    }

    pub async fn extend(
        &self,
        id: &ReservationId,
        ttl: chrono::Duration,
    ) -> Result<Reservation, InventoryError> {
        let expires_at = self.now() + ttl;
        let reservation = self.change_hold(id, HoldChange::Extend(expires_at)).await?;
        if let Err(error) = self.gate.extend(id, expires_at).await {
            tracing::warn!(reservation = %id, %error, "gate extend failed; PostgreSQL has it");
        }
        Ok(reservation)
    }

    async fn change_hold(
        &self,
        id: &ReservationId,
        change: HoldChange,
    ) -> Result<Reservation, InventoryError> {
        match self.store.update_hold(id, change, self.now()).await? {
            Ok(reservation) => Ok(reservation),
            Err(refused) => Err(refusal(id, refused)),
        }
    }

    /// Goods left the building. Lowers what can be sold, so the gate moves first (§3).
    pub async fn commit(
        &self,
        id: &ReservationId,
        lines: LineSelection,
    ) -> Result<Settled, InventoryError> {
        match self.gate.commit(id, &lines).await {
            Ok(_) => {}
            // Already applied in the gate by an earlier try whose database write failed, or a
            // reservation the gate lost: PostgreSQL decides below.
            Err(GateError::InvalidState(_) | GateError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
        let now = self.now();
        self.settle(id, SettleAction::Commit(lines), now, Cause::Committed)
            .await
    }

    /// Cancelled: raises what can be sold, so PostgreSQL moves first (§3).
    pub async fn release(
        &self,
        id: &ReservationId,
        lines: LineSelection,
    ) -> Result<Settled, InventoryError> {
        let now = self.now();
        let settled = self
            .settle(
                id,
                SettleAction::Release(lines.clone()),
                now,
                Cause::Released,
            )
            .await?;
        let moved = LineSelection::Lines(
            settled
                .effects
                .iter()
                .filter_map(|e| {
                    omni_types::Quantity::parse(i64::from(e.qty))
                        .ok()
                        .map(|qty| {
                            crate::domain::ReservationLine::new(
                                e.sku.clone(),
                                e.location.clone(),
                                qty,
                            )
                        })
                })
                .collect(),
        );
        if let Err(error) = self.gate.release(id, &moved).await {
            // The gate still counts the units as reserved: it shows less than the truth, which
            // the reconciler repairs; it never shows more.
            tracing::warn!(reservation = %id, %error, "gate release failed after the database");
        }
        Ok(settled)
    }

    async fn settle(
        &self,
        id: &ReservationId,
        action: SettleAction,
        now: DateTime<Utc>,
        cause: Cause,
    ) -> Result<Settled, InventoryError> {
        let expiring = matches!(action, SettleAction::Expire(_));
        let outcome = self
            .store
            .settle(id, &action, now, |settled| {
                let mut events = outgoing::changes(&settled.levels, cause, now);
                if expiring {
                    events.push(outgoing::reservation_expired(
                        id,
                        &settled.reservation.lines,
                        now,
                    ));
                }
                events
            })
            .await?;
        match outcome {
            Ok(settled) => {
                self.events_written();
                Ok(settled)
            }
            Err(refused) => Err(refusal(id, refused)),
        }
    }

    /// One pass of the reaper: expires unconfirmed reservations past their expiry (PostgreSQL is
    /// the authority, claimed with SKIP LOCKED; the gate's list catches holds the database does
    /// not know yet), then resolves PENDING holds older than the grace period.
    pub async fn reap(&self, limit: usize) -> Result<ReapReport, InventoryError> {
        let now = self.now();
        let mut report = ReapReport::default();
        let mut due = self.store.due_for_expiry(now, limit as u64).await?;
        for id in self.gate.due_for_expiry(now, limit).await? {
            if !due.contains(&id) {
                due.push(id);
            }
        }
        for id in due {
            match self
                .settle(&id, SettleAction::Expire(now), now, Cause::Released)
                .await
            {
                Ok(_) => {
                    report.expired += 1;
                    if let Err(error) = self.gate.expire(&id, now).await {
                        tracing::debug!(reservation = %id, %error, "gate expire after database");
                    }
                }
                Err(InventoryError::UnknownReservation(_)) => {} // an orphan: handled below
                Err(InventoryError::State { error, .. }) => self.sync_gate(&id, &error).await,
                Err(other) => return Err(other),
            }
        }
        let grace = chrono::Duration::from_std(self.settings.hold_grace)
            .unwrap_or_else(|_| chrono::Duration::seconds(10));
        for id in self.gate.pending_older_than(now - grace, limit).await? {
            match self.store.reservation(&id).await? {
                Some(_) => {
                    self.gate.mark_durable(&id).await?;
                    report.orphans_kept += 1;
                }
                None => {
                    // statement_timeout < grace / 2: no transaction can still commit this row.
                    match self.gate.undo(&id).await {
                        Ok(()) => report.orphans_undone += 1,
                        Err(GateError::InvalidState(StateError::Durable)) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
        Ok(report)
    }

    /// The database refused to expire a hold the gate thought due: bring the gate in line.
    async fn sync_gate(&self, id: &ReservationId, error: &StateError) {
        let result = match (error, self.store.reservation(id).await) {
            (StateError::Confirmed, _) => self.gate.confirm(id).await,
            (StateError::NotDue { expires_at }, _) => self.gate.extend(id, *expires_at).await,
            (StateError::InvalidTransition { .. }, Ok(Some(_))) => {
                // Finished in PostgreSQL but still held in the gate (a lost release).
                match self.gate.get(id).await {
                    Ok(Some(record)) if record.state != HoldState::Pending => {
                        self.gate.release(id, &LineSelection::All).await.map(|_| ())
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(reservation = %id, error = %e, "could not sync gate with database");
        }
    }
}

fn refusal(id: &ReservationId, refused: SettleRefused) -> InventoryError {
    match refused {
        SettleRefused::NotFound => InventoryError::UnknownReservation(id.to_string()),
        SettleRefused::State(error, _) => InventoryError::State {
            id: id.clone(),
            error,
        },
    }
}
