//! Warehouses and stores: where stock lives and what each can do with it.

use std::time::Duration;

use chrono_tz::Tz;
use omni_types::{GeoPoint, LocationId};
use serde::{Deserialize, Serialize};

use super::calendar::parse_time_zone;
use super::request::{FieldViolation, InvalidRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LocationKind {
    Warehouse,
    Store,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warehouse => "WAREHOUSE",
            Self::Store => "STORE",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "WAREHOUSE" => Some(Self::Warehouse),
            "STORE" => Some(Self::Store),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Can send parcels (warehouses).
    pub ships: bool,
    /// Customers can collect orders here.
    pub pickup: bool,
    /// A store that may pick online orders from its shelves and ship them.
    pub ship_from_store: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub id: LocationId,
    pub kind: LocationKind,
    pub name: String,
    pub point: GeoPoint,
    pub capabilities: Capabilities,
    /// Orders per local day this location can fulfil; `None` = unlimited.
    pub daily_capacity: Option<u32>,
    /// The location's IANA zone: its capacity day starts at its own midnight.
    pub time_zone: Tz,
    /// How long a ready pickup waits for its customer before it is cancelled.
    pub pickup_hold: Duration,
    pub active: bool,
    pub address: String,
}

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_ADDRESS_LEN: usize = 1_000;
pub const MAX_DAILY_CAPACITY: u32 = 1_000_000;
pub const MAX_PICKUP_HOLD: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_PICKUP_HOLD: Duration = Duration::from_secs(72 * 3600);

/// A location as sent by a caller, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawLocation {
    pub id: String,
    pub kind: Option<LocationKind>,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub capabilities: Capabilities,
    pub daily_capacity: i64,
    pub time_zone: String,
    pub pickup_hold: Option<Duration>,
    pub active: bool,
    pub address: String,
}

impl Location {
    /// Validates every field and reports all violations at once, each named as on the wire.
    pub fn parse(raw: RawLocation, prefix: &str) -> Result<Self, InvalidRequest> {
        let mut violations = Vec::new();
        let mut bad = |field: &str, description: String| {
            violations.push(FieldViolation {
                field: format!("{prefix}{field}"),
                description,
            })
        };
        let id = LocationId::parse(raw.id)
            .map_err(|e| bad("id", e.to_string()))
            .ok();
        if raw.kind.is_none() {
            bad("kind", "must be WAREHOUSE or STORE".to_owned());
        }
        let name = raw.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            bad("name", format!("must be 1 to {MAX_NAME_LEN} characters"));
        }
        let point = GeoPoint::parse(raw.lat, raw.lon)
            .map_err(|e| bad("lat_lon", e.to_string()))
            .ok();
        let daily_capacity = match raw.daily_capacity {
            0 => Some(None),
            n if n > 0 && n <= i64::from(MAX_DAILY_CAPACITY) => Some(Some(n as u32)),
            n => {
                bad(
                    "daily_capacity",
                    format!("must be 0 (unlimited) to {MAX_DAILY_CAPACITY}, got {n}"),
                );
                None
            }
        };
        let zone_name = if raw.time_zone.trim().is_empty() {
            "UTC"
        } else {
            raw.time_zone.trim()
        };
        let time_zone = parse_time_zone(zone_name)
            .map_err(|e| bad("time_zone", e.to_string()))
            .ok();
        let pickup_hold = raw.pickup_hold.unwrap_or(DEFAULT_PICKUP_HOLD);
        if pickup_hold.is_zero() || pickup_hold > MAX_PICKUP_HOLD {
            bad(
                "pickup_hold",
                "must be more than 0 and at most 30 days".to_owned(),
            );
        }
        if raw.address.chars().count() > MAX_ADDRESS_LEN {
            bad(
                "address",
                format!("must be at most {MAX_ADDRESS_LEN} characters"),
            );
        }
        let caps = raw.capabilities;
        if caps.ship_from_store && raw.kind == Some(LocationKind::Warehouse) {
            bad(
                "capabilities.ship_from_store",
                "applies to stores only; a warehouse ships with `ships`".to_owned(),
            );
        }
        if caps.pickup && raw.kind == Some(LocationKind::Warehouse) {
            bad(
                "capabilities.pickup",
                "customers collect from stores, not warehouses".to_owned(),
            );
        }
        match (id, raw.kind, point, daily_capacity, time_zone) {
            (Some(id), Some(kind), Some(point), Some(daily_capacity), Some(time_zone))
                if violations.is_empty() =>
            {
                Ok(Self {
                    id,
                    kind,
                    name,
                    point,
                    capabilities: caps,
                    daily_capacity,
                    time_zone,
                    pickup_hold,
                    active: raw.active,
                    address: raw.address,
                })
            }
            _ => Err(InvalidRequest(violations)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawLocation {
        RawLocation {
            id: "store-17".into(),
            kind: Some(LocationKind::Store),
            name: "Nanjing Road".into(),
            lat: 31.2355,
            lon: 121.4747,
            capabilities: Capabilities {
                ships: false,
                pickup: true,
                ship_from_store: true,
            },
            daily_capacity: 40,
            time_zone: "Asia/Shanghai".into(),
            pickup_hold: None,
            active: true,
            address: String::new(),
        }
    }

    #[test]
    fn a_valid_store_parses() {
        let loc = Location::parse(raw(), "location.").unwrap();
        assert_eq!(loc.daily_capacity, Some(40));
        assert_eq!(loc.pickup_hold, DEFAULT_PICKUP_HOLD);
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = RawLocation {
            id: "Store 17".into(),
            kind: None,
            name: String::new(),
            lat: 91.0,
            daily_capacity: -1,
            time_zone: "Mars/Olympus".into(),
            ..raw()
        };
        let err = Location::parse(bad, "location.").unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        for f in [
            "location.id",
            "location.kind",
            "location.name",
            "location.lat_lon",
            "location.daily_capacity",
            "location.time_zone",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn warehouses_do_not_take_pickups() {
        let wh = RawLocation {
            kind: Some(LocationKind::Warehouse),
            ..raw()
        };
        let err = Location::parse(wh, "").unwrap_err();
        assert!(err.0.iter().any(|v| v.field == "capabilities.pickup"));
    }
}
