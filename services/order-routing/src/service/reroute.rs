//! Re-routing lines a location cannot serve (a store could not find them, a shortage, a hold
//! that expired): plan them again without that location, hold them under a reservation of their
//! own (`order:<new uuid>`, inventory cannot add lines to the order's first one), then move them
//! in one transaction with the release of the old lines and the new fulfilment request. When
//! nothing can serve them, the caller cancels them instead.
//!
//! The new hold is made before the transaction, like the PlaceOrder saga: it expires by itself
//! if the move never commits, and it is released at once when the move is refused.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use omni_types::{LocationId, OrderId, Quantity, ReservationId};

use super::error::ServiceError;
use super::place::reserve_lines;
use super::record::{AllocationMeta, OrderRecord};
use super::{Orders, candidates};
use crate::clients::{PortError, ReserveError};
use crate::domain::order::{Fulfilment, LineId};
use crate::domain::planner::{self, AllocationKind, Destination, PlanInput, PlanLine};
use crate::domain::profile::RoutingProfile;
use crate::domain::state::{AllocationId, OrderEvent, RerouteTo};
use crate::store::{orders, reservations};

/// A new home for some lines, held in inventory and not yet applied to the order.
#[derive(Debug, Clone)]
pub(crate) struct Rerouting {
    pub reservation: ReservationId,
    to: Vec<RerouteTo>,
    distances: Vec<f64>,
    /// Where the lines were when planned: the move applies only if they are still there.
    from: Vec<(LineId, AllocationId)>,
}

impl Rerouting {
    /// Applies the move to `record` (nothing changes on error). `RetryLater` when the order
    /// changed since the plan.
    pub fn apply(
        &self,
        record: &mut OrderRecord,
        now: DateTime<Utc>,
    ) -> Result<(Vec<OrderEvent>, Vec<AllocationId>), ServiceError> {
        let unchanged = self.from.iter().all(|(line, allocation)| {
            record.state.lines.iter().any(|l| {
                l.line_id == *line
                    && l.allocation == *allocation
                    && !l.cancelled
                    && record
                        .state
                        .allocation(*allocation)
                        .is_ok_and(|a| a.status.is_open())
            })
        });
        if !unchanged {
            return Err(ServiceError::RetryLater(
                "the order changed while its lines were re-routed; retry".into(),
            ));
        }
        let (created, events) = record
            .state
            .reroute(&self.to)
            .map_err(|e| ServiceError::RetryLater(e.to_string()))?;
        for (id, distance_km) in created.iter().zip(&self.distances) {
            record.allocations.push(AllocationMeta {
                id: *id,
                uuid: uuid::Uuid::now_v7(),
                distance_km: *distance_km,
                tracking: None,
                created_at: now,
                updated_at: now,
                reservation: Some(self.reservation.clone()),
                unconfirmed: true,
            });
        }
        let mut changed: Vec<AllocationId> = self.from.iter().map(|(_, a)| *a).collect();
        changed.extend(created);
        Ok((events, changed))
    }
}

/// Open lines of `record` at `location` (any when `None`), of `skus` (any when `None`), held
/// by `reservation` (any when `None`).
pub(crate) fn affected_lines(
    record: &OrderRecord,
    location: Option<&LocationId>,
    skus: Option<&BTreeSet<String>>,
    reservation: Option<&ReservationId>,
) -> BTreeSet<LineId> {
    record
        .state
        .lines
        .iter()
        .filter(|l| !l.cancelled)
        .filter(|l| skus.is_none_or(|s| s.contains(l.sku.as_str())))
        .filter(|l| reservation.is_none_or(|r| &record.reservation_of(l.allocation) == r))
        .filter(|l| {
            record
                .state
                .allocation(l.allocation)
                .is_ok_and(|a| a.status.is_open() && location.is_none_or(|loc| &a.location == loc))
        })
        .map(|l| l.line_id)
        .collect()
}

