//! Reserve spread: one unit of a random SKU at a random location out of SKUs × locations, the
//! everyday shape of reservations (no hot key), beside the raw script on the same key space.

use omni_proto::inventory::v1 as inv;
use tonic::Code;

use super::{Baseline, Row, Settings, Targets, grpc_outcome, pick};
use crate::driver::{LoadPlan, Stop, run};
use crate::seed::{self, SeedError, Site};

/// Units per (sku, location): a whole run never sells one out, so every call is a real hold.
const UNITS: i64 = 100_000;

pub struct Catalogue {
    pub skus: Vec<String>,
    pub sites: Vec<Site>,
}

pub fn catalogue(s: &Settings) -> Catalogue {
    Catalogue {
        skus: (0..s.spread_skus).map(|i| format!("S-{i:05}")).collect(),
        sites: (0..s.spread_locations)
            .map(|i| Site {
                id: format!("spread-{i:03}"),
                warehouse: i % 5 == 0,
                lat: 22.0 + (i as f64) * 0.3,
                lon: 113.0 + (i as f64) * 0.2,
            })
            .collect(),
    }
}

/// Seeds both the service and the script's key space with the same stock.
pub async fn prepare(t: &Targets, c: &Catalogue) -> Result<(), SeedError> {
    seed::locations(&t.inventory, &c.sites).await?;
    seed::stock(&t.inventory, &t.tag, &c.skus, &c.sites, UNITS).await?;
    let pairs: Vec<(String, String)> = c
        .skus
        .iter()
        .flat_map(|sku| c.sites.iter().map(move |s| (sku.clone(), s.id.clone())))
        .collect();
    t.script
        .stock_many(&pairs, UNITS)
        .await
        .map_err(|e| SeedError::Baseline(format!("redis: {e}")))
}

pub async fn run_at(t: &Targets, s: &Settings, c: &Catalogue, concurrency: usize) -> Row {
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: Stop::After(s.duration),
        rate: None,
    };
    let skus = std::sync::Arc::new(c.skus.clone());
    let sites: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(c.sites.iter().map(|s| s.id.clone()).collect());

    let fleet = t.inventory_fleet.clone();
    let (k, l) = (skus.clone(), sites.clone());
    let system = run(plan, move |call| {
        let mut client = fleet.for_worker(call.worker);
        let sku = k[pick(call.seq, 1, k.len())].clone();
        let location = l[pick(call.seq, 2, l.len())].clone();
        async move {
            let request = inv::ReserveRequest {
                reservation_id: format!("order:{}", uuid::Uuid::new_v4()),
                lines: vec![inv::ReserveLine {
                    sku,
                    location_id: location,
                    quantity: 1,
                }],
                ttl: Some(omni_proto::pbjson_types::Duration {
                    seconds: 3_600,
                    nanos: 0,
                }),
                count_capacity: false,
            };
            grpc_outcome(client.reserve(request).await, &[Code::FailedPrecondition])
        }
    })
    .await;
    // The accepted holds' relaying must not be charged to the baseline.
    let settled = crate::settle::settle().await;

    let script = t.script.clone();
    let raw = run(plan, move |call| {
        let script = script.clone();
        let sku = skus[pick(call.seq, 1, skus.len())].clone();
        let location = sites[pick(call.seq, 2, sites.len())].clone();
        async move {
            let id = format!("order:{}", uuid::Uuid::new_v4());
            let now_ms = chrono::Utc::now().timestamp_millis();
            script.reserve(&id, &[(&sku, &location, 1)], now_ms).await
        }
    })
    .await;

    let mut row = Row::new("reserve-spread", concurrency, system);
    row.note = format!("{} SKUs × {} locations", c.skus.len(), c.sites.len());
    row.baselines = vec![Baseline {
        name: "raw Lua script on Redis",
        summary: raw,
    }];
    row.settled = settled;
    row
}
