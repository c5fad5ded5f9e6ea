//! The events inventory publishes (ARCHITECTURE §4), built as proto3-JSON payloads in envelopes.

use chrono::{DateTime, Utc};
use omni_platform::events::{Envelope, names};
use omni_proto::events::v1 as ev;
use omni_types::{LocationId, ReservationId, Sku};

use crate::domain::{HeldLine, StockLevel};

pub const SOURCE: &str = "inventory";

pub use ev::StockChangeCause as Cause;

fn envelope(name: &str, subject: &str, data: impl serde::Serialize, at: DateTime<Utc>) -> Envelope {
    let mut envelope = Envelope::new(SOURCE, name, subject, data)
        .unwrap_or_else(|e| unreachable_payload(name, &e.to_string()))
        .at(at);
    if let Some(traceparent) = omni_platform::telemetry::current_traceparent() {
        envelope = envelope.with_traceparent(traceparent);
    }
    envelope
}

/// Our own payload types always serialise; a failure here is a bug, logged and replaced by an
/// empty payload rather than a panic in a request path.
fn unreachable_payload(name: &str, error: &str) -> Envelope {
    tracing::error!(event = name, error, "event payload did not serialise");
    Envelope::new(SOURCE, name, "invalid", serde_json::json!({}))
        .unwrap_or_else(|_| panic!("an empty JSON object always serialises"))
}

pub fn stock_changed(
    sku: &Sku,
    location: &LocationId,
    level: &StockLevel,
    cause: Cause,
    at: DateTime<Utc>,
) -> Envelope {
    envelope(
        names::INVENTORY_STOCK_CHANGED,
        &format!("{sku}@{location}"),
        ev::StockChanged {
            sku: sku.to_string(),
            location_id: location.to_string(),
            on_hand: level.on_hand,
            reserved: level.reserved,
            safety_stock: level.safety_stock,
            available: level.available(),
            cause: cause as i32,
            changed_at: Some(at.into()),
        },
        at,
    )
}

pub fn changes(
    levels: &[(Sku, LocationId, StockLevel)],
    cause: Cause,
    at: DateTime<Utc>,
) -> Vec<Envelope> {
    levels
        .iter()
        .map(|(sku, location, level)| stock_changed(sku, location, level, cause, at))
        .collect()
}

fn reserved_lines(lines: &[HeldLine], only: Option<(&Sku, &LocationId)>) -> Vec<ev::ReservedLine> {
    lines
        .iter()
        .filter(|l| only.is_none_or(|(sku, loc)| &l.line.sku == sku && &l.line.location == loc))
        .map(|l| ev::ReservedLine {
            sku: l.line.sku.to_string(),
            location_id: l.line.location.to_string(),
            quantity: i32::try_from(l.remaining()).unwrap_or(i32::MAX),
        })
        .collect()
}

fn order_id_of(id: &ReservationId) -> String {
    match id {
        ReservationId::Order(order) => order.to_string(),
        ReservationId::Hold { .. } => String::new(),
    }
}

pub fn reservation_expired(id: &ReservationId, lines: &[HeldLine], at: DateTime<Utc>) -> Envelope {
    envelope(
        names::INVENTORY_RESERVATION_EXPIRED,
        &id.to_string(),
        ev::ReservationExpired {
            reservation_id: id.to_string(),
            order_id: order_id_of(id),
            lines: reserved_lines(lines, None),
            expired_at: Some(at.into()),
        },
        at,
    )
}

pub fn shortage(
    sku: &Sku,
    location: &LocationId,
    level: &StockLevel,
    unservable: &[(ReservationId, Vec<HeldLine>)],
    at: DateTime<Utc>,
) -> Envelope {
    envelope(
        names::INVENTORY_STOCK_SHORTAGE,
        &format!("{sku}@{location}"),
        ev::StockShortage {
            sku: sku.to_string(),
            location_id: location.to_string(),
            on_hand: level.on_hand,
            reserved: level.reserved,
            reservations: unservable
                .iter()
                .map(|(id, lines)| ev::ShortReservation {
                    reservation_id: id.to_string(),
                    order_id: order_id_of(id),
                    lines: reserved_lines(lines, Some((sku, location))),
                })
                .collect(),
            detected_at: Some(at.into()),
        },
        at,
    )
}
