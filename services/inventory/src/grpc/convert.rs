//! proto ↔ domain. Past these functions, values are valid by construction.

use std::sync::Arc;

use omni_platform::grpc::{ApiError, FieldViolation};
use omni_proto::inventory::v1 as pb;
use omni_proto::pbjson_types;
use omni_types::{ChannelId, LocationId, Quantity, ReservationId, Sku};

use crate::domain::{
    Capabilities, HeldLine, InvalidRequest, LineSelection, Location, LocationKind, MovementKind,
    RawLine, RawLocation, RawReserveRequest, Reservation, ReservationLine, ReservationStatus,
    ReserveRequest, StockLevel,
};
use crate::service::{AvailabilityReply, LocationAvailability};
use crate::store::AppliedMovement;

pub fn invalid(field: impl Into<String>, description: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(field, description.to_string())
}

pub fn location_id(value: &str, field: &str) -> Result<LocationId, ApiError> {
    LocationId::parse(value.to_owned()).map_err(|e| invalid(field, e))
}

pub fn channel_id(value: &str, field: &str) -> Result<ChannelId, ApiError> {
    ChannelId::parse(value.to_owned()).map_err(|e| invalid(field, e))
}

pub fn sku(value: &str, field: &str) -> Result<Sku, ApiError> {
    Sku::parse(value.to_owned()).map_err(|e| invalid(field, e))
}

pub fn reservation_id(value: &str, field: &str) -> Result<ReservationId, ApiError> {
    ReservationId::parse(value).map_err(|e| invalid(field, e))
}

pub fn ttl(
    value: Option<&pbjson_types::Duration>,
    field: &str,
) -> Result<Option<chrono::Duration>, ApiError> {
    let Some(d) = value else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(invalid(field, "must not be negative"));
    }
    Ok(Some(
        chrono::Duration::seconds(d.seconds) + chrono::Duration::nanoseconds(i64::from(d.nanos)),
    ))
}

pub fn location_from_proto(location: pb::Location) -> Result<Location, ApiError> {
    let kind = match pb::LocationKind::try_from(location.kind) {
        Ok(pb::LocationKind::Warehouse) => Some(LocationKind::Warehouse),
        Ok(pb::LocationKind::Store) => Some(LocationKind::Store),
        _ => None,
    };
    let caps = location.capabilities.unwrap_or_default();
    let position = location.position.unwrap_or_default();
    let pickup_hold = match location.pickup_hold {
        Some(d) if d.seconds > 0 => Some(std::time::Duration::from_secs(d.seconds as u64)),
        Some(_) => Some(std::time::Duration::ZERO),
        None => None,
    };
    let address = location
        .address
        .map(|a| serde_json::to_string(&a).unwrap_or_default())
        .unwrap_or_default();
    Location::parse(
        RawLocation {
            id: location.id,
            kind,
            name: location.name,
            lat: position.lat,
            lon: position.lon,
            capabilities: Capabilities {
                ships: caps.ships,
                pickup: caps.pickup,
                ship_from_store: caps.ship_from_store,
            },
            daily_capacity: i64::from(location.daily_capacity),
            time_zone: location.time_zone,
            pickup_hold,
            active: location.active,
            address,
        },
        "location.",
    )
    .map_err(invalid_request)
}

pub fn invalid_request(error: InvalidRequest) -> ApiError {
    ApiError::InvalidArgument(
        error
            .0
            .into_iter()
            .map(|v| FieldViolation::new(v.field, v.description))
            .collect(),
    )
}

