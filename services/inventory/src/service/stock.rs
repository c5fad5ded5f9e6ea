//! Stock movements (POS, WMS, counts), safety stock, and availability.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use omni_types::{ChannelId, LocationId, Quantity, ReservationId, Sku};

use super::{Inventory, InventoryError};
use crate::domain::{
    CapacityDay, FieldViolation, HeldLine, InvalidRequest, Location, ReservationLine, StockLevel,
    apply, local_date, unservable_reservations,
};
use crate::events::outgoing::{self, Cause};
use crate::store::{AppliedMovement, MovementRequest, Store};

/// One stock movement as a caller asks for it.
pub type Adjustment = MovementRequest;

/// Lines per AdjustStock batch: a till receipt or a delivery note, not a full inventory load.
pub const MAX_ADJUSTMENTS: usize = 500;
pub const MAX_AVAILABILITY_SKUS: usize = 500;
pub const MAX_AVAILABILITY_LOCATIONS: usize = 1_000;

#[derive(Debug, Clone)]
pub struct AvailabilityQuery {
    pub skus: Vec<Sku>,
    /// Empty = every active location (in the channel's pool, when a channel is given).
    pub locations: Vec<LocationId>,
    pub channel: Option<ChannelId>,
}

#[derive(Debug, Clone)]
pub struct LocationAvailability {
    pub location: Arc<Location>,
    pub used_today: u32,
    /// Shared by the locations of one time zone.
    pub local_date: Arc<str>,
}

#[derive(Debug, Clone)]
pub struct AvailabilityReply {
    /// The SKUs asked, in order, each once.
    pub skus: Vec<Sku>,
    /// Every SKU's level at every location of `capacities`, SKU by SKU: ordered by sku, then
    /// location.
    pub levels: Vec<StockLevel>,
    pub capacities: Vec<LocationAvailability>,
}

impl AvailabilityReply {
    /// Each level with the SKU and location it is of.
    pub fn rows(&self) -> impl Iterator<Item = (&Sku, &LocationId, &StockLevel)> {
        let width = self.capacities.len().max(1);
        self.levels.iter().enumerate().map(move |(i, level)| {
            (
                &self.skus[i / width],
                &self.capacities[i % width].location.id,
                level,
            )
        })
    }
}