impl Orders {
    /// Plans `lines` again without the `avoid` locations and holds them under a new
    /// reservation. `None` when no location can serve them (or, for a pickup, when the profile
    /// does not allow transfers to the store).
    pub(crate) async fn prepare_reroute(
        &self,
        record: &OrderRecord,
        lines: &BTreeSet<LineId>,
        avoid: &BTreeSet<LocationId>,
    ) -> Result<Option<Rerouting>, ServiceError> {
        let (profile, _) = self.profile_for(&record.channel).await?;
        let mut spec = profile.spec().clone();
        spec.excluded.extend(avoid.iter().cloned());
        let profile =
            RoutingProfile::parse(spec).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (destination, transfer_to) = match &record.fulfilment {
            Fulfilment::Ship { point, .. } => (Destination::Ship { point: *point }, None),
            Fulfilment::Pickup { store } => {
                if !profile.allow_transfer_to_store() {
                    return Ok(None);
                }
                // Lines for a pickup can only come to the store as a transfer: a shipment
                // to the store's door.
                let point = self
                    .inventory
                    .locations()
                    .await?
                    .iter()
                    .find(|l| &l.id == store)
                    .map(|l| l.point);
                match point {
                    Some(point) => (Destination::Ship { point }, Some(store.clone())),
                    None => return Ok(None),
                }
            }
        };
        let mut plan_lines = Vec::new();
        let mut from = Vec::new();
        for l in record
            .state
            .lines
            .iter()
            .filter(|l| lines.contains(&l.line_id))
        {
            plan_lines.push(PlanLine {
                line_id: l.line_id,
                sku: l.sku.clone(),
                qty: Quantity::parse(i64::from(l.qty)).map_err(|e| {
                    ServiceError::Internal(format!("stored line {}: {e}", l.line_id))
                })?,
            });
            from.push((l.line_id, l.allocation));
        }
        let skus: Vec<_> = plan_lines.iter().map(|l| l.sku.clone()).collect();
        let input = PlanInput::new(plan_lines, destination)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        for attempt in 1..=self.settings.max_plan_attempts {
            let candidates =
                candidates::live(self.inventory.as_ref(), &record.channel, &skus).await?;
            let Ok(plan) = planner::plan(&input, &candidates, &profile) else {
                return Ok(None);
            };
            let reservation = ReservationId::for_order(OrderId::from(uuid::Uuid::now_v7()));
            let held = self
                .inventory
                .reserve(
                    &reservation,
                    &reserve_lines(&plan),
                    self.settings.reserve_ttl,
                )
                .await;
            match held {
                Ok(_) => {
                    let to = plan
                        .allocations
                        .iter()
                        .map(|a| RerouteTo {
                            location: a.location.clone(),
                            kind: match &transfer_to {
                                Some(store) => {
                                    AllocationKind::TransferToStore { to: store.clone() }
                                }
                                None => AllocationKind::Ship,
                            },
                            lines: a.lines.iter().map(|l| l.line_id).collect(),
                        })
                        .collect();
                    return Ok(Some(Rerouting {
                        reservation,
                        to,
                        distances: plan.allocations.iter().map(|a| a.distance_km).collect(),
                        from,
                    }));
                }
                Err(ReserveError::Short(_)) => {
                    tracing::info!(order = %record.id(), attempt, "re-route lost a race for stock; re-planning");
                }
                Err(ReserveError::Other(e)) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// After the move committed, confirms the new reservation; when the move did not happen,
    /// gives the hold back.
    pub(crate) async fn finish_reroute(&self, order: uuid::Uuid, r: &Rerouting, applied: bool) {
        if !applied {
            if let Err(e) = self
                .inventory
                .release(&r.reservation, "re-route not applied")
                .await
            {
                tracing::warn!(reservation = %r.reservation, error = %e, "could not release an unused re-route hold; it will expire");
            }
            return;
        }
        match self.inventory.confirm(&r.reservation).await {
            Ok(()) | Err(PortError::Refused { .. }) => {
                if let Err(e) = self.reroute_confirmed(order, &r.reservation).await {
                    tracing::warn!(%order, error = %e, "re-route confirmation not recorded; the sweeper repeats it");
                }
            }
            Err(e) => {
                tracing::warn!(%order, error = %e, "re-route confirmation deferred to the sweeper")
            }
        }
    }

    pub(crate) async fn reroute_confirmed(
        &self,
        order: uuid::Uuid,
        reservation: &ReservationId,
    ) -> Result<(), ServiceError> {
        use sea_orm::TransactionTrait;
        let txn = self.db.begin().await?;
        if let Some(mut record) = orders::load_for_update(&txn, order).await? {
            for meta in record
                .allocations
                .iter_mut()
                .filter(|m| m.reservation.as_ref() == Some(reservation))
            {
                meta.unconfirmed = false;
            }
            orders::save(&txn, &record).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The order an inventory event about `reservation` concerns: a re-route reservation's
    /// owner, else the order the event names.
    pub async fn order_of_reservation(
        &self,
        reservation: &str,
        named_order: &str,
    ) -> Result<Option<uuid::Uuid>, ServiceError> {
        if let Some(owner) = reservations::owner(&self.db, reservation).await? {
            return Ok(Some(owner));
        }
        Ok(uuid::Uuid::parse_str(named_order).ok())
    }
}