pub fn location_to_proto(location: &Location) -> pb::Location {
    pb::Location {
        id: location.id.to_string(),
        kind: match location.kind {
            LocationKind::Warehouse => pb::LocationKind::Warehouse,
            LocationKind::Store => pb::LocationKind::Store,
        } as i32,
        name: location.name.clone(),
        position: Some(omni_proto::common::v1::GeoPoint {
            lat: location.point.lat(),
            lon: location.point.lon(),
        }),
        capabilities: Some(pb::LocationCapabilities {
            ships: location.capabilities.ships,
            pickup: location.capabilities.pickup,
            ship_from_store: location.capabilities.ship_from_store,
        }),
        daily_capacity: location.daily_capacity.unwrap_or(0),
        time_zone: location.time_zone.name().to_owned(),
        pickup_hold: Some(pbjson_types::Duration {
            seconds: location.pickup_hold.as_secs() as i64,
            nanos: 0,
        }),
        active: location.active,
        address: serde_json::from_str(&location.address).ok(),
        created_at: None,
        updated_at: None,
    }
}

pub fn reserve_request(request: pb::ReserveRequest) -> Result<ReserveRequest, ApiError> {
    let ttl_seconds = request.ttl.as_ref().map(|d| d.seconds);
    ReserveRequest::parse(RawReserveRequest {
        reservation_id: request.reservation_id,
        lines: request
            .lines
            .into_iter()
            .map(|l| RawLine {
                sku: l.sku,
                location: l.location_id,
                quantity: i64::from(l.quantity),
            })
            .collect(),
        ttl_seconds,
    })
    .map_err(invalid_request)
}