impl Inventory {
    /// Applies a batch of movements as the physical truth, in one database transaction. What
    /// lowers sellable stock reaches the gate before the database; what raises it, after (§3).
    /// A movement that takes `on_hand` below `reserved` publishes `inventory.stock.shortage`.
    pub async fn adjust(
        &self,
        adjustments: Vec<Adjustment>,
    ) -> Result<Vec<AppliedMovement>, InventoryError> {
        if adjustments.is_empty() || adjustments.len() > MAX_ADJUSTMENTS {
            return Err(InvalidRequest(vec![FieldViolation {
                field: "adjustments".to_owned(),
                description: format!(
                    "must have 1 to {MAX_ADJUSTMENTS} adjustments, got {}",
                    adjustments.len()
                ),
            }])
            .into());
        }
        let mut violations = Vec::new();
        let mut keys = BTreeSet::new();
        for (i, a) in adjustments.iter().enumerate() {
            if self.location(&a.location).await?.is_none() {
                violations.push(FieldViolation {
                    field: format!("adjustments[{i}].location_id"),
                    description: format!("location {} does not exist", a.location),
                });
            }
            if !keys.insert(a.idempotency_key.clone()) {
                violations.push(FieldViolation {
                    field: format!("adjustments[{i}].idempotency_key"),
                    description: "is used twice in this batch".to_owned(),
                });
            }
        }
        if !violations.is_empty() {
            return Err(InvalidRequest(violations).into());
        }
        self.ready_epoch().await?;
        let now = self.now();
        let txn = self.store.begin().await?;
        let mut applied = Vec::with_capacity(adjustments.len());
        let mut raise_after_commit = Vec::new();
        let mut events = Vec::new();
        for a in &adjustments {
            if let Some((delta, on_hand_after)) =
                Store::replayed_movement(&txn, &a.idempotency_key).await?
            {
                let level = Store::lock_level(&txn, &a.sku, &a.location, now).await?;
                applied.push(AppliedMovement {
                    sku: a.sku.clone(),
                    location: a.location.clone(),
                    delta,
                    level: StockLevel::new(on_hand_after, level.reserved, level.safety_stock),
                    replayed: true,
                    held: Vec::new(),
                });
                continue;
            }
            let current = Store::lock_level(&txn, &a.sku, &a.location, now).await?;
            let delta = apply(&current, &a.movement);
            if delta < 0 {
                self.gate.apply_on_hand(&a.sku, &a.location, delta).await?;
            }
            let movement = Store::record_movement(&txn, a, &current, now).await?;
            if delta > 0 {
                raise_after_commit.push((a.sku.clone(), a.location.clone(), delta));
            }
            events.push(outgoing::stock_changed(
                &a.sku,
                &a.location,
                &movement.level,
                Cause::Movement,
                now,
            ));
            if movement.level.on_hand < movement.level.reserved {
                events.push(shortage_event(&movement, now));
            }
            applied.push(movement);
        }
        Store::commit_with_events(txn, &events).await?;
        self.events_written();
        for (sku, location, delta) in raise_after_commit {
            if let Err(error) = self.gate.apply_on_hand(&sku, &location, delta).await {
                // The gate shows less than the truth until the reconciler repairs it.
                tracing::warn!(%sku, %location, delta, %error, "gate raise failed after commit");
            }
        }
        Ok(applied)
    }

    /// Sets the units kept back from channels at a (sku, location).
    pub async fn set_safety_stock(
        &self,
        sku: &Sku,
        location: &LocationId,
        safety: i64,
    ) -> Result<StockLevel, InventoryError> {
        if !(0..=i64::from(Quantity::MAX) * 100).contains(&safety) {
            return Err(InvalidRequest(vec![FieldViolation {
                field: "safety_stock".to_owned(),
                description: format!("must be between 0 and 10000000, got {safety}"),
            }])
            .into());
        }
        if self.location(location).await?.is_none() {
            return Err(InventoryError::UnknownLocation {
                field: "location_id".to_owned(),
                id: location.to_string(),
            });
        }
        self.ready_epoch().await?;
        let now = self.now();
        let before = self
            .store
            .levels(&[(sku.clone(), location.clone())])
            .await?;
        let raising_safety = before.first().is_none_or(|l| safety > l.safety_stock);
        if raising_safety {
            self.gate.set_safety(sku, location, safety).await?;
        }
        let level = self
            .store
            .set_safety_stock(sku, location, safety, |level| {
                vec![outgoing::stock_changed(
                    sku,
                    location,
                    level,
                    Cause::SafetyStock,
                    now,
                )]
            })
            .await?;
        self.events_written();
        if !raising_safety && let Err(error) = self.gate.set_safety(sku, location, safety).await {
            tracing::warn!(%sku, %location, %error, "gate safety update failed after commit");
        }
        Ok(level)
    }

