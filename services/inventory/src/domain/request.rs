//! Validation of a reserve request, field by field, before anything is written.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use omni_types::{LocationId, Quantity, ReservationId, Sku};

use super::reservation::ReservationLine;

/// Lines per reservation: an order or a cart, never a warehouse transfer.
pub const MAX_LINES: usize = 100;
/// Shortest hold: anything shorter expires before the caller can use it.
pub const MIN_HOLD_TTL: Duration = Duration::seconds(1);
/// Longest hold: a cart left open overnight should not keep stock from other buyers for longer.
pub const MAX_HOLD_TTL: Duration = Duration::hours(24);

/// A reserve request as it arrives, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawReserveRequest {
    pub reservation_id: String,
    pub lines: Vec<RawLine>,
    /// Seconds until an unconfirmed reservation expires. Required for checkout holds.
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct RawLine {
    pub sku: String,
    pub location: String,
    pub quantity: i64,
}

/// One bad field, named the way the caller wrote it (`lines[2].quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    fn new(field: impl Into<String>, description: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            description: description.to_string(),
        }
    }
}

/// Every violation found, not only the first, so a caller fixes the request in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
pub struct InvalidRequest(pub Vec<FieldViolation>);

/// A valid reserve request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub id: ReservationId,
    pub lines: Vec<ReservationLine>,
    pub ttl: Option<Duration>,
}

impl ReserveRequest {
    pub fn parse(raw: RawReserveRequest) -> Result<Self, InvalidRequest> {
        let mut violations = Vec::new();
        let id = ReservationId::parse(&raw.reservation_id)
            .map_err(|e| violations.push(FieldViolation::new("reservation_id", e)))
            .ok();

        if raw.lines.is_empty() || raw.lines.len() > MAX_LINES {
            violations.push(FieldViolation::new(
                "lines",
                format!("must have 1 to {MAX_LINES} lines, got {}", raw.lines.len()),
            ));
        }
        let mut lines = Vec::with_capacity(raw.lines.len());
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for (i, line) in raw.lines.into_iter().enumerate() {
            let sku = Sku::parse(line.sku.clone())
                .map_err(|e| violations.push(FieldViolation::new(format!("lines[{i}].sku"), e)))
                .ok();
            let location = LocationId::parse(line.location.clone())
                .map_err(|e| {
                    violations.push(FieldViolation::new(format!("lines[{i}].location"), e))
                })
                .ok();
            let qty = Quantity::parse(line.quantity)
                .map_err(|e| {
                    violations.push(FieldViolation::new(format!("lines[{i}].quantity"), e))
                })
                .ok();
            // One line per (sku, location): two lines for the same key would make commit and
            // release by key ambiguous.
            if let Some(first) = seen.insert((line.sku, line.location), i) {
                violations.push(FieldViolation::new(
                    format!("lines[{i}]"),
                    format!("repeats the sku and location of lines[{first}]"),
                ));
            }
            if let (Some(sku), Some(location), Some(qty)) = (sku, location, qty) {
                lines.push(ReservationLine::new(sku, location, qty));
            }
        }

        let is_hold = id.as_ref().is_some_and(ReservationId::is_checkout_hold);
        let ttl = match raw.ttl_seconds {
            None if is_hold => {
                violations.push(FieldViolation::new(
                    "ttl_seconds",
                    "a checkout hold needs a time to live",
                ));
                None
            }
            None => None,
            Some(secs) => {
                let ttl = Duration::seconds(secs.clamp(-1, MAX_HOLD_TTL.num_seconds() + 1));
                if ttl < MIN_HOLD_TTL || ttl > MAX_HOLD_TTL {
                    violations.push(FieldViolation::new(
                        "ttl_seconds",
                        format!(
                            "must be between {} and {} seconds, got {secs}",
                            MIN_HOLD_TTL.num_seconds(),
                            MAX_HOLD_TTL.num_seconds()
                        ),
                    ));
                }
                Some(ttl)
            }
        };

        match id {
            Some(id) if violations.is_empty() => Ok(Self { id, lines, ttl }),
            _ => Err(InvalidRequest(violations)),
        }
    }

    /// When the reservation expires if nobody confirms it.
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ttl.map(|ttl| now + ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_line(sku: &str, loc: &str, qty: i64) -> RawLine {
        RawLine {
            sku: sku.into(),
            location: loc.into(),
            quantity: qty,
        }
    }

    fn fields(err: InvalidRequest) -> Vec<String> {
        err.0.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_valid_hold_parses() {
        let req = ReserveRequest::parse(RawReserveRequest {
            reservation_id: "hold:web:cart-1".into(),
            lines: vec![raw_line("A", "s1", 2), raw_line("A", "s2", 1)],
            ttl_seconds: Some(600),
        })
        .unwrap();
        assert_eq!(req.lines.len(), 2);
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(req.expires_at(now), DateTime::from_timestamp(1_600, 0));
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = ReserveRequest::parse(RawReserveRequest {
            reservation_id: "hold:web:cart-1".into(),
            lines: vec![
                raw_line("A", "s1", 2),
                raw_line("bad sku", "s1", 1),
                raw_line("B", "S1", 0),
                raw_line("A", "s1", 1),
            ],
            ttl_seconds: Some(0),
        })
        .unwrap_err();
        assert_eq!(
            fields(err),
            vec![
                "lines[1].sku",
                "lines[2].location",
                "lines[2].quantity",
                "lines[3]",
                "ttl_seconds"
            ]
        );
    }

    #[test]
    fn line_count_and_ttl_limits() {
        let many = (0..=MAX_LINES)
            .map(|i| raw_line(&format!("S{i}"), "s1", 1))
            .collect();
        let err = ReserveRequest::parse(RawReserveRequest {
            reservation_id: "hold:web:c".into(),
            lines: many,
            ttl_seconds: Some(60),
        })
        .unwrap_err();
        assert_eq!(fields(err), vec!["lines"]);

        let err = ReserveRequest::parse(RawReserveRequest {
            reservation_id: "hold:web:c".into(),
            lines: vec![],
            ttl_seconds: None,
        })
        .unwrap_err();
        assert_eq!(fields(err), vec!["lines", "ttl_seconds"]);

        for (ttl, ok) in [
            (1, true),
            (86_400, true),
            (86_401, false),
            (i64::MAX, false),
            (i64::MIN, false),
        ] {
            let res = ReserveRequest::parse(RawReserveRequest {
                reservation_id: "hold:web:c".into(),
                lines: vec![raw_line("A", "s1", 1)],
                ttl_seconds: Some(ttl),
            });
            assert_eq!(res.is_ok(), ok, "ttl {ttl}");
        }
    }

    #[test]
    fn an_order_reservation_may_omit_the_ttl_and_bad_ids_are_named() {
        let order = format!("order:{}", omni_types::OrderId::new());
        assert!(
            ReserveRequest::parse(RawReserveRequest {
                reservation_id: order,
                lines: vec![raw_line("A", "s1", 1)],
                ttl_seconds: None,
            })
            .is_ok()
        );
        let err = ReserveRequest::parse(RawReserveRequest {
            reservation_id: "cart:1".into(),
            lines: vec![raw_line("A", "s1", 1)],
            ttl_seconds: None,
        })
        .unwrap_err();
        assert_eq!(fields(err), vec!["reservation_id"]);
    }
}
