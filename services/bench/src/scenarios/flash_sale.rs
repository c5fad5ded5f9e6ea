//! Flash sale: one SKU at one location, K units, a crowd of buyers until sold out and beyond.
//! The figures that matter: accepted/s, refused/s, and that exactly K were accepted.
//! Each concurrency level sells a SKU of its own, so every level starts with K fresh units.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use omni_proto::common::v1::{Address, GeoPoint, Money};
use omni_proto::inventory::v1 as inv;
use omni_proto::orders::v1 as ord;
use tonic::Code;

use super::{Baseline, Row, Settings, Targets, grpc_outcome};
use crate::driver::{LoadPlan, Stop, run_settling};
use crate::seed::{self, SeedError, Site};
use crate::stats::{Outcome, Summary};

pub const LOCATION: &str = "flash-1";
/// The channel whose pool is only the flash-sale location, so PlaceOrder routes there.
pub const CHANNEL: &str = "flash";
const WARM_SKU: &str = "FLASH-WARMUP";
/// Enough warm-up stock never to run out (warm-up must not touch the measured SKU); the most
/// one adjustment may receive.
const WARM_UNITS: i64 = 100_000;
const POINT: (f64, f64) = (31.23, 121.47);

pub fn site() -> Site {
    Site {
        id: LOCATION.to_owned(),
        warehouse: true,
        lat: POINT.0,
        lon: POINT.1,
    }
}

/// Creates the location, its channel pool and the warm-up stock.
pub async fn prepare(t: &Targets) -> Result<(), SeedError> {
    seed::locations(&t.inventory, &[site()]).await?;
    seed::pool(&t.inventory, CHANNEL, &[site()]).await?;
    seed::stock(
        &t.inventory,
        &t.tag,
        &[WARM_SKU.to_owned()],
        &[site()],
        WARM_UNITS,
    )
    .await?;
    t.script.stock(WARM_SKU, LOCATION, WARM_UNITS).await.ok();
    t.pg_hot.stock(WARM_SKU, LOCATION, WARM_UNITS).await.ok();
    Ok(())
}

fn exactly(s: &Summary, k: u32) -> String {
    if s.accepted == u64::from(k) {
        format!("accepted exactly K = {k}")
    } else {
        format!("**accepted {} ≠ K = {k}**", s.accepted)
    }
}

/// `Reserve` through the service, beside the raw script and the PostgreSQL-only reservation.
pub async fn reserve(t: &Targets, s: &Settings, concurrency: usize) -> Result<Row, SeedError> {
    let k = s.flash_units;
    let sku = format!("FLASH-R-{concurrency}");
    seed::stock(
        &t.inventory,
        &t.tag,
        std::slice::from_ref(&sku),
        &[site()],
        i64::from(k),
    )
    .await?;
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: Stop::Requests(s.flash_buyers),
        rate: None,
    };

    let fleet = t.inventory_fleet.clone();
    let measured = sku.clone();
    let sell_out = SellOut::default();
    let tracked = sell_out.clone();
    // Each run settles after its warm-up, and before it: the sale measured is a few hundred
    // milliseconds, and the warm-up's accepted holds (or the run before) would fill it.
    let (system, mut settled) = run_settling(plan, move |c| {
        let mut client = fleet.for_worker(c.worker);
        let sku = if c.warmup {
            WARM_SKU.to_owned()
        } else {
            measured.clone()
        };
        let tracked = (!c.warmup).then(|| tracked.started());
        async move {
            let request = inv::ReserveRequest {
                reservation_id: format!("order:{}", uuid::Uuid::new_v4()),
                lines: vec![inv::ReserveLine {
                    sku,
                    location_id: LOCATION.to_owned(),
                    quantity: 1,
                }],
                ttl: Some(omni_proto::pbjson_types::Duration {
                    seconds: 3_600,
                    nanos: 0,
                }),
                count_capacity: false,
            };
            let outcome = grpc_outcome(client.reserve(request).await, &[Code::FailedPrecondition]);
            if let Some(tracked) = tracked {
                tracked.ended(&outcome);
            }
            outcome
        }
    })
    .await;

    let script_sku = format!("{sku}-SCRIPT");
    t.script
        .stock(&script_sku, LOCATION, i64::from(k))
        .await
        .map_err(|e| redis_seed(&e))?;
    settled += crate::settle::settle().await;
    let script = t.script.clone();
    let (raw, waited) = run_settling(plan, move |c| {
        let script = script.clone();
        let sku = if c.warmup {
            WARM_SKU.to_owned()
        } else {
            script_sku.clone()
        };
        async move {
            let id = format!("order:{}", uuid::Uuid::new_v4());
            let now_ms = chrono::Utc::now().timestamp_millis();
            script.reserve(&id, &[(&sku, LOCATION, 1)], now_ms).await
        }
    })
    .await;
    settled += waited;

    let pg_sku = format!("{sku}-PG");
    t.pg_hot
        .stock(&pg_sku, LOCATION, i64::from(k))
        .await
        .map_err(|e| pg_seed(&e))?;
    settled += crate::settle::settle().await;
    let pg = t.pg_hot.clone();
    let (pg_only, waited) = run_settling(plan, move |c| {
        let pg = pg.clone();
        let sku = if c.warmup {
            WARM_SKU.to_owned()
        } else {
            pg_sku.clone()
        };
        async move { pg.reserve(&sku, LOCATION, 1).await }
    })
    .await;
    settled += waited;

    let phases = sell_out.phases(&system);
    let mut row = Row::new("flash-sale Reserve", concurrency, system);
    row.note = format!(
        "service {}{phases}; script {}; PG-only {}",
        exactly(&row.system, k),
        exactly(&raw, k),
        exactly(&pg_only, k)
    );
    row.baselines = vec![
        Baseline {
            name: "raw Lua script on Redis",
            summary: raw,
        },
        Baseline {
            name: "PostgreSQL-only UPDATE, hot SKU",
            summary: pg_only,
        },
    ];
    row.settled = settled;
    Ok(row)
}