    /// The locations a query covers, in id order, checked to exist.
    pub async fn resolve_locations(
        &self,
        requested: &[LocationId],
        channel: Option<&ChannelId>,
    ) -> Result<Vec<Arc<Location>>, InventoryError> {
        if requested.is_empty() {
            return self.active_locations(channel).await;
        }
        let mut out = self.requested_locations(requested, channel).await?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    /// Real-time availability from the gate (no database round trip).
    pub async fn availability(
        &self,
        query: &AvailabilityQuery,
    ) -> Result<AvailabilityReply, InventoryError> {
        let mut violations = Vec::new();
        if query.skus.is_empty() || query.skus.len() > MAX_AVAILABILITY_SKUS {
            violations.push(FieldViolation {
                field: "skus".to_owned(),
                description: format!("must name 1 to {MAX_AVAILABILITY_SKUS} SKUs"),
            });
        }
        if query.locations.len() > MAX_AVAILABILITY_LOCATIONS {
            violations.push(FieldViolation {
                field: "location_ids".to_owned(),
                description: format!("must name at most {MAX_AVAILABILITY_LOCATIONS} locations"),
            });
        }
        if !violations.is_empty() {
            return Err(InvalidRequest(violations).into());
        }
        let locations = self
            .resolve_locations(&query.locations, query.channel.as_ref())
            .await?;
        self.levels_at(&query.skus, locations).await
    }

    /// The levels and capacities of `skus` at `locations`; the locations move into the answer.
    pub(crate) async fn levels_at(
        &self,
        skus: &[Sku],
        locations: Vec<Arc<Location>>,
    ) -> Result<AvailabilityReply, InventoryError> {
        let skus: Vec<Sku> = skus
            .iter()
            .collect::<BTreeSet<&Sku>>()
            .into_iter()
            .cloned()
            .collect();
        let ids: Vec<&LocationId> = locations.iter().map(|l| &l.id).collect();
        let now = self.now();
        // A catalogue spans a handful of time zones: each one's date is worked out and written
        // once per call, not once per location (formatting 200 dates was 3 % of the call).
        let mut zones: Vec<(chrono_tz::Tz, CapacityDay, Arc<str>)> = Vec::new();
        let days: Vec<(CapacityDay, Arc<str>)> = locations
            .iter()
            .map(|l| {
                if let Some((_, day, text)) = zones.iter().find(|(z, ..)| *z == l.time_zone) {
                    return (*day, Arc::clone(text));
                }
                let day = local_date(l.time_zone, now);
                let text: Arc<str> = day.to_string().into();
                zones.push((l.time_zone, day, Arc::clone(&text)));
                (day, text)
            })
            .collect();
        let counted: Vec<(LocationId, CapacityDay)> = locations
            .iter()
            .zip(&days)
            .filter(|(l, _)| l.daily_capacity.is_some())
            .map(|(l, (day, _))| (l.id.clone(), *day))
            .collect();
        // Both reads go out together on the multiplexed connection: one round trip, not one
        // per location with a capacity.
        let (levels, used) = tokio::try_join!(
            self.gate.levels_grid(&skus, &ids),
            self.gate.capacities_used(&counted)
        )?;
        let mut used = used.into_iter();
        let capacities = locations
            .into_iter()
            .zip(days)
            .map(|(location, (_, day))| LocationAvailability {
                used_today: match location.daily_capacity {
                    Some(_) => used.next().unwrap_or(0),
                    None => 0,
                },
                location,
                local_date: day,
            })
            .collect();
        Ok(AvailabilityReply {
            skus,
            levels,
            capacities,
        })
    }
}

fn shortage_event(
    movement: &AppliedMovement,
    now: chrono::DateTime<chrono::Utc>,
) -> omni_platform::events::Envelope {
    let chosen = unservable_reservations(movement.level.on_hand, &movement.held);
    let by_id: BTreeMap<&ReservationId, u32> =
        movement.held.iter().map(|h| (&h.id, h.qty)).collect();
    let unservable: Vec<(ReservationId, Vec<HeldLine>)> = chosen
        .into_iter()
        .map(|id| {
            let qty = by_id.get(&id).copied().unwrap_or(0);
            let lines = Quantity::parse(i64::from(qty))
                .map(|q| {
                    vec![HeldLine::new(ReservationLine::new(
                        movement.sku.clone(),
                        movement.location.clone(),
                        q,
                    ))]
                })
                .unwrap_or_default();
            (id, lines)
        })
        .collect();
    outgoing::shortage(
        &movement.sku,
        &movement.location,
        &movement.level,
        &unservable,
        now,
    )
}
