//! Puts locations, channel pools and stock into a running inventory service through its public
//! API, so the data is exactly what a real deployment would hold (ledger, counters, Redis).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use omni_proto::common::v1::GeoPoint;
use omni_proto::inventory::v1::{self as pb, inventory_service_client::InventoryServiceClient};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The service refused the data the bench generated, or never became ready for it.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{call} failed: {status}")]
    Refused { call: &'static str, status: Status },
    #[error("cannot stock a baseline: {0}")]
    Baseline(String),
}

/// AdjustStock takes at most this many adjustments per call (inventory's `MAX_ADJUSTMENTS`).
const ADJUSTMENTS_PER_CALL: usize = 500;
/// Calls in flight while seeding: enough to keep PostgreSQL busy on two cores, few enough not
/// to time out.
const SEED_PARALLELISM: usize = 4;
/// Inventory answers UNAVAILABLE while it rebuilds its Redis counters after start.
const READY_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub warehouse: bool,
    pub lat: f64,
    pub lon: f64,
}

/// Retries `f` while the service says UNAVAILABLE (start-up rebuild), up to a deadline.
async fn when_ready<T, F, Fut>(call: &'static str, mut f: F) -> Result<T, SeedError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(s) if s.code() == Code::Unavailable && started.elapsed() < READY_DEADLINE => {
                // Re-checked on every pass and bounded by the deadline above.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => return Err(SeedError::Refused { call, status }),
        }
    }
}

pub async fn locations(
    client: &InventoryServiceClient<Channel>,
    sites: &[Site],
) -> Result<(), SeedError> {
    stream::iter(sites.iter().cloned())
        .map(|site| {
            let client = client.clone();
            async move {
                let location = pb::Location {
                    id: site.id.clone(),
                    kind: if site.warehouse {
                        pb::LocationKind::Warehouse as i32
                    } else {
                        pb::LocationKind::Store as i32
                    },
                    name: site.id.clone(),
                    position: Some(GeoPoint {
                        lat: site.lat,
                        lon: site.lon,
                    }),
                    capabilities: Some(pb::LocationCapabilities {
                        ships: site.warehouse,
                        pickup: !site.warehouse,
                        ship_from_store: !site.warehouse,
                    }),
                    // 0 = no daily limit: the bench measures throughput, not capacity refusals.
                    daily_capacity: 0,
                    time_zone: "Asia/Shanghai".to_owned(),
                    active: true,
                    ..Default::default()
                };
                when_ready("UpsertLocation", || {
                    let mut client = client.clone();
                    let request = pb::UpsertLocationRequest {
                        location: Some(location.clone()),
                    };
                    async move { client.upsert_location(request).await }
                })
                .await
            }
        })
        .buffer_unordered(SEED_PARALLELISM)
        .try_collect::<Vec<_>>()
        .await
        .map(|_| ())
}

pub async fn pool(
    client: &InventoryServiceClient<Channel>,
    channel: &str,
    sites: &[Site],
) -> Result<(), SeedError> {
    let location_ids: Vec<String> = sites.iter().map(|s| s.id.clone()).collect();
    when_ready("SetChannelPool", || {
        let mut client = client.clone();
        let request = pb::SetChannelPoolRequest {
            channel_id: channel.to_owned(),
            location_ids: location_ids.clone(),
        };
        async move { client.set_channel_pool(request).await }
    })
    .await
    .map(|_| ())
}

/// Receives `qty` of every `sku` at every site, `tag` keeping the idempotency keys of one run
/// apart from another's.
pub async fn stock(
    client: &InventoryServiceClient<Channel>,
    tag: &str,
    skus: &[String],
    sites: &[Site],
    qty: i64,
) -> Result<(), SeedError> {
    let pairs: Vec<(String, String)> = skus
        .iter()
        .flat_map(|sku| sites.iter().map(move |s| (sku.clone(), s.id.clone())))
        .collect();
    let batches: Vec<Vec<pb::StockAdjustment>> = pairs
        .chunks(ADJUSTMENTS_PER_CALL)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(sku, location)| pb::StockAdjustment {
                    idempotency_key: format!("{tag}:seed:{sku}:{location}"),
                    sku: sku.clone(),
                    location_id: location.clone(),
                    kind: pb::MovementKind::Receipt as i32,
                    quantity: qty,
                    reason: "bench seed".to_owned(),
                    reference: String::new(),
                })
                .collect()
        })
        .collect();
    stream::iter(batches)
        .map(|adjustments| {
            let client = client.clone();
            async move {
                when_ready("AdjustStock", || {
                    let mut client = client.clone();
                    let request = pb::AdjustStockRequest {
                        adjustments: adjustments.clone(),
                    };
                    async move { client.adjust_stock(request).await }
                })
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(SEED_PARALLELISM)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