pub fn selection(lines: Vec<pb::ReservationLineQuantity>) -> Result<LineSelection, ApiError> {
    if lines.is_empty() {
        return Ok(LineSelection::All);
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut violations = Vec::new();
    for (i, l) in lines.into_iter().enumerate() {
        let sku = Sku::parse(l.sku)
            .map_err(|e| {
                violations.push(FieldViolation::new(
                    format!("lines[{i}].sku"),
                    e.to_string(),
                ))
            })
            .ok();
        let location = LocationId::parse(l.location_id)
            .map_err(|e| {
                violations.push(FieldViolation::new(
                    format!("lines[{i}].location_id"),
                    e.to_string(),
                ))
            })
            .ok();
        let qty = Quantity::parse(i64::from(l.quantity))
            .map_err(|e| {
                violations.push(FieldViolation::new(
                    format!("lines[{i}].quantity"),
                    e.to_string(),
                ))
            })
            .ok();
        if let (Some(sku), Some(location), Some(qty)) = (sku, location, qty) {
            out.push(ReservationLine::new(sku, location, qty));
        }
    }
    if violations.is_empty() {
        Ok(LineSelection::Lines(out))
    } else {
        Err(ApiError::InvalidArgument(violations))
    }
}

fn status(status: ReservationStatus) -> pb::ReservationStatus {
    match status {
        ReservationStatus::Held => pb::ReservationStatus::Held,
        ReservationStatus::Committed => pb::ReservationStatus::Committed,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Expired => pb::ReservationStatus::Expired,
    }
}

fn line(l: &HeldLine) -> pb::ReservationLine {
    let q = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    pb::ReservationLine {
        sku: l.line.sku.to_string(),
        location_id: l.line.location.to_string(),
        quantity: q(l.line.qty.get()),
        committed_quantity: q(l.committed),
        released_quantity: q(l.released),
        held_quantity: q(l.remaining()),
    }
}

pub fn reservation(r: &Reservation) -> pb::Reservation {
    pb::Reservation {
        id: r.id.to_string(),
        status: status(r.status) as i32,
        lines: r.lines.iter().map(line).collect(),
        expires_at: r.expires_at.map(Into::into),
        confirmed: r.confirmed,
        count_capacity: false,
        end_reason: String::new(),
        created_at: None,
        updated_at: None,
    }
}

pub fn level(sku: &Sku, location: &LocationId, level: &StockLevel) -> pb::StockLevel {
    pb::StockLevel {
        sku: sku.to_string(),
        location_id: location.to_string(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        safety_stock: level.safety_stock,
        available: level.available(),
    }
}

/// The answer's grid and capacities, which name each location once between them.
pub fn availability_answer(
    reply: AvailabilityReply,
) -> Result<(pb::LevelGrid, pb::CapacityRows), String> {
    let rows = reply.capacities.iter().map(capacity_row).collect();
    let grid = level_grid(reply).map_err(|e| e.to_string())?;
    let capacities =
        pb::CapacityRows::new(Arc::clone(grid.location_ids()), rows).map_err(|e| e.to_string())?;
    Ok((grid, capacities))
}

/// An availability answer's levels as the grid they are: each SKU and location named once,
/// not once per row (thousands of strings per answer otherwise).
fn level_grid(reply: AvailabilityReply) -> Result<pb::LevelGrid, pb::GridShapeError> {
    let locations: Vec<String> = reply
        .capacities
        .iter()
        .map(|c| c.location.id.as_str().to_owned())
        .collect();
    let counters = reply
        .levels
        .iter()
        .map(|level| pb::Counters {
            on_hand: level.on_hand,
            reserved: level.reserved,
            safety_stock: level.safety_stock,
            available: level.available(),
        })
        .collect();
    let skus = reply.skus.into_iter().map(Into::into).collect();
    pb::LevelGrid::new(skus, locations, counters)
}

pub fn capacity(c: &LocationAvailability) -> pb::LocationCapacity {
    let row = capacity_row(c);
    pb::LocationCapacity {
        location_id: c.location.id.as_str().to_owned(),
        daily_capacity: row.daily_capacity,
        used_today: row.used_today,
        capacity_left_today: row.capacity_left_today,
        unlimited: row.unlimited,
        local_date: c.local_date.to_string(),
    }
}

fn capacity_row(c: &LocationAvailability) -> pb::CapacityRow {
    let limit = c.location.daily_capacity;
    pb::CapacityRow {
        daily_capacity: limit.unwrap_or(0),
        used_today: c.used_today,
        capacity_left_today: limit.map_or(0, |l| l.saturating_sub(c.used_today)),
        unlimited: limit.is_none(),
        local_date: Arc::clone(&c.local_date),
    }
}

pub fn movement_kind(kind: i32, field: &str) -> Result<MovementKind, ApiError> {
    match pb::MovementKind::try_from(kind) {
        Ok(pb::MovementKind::Receipt) => Ok(MovementKind::Receipt),
        Ok(pb::MovementKind::Sale) => Ok(MovementKind::Sale),
        Ok(pb::MovementKind::Adjustment) => Ok(MovementKind::Adjustment),
        Ok(pb::MovementKind::Count) => Ok(MovementKind::Count),
        Ok(pb::MovementKind::TransferOut) => Ok(MovementKind::TransferOut),
        Ok(pb::MovementKind::TransferIn) => Ok(MovementKind::TransferIn),
        Ok(pb::MovementKind::Return) => Ok(MovementKind::Return),
        Ok(pb::MovementKind::Commit) => Err(invalid(
            field,
            "COMMIT movements are written by the service when goods leave",
        )),
        _ => Err(invalid(field, "must be a movement kind")),
    }
}

pub fn movement_kind_to_proto(kind: &str) -> pb::MovementKind {
    match kind {
        "RECEIPT" => pb::MovementKind::Receipt,
        "SALE" => pb::MovementKind::Sale,
        "ADJUSTMENT" => pb::MovementKind::Adjustment,
        "COUNT" => pb::MovementKind::Count,
        "TRANSFER_OUT" => pb::MovementKind::TransferOut,
        "TRANSFER_IN" => pb::MovementKind::TransferIn,
        "RETURN" => pb::MovementKind::Return,
        "COMMIT" => pb::MovementKind::Commit,
        _ => pb::MovementKind::Unspecified,
    }
}

pub fn applied(a: &AppliedMovement, key: &str, kind: MovementKind) -> pb::Movement {
    pb::Movement {
        id: String::new(),
        sku: a.sku.to_string(),
        location_id: a.location.to_string(),
        kind: movement_kind_to_proto(kind.as_str()) as i32,
        delta: a.delta,
        on_hand_after: a.level.on_hand,
        counted_quantity: (kind == MovementKind::Count).then_some(a.level.on_hand),
        idempotency_key: key.to_owned(),
        reason: String::new(),
        reference: String::new(),
        reservation_id: String::new(),
        created_at: None,
    }
}
