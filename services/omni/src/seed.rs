//! The demo catalogue `omni up` creates on first start, through the public gRPC APIs (so it
//! goes through the same validation and events as any operator's data).
//!
//! Idempotent: nothing is written when any location exists (an operator's own catalogue is
//! never mixed with the demo one), and the stock receipts and the enrolment carry fixed
//! idempotency keys.

use omni_proto::common::v1::{GeoPoint, Identity, IdentityType, Money};
use omni_proto::inventory::v1 as inv;
use omni_proto::member::v1 as mem;
use omni_proto::pbjson_types::Duration;

use crate::cli::connect::Endpoints;
use crate::error::CliError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Seeded { locations: usize, skus: usize },
    AlreadyPresent,
    Skipped,
}

pub struct DemoLocation {
    pub id: &'static str,
    pub name: &'static str,
    pub store: bool,
    pub lat: f64,
    pub lon: f64,
    pub daily_capacity: u32,
}

/// Two warehouses and four stores around Shanghai, Hangzhou and Suzhou.
pub const LOCATIONS: &[DemoLocation] = &[
    DemoLocation {
        id: "wh-shanghai",
        name: "Shanghai Jiading warehouse",
        store: false,
        lat: 31.3838,
        lon: 121.2655,
        daily_capacity: 0,
    },
    DemoLocation {
        id: "wh-hangzhou",
        name: "Hangzhou Xiaoshan warehouse",
        store: false,
        lat: 30.1850,
        lon: 120.2644,
        daily_capacity: 0,
    },
    DemoLocation {
        id: "store-sh-jingan",
        name: "Shanghai Jing'an store",
        store: true,
        lat: 31.2286,
        lon: 121.4480,
        daily_capacity: 50,
    },
    DemoLocation {
        id: "store-sh-pudong",
        name: "Shanghai Lujiazui store",
        store: true,
        lat: 31.2397,
        lon: 121.4998,
        daily_capacity: 50,
    },
    DemoLocation {
        id: "store-hz-xihu",
        name: "Hangzhou West Lake store",
        store: true,
        lat: 30.2592,
        lon: 120.1300,
        daily_capacity: 30,
    },
    DemoLocation {
        id: "store-sz-guanqian",
        name: "Suzhou Guanqian Street store",
        store: true,
        lat: 31.3118,
        lon: 120.6237,
        daily_capacity: 30,
    },
];

/// (sku, location, units received).
pub const STOCK: &[(&str, &str, i64)] = &[
    ("TEE-WHITE-M", "wh-shanghai", 200),
    ("TEE-WHITE-M", "wh-hangzhou", 120),
    ("TEE-WHITE-M", "store-sh-jingan", 8),
    ("TEE-WHITE-M", "store-hz-xihu", 5),
    ("TEE-BLACK-L", "wh-shanghai", 80),
    ("TEE-BLACK-L", "store-sh-pudong", 4),
    ("TEE-BLACK-L", "store-sz-guanqian", 6),
    ("MUG-CLASSIC", "wh-hangzhou", 300),
    ("MUG-CLASSIC", "store-sh-jingan", 12),
    ("MUG-CLASSIC", "store-sz-guanqian", 10),
    ("SNEAKER-42", "wh-shanghai", 40),
    ("SNEAKER-42", "store-sh-jingan", 2),
    ("SNEAKER-42", "store-sh-pudong", 3),
];

/// The demo member: `omni member balance +8613800138000`.
pub const MEMBER_PHONE: &str = "+8613800138000";
pub const MEMBER_NAME: &str = "Li Wei";

/// The earlier till purchase that gives the member points to spend.
const PURCHASE_MINOR_UNITS: i64 = 25_800;

pub async fn seed(endpoints: &Endpoints) -> Result<SeedOutcome, CliError> {
    let mut inventory = endpoints.inventory()?;
    let existing = inventory
        .list_locations(inv::ListLocationsRequest {
            page_size: 1,
            include_inactive: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    if !existing.locations.is_empty() {
        return Ok(SeedOutcome::AlreadyPresent);
    }
    for l in LOCATIONS {
        inventory
            .upsert_location(inv::UpsertLocationRequest {
                location: Some(location(l)),
            })
            .await?;
    }
    let all: Vec<String> = LOCATIONS.iter().map(|l| l.id.to_owned()).collect();
    let warehouses: Vec<String> = LOCATIONS
        .iter()
        .filter(|l| !l.store)
        .map(|l| l.id.to_owned())
        .collect();
    for (channel, locations) in [("web", &all), ("app", &all), ("marketplace", &warehouses)] {
        inventory
            .set_channel_pool(inv::SetChannelPoolRequest {
                channel_id: channel.to_owned(),
                location_ids: locations.clone(),
            })
            .await?;
    }
    inventory
        .adjust_stock(inv::AdjustStockRequest {
            adjustments: STOCK
                .iter()
                .map(|(sku, location, qty)| inv::StockAdjustment {
                    idempotency_key: format!("omni-seed:{sku}:{location}"),
                    sku: (*sku).to_owned(),
                    location_id: (*location).to_owned(),
                    kind: inv::MovementKind::Receipt as i32,
                    quantity: *qty,
                    reason: "demo catalogue".to_owned(),
                    reference: "omni-seed".to_owned(),
                })
                .collect(),
        })
        .await?;

    let mut member = endpoints.member()?;
    let phone = Identity {
        r#type: IdentityType::Phone as i32,
        value: MEMBER_PHONE.to_owned(),
    };
    member
        .enroll_member(mem::EnrollMemberRequest {
            idempotency_key: "omni-seed:member".to_owned(),
            name: MEMBER_NAME.to_owned(),
            identities: vec![phone.clone()],
            channel_id: "app".to_owned(),
        })
        .await?;
    member
        .record_purchase(mem::RecordPurchaseRequest {
            member: Some(mem::record_purchase_request::Member::Identity(phone)),
            store_id: "store-sh-jingan".to_owned(),
            channel_id: "pos".to_owned(),
            receipt_id: "omni-seed-receipt-1".to_owned(),
            amount: Some(Money {
                minor_units: PURCHASE_MINOR_UNITS,
                currency: "CNY".to_owned(),
            }),
            occurred_at: None,
        })
        .await?;

    let mut skus: Vec<&str> = STOCK.iter().map(|(sku, _, _)| *sku).collect();
    skus.sort_unstable();
    skus.dedup();
    Ok(SeedOutcome::Seeded {
        locations: LOCATIONS.len(),
        skus: skus.len(),
    })
}

fn location(l: &DemoLocation) -> inv::Location {
    inv::Location {
        id: l.id.to_owned(),
        kind: if l.store {
            inv::LocationKind::Store
        } else {
            inv::LocationKind::Warehouse
        } as i32,
        name: l.name.to_owned(),
        position: Some(GeoPoint {
            lat: l.lat,
            lon: l.lon,
        }),
        capabilities: Some(inv::LocationCapabilities {
            ships: !l.store,
            pickup: l.store,
            ship_from_store: l.store,
        }),
        daily_capacity: l.daily_capacity,
        time_zone: "Asia/Shanghai".to_owned(),
        // Three days to collect, as the stores promise customers.
        pickup_hold: l.store.then_some(Duration {
            seconds: 72 * 3600,
            nanos: 0,
        }),
        active: true,
        ..Default::default()
    }
}
