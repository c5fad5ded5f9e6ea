//! Reserve and convert: the gate decides atomically, PostgreSQL makes it durable (§3).

use std::collections::BTreeSet;

use omni_types::ReservationId;

use super::{Inventory, InventoryError};
use crate::domain::{Reservation, ReserveRequest, local_date};
use crate::events::outgoing::{self, Cause};
use crate::reservations::{
    CapacityClaim, ConvertOutcome, ConvertRequest, HoldOutcome, HoldRequest, HoldState,
    fingerprint_digest,
};
use crate::store::{InsertHold, StoreError};

#[derive(Debug, Clone)]
pub struct ReserveCommand {
    pub request: ReserveRequest,
    /// An order's reservation takes one unit of each location's daily capacity.
    pub count_capacity: bool,
}

#[derive(Debug, Clone)]
pub struct ReserveReply {
    pub reservation: Reservation,
    /// The id had been reserved before with the same lines: this is the first answer.
    pub replayed: bool,
}

impl Inventory {
    pub async fn reserve(&self, command: ReserveCommand) -> Result<ReserveReply, InventoryError> {
        let ReserveRequest { id, lines, ttl } = command.request;
        let now = self.now();
        let capacity = self
            .capacity_claims(
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (format!("lines[{i}].location_id"), l.location.clone())),
                command.count_capacity,
                now,
            )
            .await?;
        let expires_at = Some(now + ttl.unwrap_or_else(|| self.default_ttl()));
        let outcome = self
            .with_epoch(|epoch| {
                self.gate.reserve(HoldRequest {
                    id: id.clone(),
                    lines: lines.clone(),
                    expires_at,
                    capacity: capacity.clone(),
                    epoch,
                    now,
                })
            })
            .await?;
        let levels = match outcome {
            HoldOutcome::Held { levels } => levels,
            HoldOutcome::Insufficient(shortfalls) => {
                return Err(InventoryError::Insufficient(shortfalls));
            }
            HoldOutcome::CapacityExhausted(locations) => {
                return Err(InventoryError::CapacityExhausted(locations));
            }
            HoldOutcome::Duplicate {
                same_lines: false, ..
            } => {
                return Err(InventoryError::IdReused(id));
            }
            HoldOutcome::Duplicate {
                state: HoldState::Pending,
                ..
            } => return Err(InventoryError::InProgress(id)),
            HoldOutcome::Duplicate { .. } => {
                return self.first_answer(&id, &fingerprint_digest(&lines)).await;
            }
        };
        let reservation = Reservation::hold(id.clone(), lines.clone(), expires_at);
        let hold = InsertHold {
            reservation: reservation.clone(),
            fingerprint: fingerprint_digest(&lines),
            capacity: capacity
                .iter()
                .map(|c| (c.location.clone(), c.day))
                .collect(),
            created_at: now,
        };
        // The gate's counters describe the change; summing the held lines in PostgreSQL would
        // cost more with every open reservation on the key.
        let events = outgoing::changes(&levels, Cause::Reserved, now);
        match self.store.insert_hold(&hold, &events).await {
            Ok(_) if super::Faults::fire(&self.faults.lose_commit_acknowledgement) => {
                self.events_written();
                tracing::warn!(reservation = %id, "injected: commit acknowledgement lost");
                Err(InventoryError::Unavailable(
                    "database connection lost during COMMIT (injected)".to_owned(),
                ))
            }
            Ok(_) => {
                self.events_written();
                if let Err(error) = self.gate.mark_durable(&id).await {
                    // The row exists; the reaper will find the PENDING hold, see the row, and mark
                    // it durable. Until then a duplicate is told to retry, never a false success.
                    tracing::warn!(reservation = %id, %error, "could not mark hold durable");
                }
                Ok(ReserveReply {
                    reservation,
                    replayed: false,
                })
            }
            Err(StoreError::Conflict(_)) => {
                // The gate forgot a reservation PostgreSQL remembers (tombstone expired or a
                // rebuild): give the new hold back and answer from the record.
                self.undo_quietly(&id).await;
                self.first_answer(&id, &hold.fingerprint).await
            }
            Err(error) if error.is_ambiguous() => {
                tracing::warn!(reservation = %id, %error, "commit outcome unknown; the reaper decides");
                Err(error.into())
            }
            Err(error) => {
                self.undo_quietly(&id).await;
                Err(error.into())
            }
        }
    }

    /// Turns a checkout hold into an order's reservation without letting go of the stock.
    pub async fn convert_hold(
        &self,
        hold_id: ReservationId,
        order_id: ReservationId,
        ttl: Option<chrono::Duration>,
    ) -> Result<Reservation, InventoryError> {
        let now = self.now();
        let Some(stored) = self.store.reservation(&hold_id).await? else {
            return Err(InventoryError::UnknownReservation(hold_id.to_string()));
        };
        let lines = stored.reservation.requested_lines();
        let capacity = self
            .capacity_claims(
                lines
                    .iter()
                    .map(|l| ("hold_id".to_owned(), l.location.clone())),
                true,
                now,
            )
            .await?;
        let expires_at = Some(now + ttl.unwrap_or_else(|| self.default_ttl()));
        let outcome = self
            .with_epoch(|epoch| {
                self.gate.convert(ConvertRequest {
                    hold_id: hold_id.clone(),
                    order_id: order_id.clone(),
                    expires_at,
                    capacity: capacity.clone(),
                    epoch,
                    now,
                })
            })
            .await
            .map_err(|e| match e {
                crate::reservations::GateError::NotFound => {
                    InventoryError::UnknownReservation(hold_id.to_string())
                }
                crate::reservations::GateError::InvalidState(error) => InventoryError::State {
                    id: hold_id.clone(),
                    error,
                },
                other => other.into(),
            })?;
        match outcome {
            ConvertOutcome::Converted => {}
            ConvertOutcome::CapacityExhausted(locations) => {
                return Err(InventoryError::CapacityExhausted(locations));
            }
            ConvertOutcome::Duplicate {
                same_lines: false, ..
            } => {
                return Err(InventoryError::IdReused(order_id));
            }
            ConvertOutcome::Duplicate {
                state: HoldState::Pending,
                ..
            } => return Err(InventoryError::InProgress(order_id)),
            ConvertOutcome::Duplicate { .. } => {
                return self
                    .first_answer(&order_id, &fingerprint_digest(&lines))
                    .await
                    .map(|r| r.reservation);
            }
        }
        let reservation = Reservation::hold(order_id.clone(), lines.clone(), expires_at);
        let order = InsertHold {
            reservation: reservation.clone(),
            fingerprint: fingerprint_digest(&lines),
            capacity: capacity
                .iter()
                .map(|c| (c.location.clone(), c.day))
                .collect(),
            created_at: now,
        };
        match self.store.convert_hold(&hold_id, &order, now).await? {
            Ok(()) => {
                if let Err(error) = self.gate.mark_durable(&order_id).await {
                    tracing::warn!(reservation = %order_id, %error, "could not mark hold durable");
                }
                Ok(reservation)
            }
            Err(crate::store::SettleRefused::NotFound) => {
                Err(InventoryError::UnknownReservation(hold_id.to_string()))
            }
            Err(crate::store::SettleRefused::State(error, _)) => {
                Err(InventoryError::State { id: hold_id, error })
            }
        }
    }

    /// The capacity units an order takes, after checking every location exists and is active.
    async fn capacity_claims(
        &self,
        locations: impl Iterator<Item = (String, omni_types::LocationId)>,
        count_capacity: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CapacityClaim>, InventoryError> {
        let mut claims = Vec::new();
        let mut seen = BTreeSet::new();
        let mut inactive = Vec::new();
        for (field, id) in locations {
            let Some(location) = self.location(&id).await? else {
                return Err(InventoryError::UnknownLocation {
                    field,
                    id: id.to_string(),
                });
            };
            if !location.active {
                inactive.push((field, id));
                continue;
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            if let (true, Some(limit)) = (count_capacity, location.daily_capacity) {
                claims.push(CapacityClaim {
                    location: id,
                    day: local_date(location.time_zone, now),
                    daily_limit: limit,
                });
            }
        }
        if !inactive.is_empty() {
            return Err(InventoryError::InactiveLocations(inactive));
        }
        Ok(claims)
    }

    /// Answers a replayed id from the record: the same lines get the first answer, other lines
    /// are refused, and a reservation not yet recorded is still in flight.
    async fn first_answer(
        &self,
        id: &ReservationId,
        fingerprint: &str,
    ) -> Result<ReserveReply, InventoryError> {
        match self.store.reservation(id).await? {
            Some(stored) if stored.fingerprint == fingerprint => Ok(ReserveReply {
                reservation: stored.reservation,
                replayed: true,
            }),
            Some(_) => Err(InventoryError::IdReused(id.clone())),
            None => Err(InventoryError::InProgress(id.clone())),
        }
    }

    fn default_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.default_ttl)
            .unwrap_or_else(|_| chrono::Duration::minutes(2))
    }

    async fn undo_quietly(&self, id: &ReservationId) {
        if let Err(error) = self.gate.undo(id).await {
            tracing::warn!(reservation = %id, %error, "could not undo hold; the reaper will");
        }
    }

    pub async fn reservation(&self, id: &ReservationId) -> Result<Reservation, InventoryError> {
        self.store
            .reservation(id)
            .await?
            .map(|s| s.reservation)
            .ok_or_else(|| InventoryError::UnknownReservation(id.to_string()))
    }
}