/// The same sale through `PlaceOrder` (plan, reserve, both transactions, confirmations).
pub async fn place_order(t: &Targets, s: &Settings, concurrency: usize) -> Result<Row, SeedError> {
    let k = s.flash_order_units;
    let sku = format!("FLASH-O-{concurrency}");
    seed::stock(
        &t.inventory,
        &t.tag,
        std::slice::from_ref(&sku),
        &[site()],
        i64::from(k),
    )
    .await?;
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: Stop::Requests(s.flash_order_buyers),
        rate: None,
    };
    let fleet = t.orders_fleet.clone();
    let (system, settled) = run_settling(plan, move |c| {
        let mut client = fleet.for_worker(c.worker);
        let sku = if c.warmup {
            WARM_SKU.to_owned()
        } else {
            sku.clone()
        };
        async move {
            let request = ord::PlaceOrderRequest {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                order: Some(one_unit_order(CHANNEL, &sku)),
            };
            grpc_outcome(
                client.place_order(request).await,
                &[Code::FailedPrecondition],
            )
        }
    })
    .await;
    let mut row = Row::new("flash-sale PlaceOrder", concurrency, system);
    row.note = exactly(&row.system, k);
    row.settled = settled;
    Ok(row)
}

/// When the measured calls started and when the last accepted one answered, so a row can say
/// how the time splits between selling (each acceptance is a durable write) and refusing (the
/// gate's answer alone).
#[derive(Clone, Default)]
struct SellOut {
    start: Arc<OnceLock<tokio::time::Instant>>,
    last_accept_micros: Arc<AtomicU64>,
}

impl SellOut {
    fn started(&self) -> Self {
        self.start.get_or_init(tokio::time::Instant::now);
        self.clone()
    }

    fn ended(&self, outcome: &Outcome) {
        if let (Outcome::Accepted, Some(start)) = (outcome, self.start.get()) {
            let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.last_accept_micros.fetch_max(micros, Ordering::Relaxed);
        }
    }

    /// ` (sold out after …)` with both phases' rates, or nothing when it never sold out.
    fn phases(&self, s: &Summary) -> String {
        let selling = Duration::from_micros(self.last_accept_micros.load(Ordering::Relaxed));
        let refusing = s.elapsed.saturating_sub(selling);
        if selling.is_zero() || refusing.is_zero() {
            return String::new();
        }
        // Refusals that came in while the sale was on are few (a call refused only once the
        // counter reached zero), so all of them are counted in the second phase.
        format!(
            " (sold out after {:.0} ms: {:.0} accepted/s while selling, {:.0} refused/s after)",
            selling.as_secs_f64() * 1e3,
            s.accepted as f64 / selling.as_secs_f64(),
            s.refused as f64 / refusing.as_secs_f64(),
        )
    }
}

/// A one-line, one-unit shipped order to a fixed address near the flash-sale location.
pub fn one_unit_order(channel: &str, sku: &str) -> ord::OrderDraft {
    ord::OrderDraft {
        channel_id: channel.to_owned(),
        member: None,
        lines: vec![ord::OrderLineInput {
            sku: sku.to_owned(),
            quantity: 1,
            unit_price: Some(Money {
                minor_units: 9_900,
                currency: "CNY".to_owned(),
            }),
        }],
        fulfilment: Some(ship_to(POINT.0 + 0.05, POINT.1 + 0.05)),
        points_to_redeem: 0,
        checkout_hold_id: String::new(),
    }
}

pub fn ship_to(lat: f64, lon: f64) -> ord::Fulfilment {
    ord::Fulfilment {
        method: Some(ord::fulfilment::Method::Ship(ord::ShipFulfilment {
            address: Some(Address {
                recipient: "Bench Buyer".to_owned(),
                lines: vec!["1 Bench Road".to_owned()],
                city: "Shanghai".to_owned(),
                region: String::new(),
                postal_code: "200001".to_owned(),
                country_code: "CN".to_owned(),
                phone: String::new(),
            }),
            delivery_point: Some(GeoPoint { lat, lon }),
        })),
    }
}

fn redis_seed(e: &redis::RedisError) -> SeedError {
    SeedError::Baseline(format!("redis: {e}"))
}

fn pg_seed(e: &sea_orm::DbErr) -> SeedError {
    SeedError::Baseline(format!("postgres: {e}"))
}
