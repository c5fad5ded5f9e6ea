//! Place-order end to end: PlaceOrder through order-routing with inventory and member running,
//! their transactions, outbox relays and consumers live. Mixed ship and pickup, 1–5 lines,
//! routed over the catalogue's locations. Baseline: the same orders' durable work straight on
//! PostgreSQL (two transactions, two databases).

use std::sync::Arc;

use omni_proto::common::v1::Money;
use omni_proto::orders::v1 as ord;
use tonic::Code;

use super::flash_sale::ship_to;
use super::{Baseline, Row, Settings, Targets, grpc_outcome, pick};
use crate::baselines::BaselineLine;
use crate::driver::{LoadPlan, Stop, run};
use crate::seed::{self, SeedError, Site};

pub const CHANNEL: &str = "bench";
/// Units per (sku, location): no order in a run is refused for stock.
const UNITS: i64 = 100_000;
const MAX_LINES: usize = 5;
/// Seven in ten orders ship, the rest are picked up.
const SHIP_IN_TEN: usize = 7;
const PRICE_MINOR: i64 = 12_900;

pub struct Catalogue {
    pub skus: Vec<String>,
    pub sites: Vec<Site>,
    pub stores: Vec<String>,
}

pub fn catalogue(s: &Settings) -> Catalogue {
    let sites: Vec<Site> = (0..s.order_locations)
        .map(|i| Site {
            id: format!("po-{i:03}"),
            warehouse: i % 10 == 0,
            lat: 30.5 + 1.4 * super::mix(i as u64 * 2) as f64 / u64::MAX as f64,
            lon: 120.8 + 1.2 * super::mix(i as u64 * 2 + 1) as f64 / u64::MAX as f64,
        })
        .collect();
    Catalogue {
        skus: (0..s.order_skus).map(|i| format!("P-{i:04}")).collect(),
        stores: sites
            .iter()
            .filter(|s| !s.warehouse)
            .map(|s| s.id.clone())
            .collect(),
        sites,
    }
}

pub async fn prepare(t: &Targets, c: &Catalogue) -> Result<(), SeedError> {
    seed::locations(&t.inventory, &c.sites).await?;
    seed::pool(&t.inventory, CHANNEL, &c.sites).await?;
    seed::stock(&t.inventory, &t.tag, &c.skus, &c.sites, UNITS).await
}

/// The order drawn for call `seq`: 1–5 distinct SKUs, shipped to a point in the region or
/// picked up at a store.
fn draft(c: &Catalogue, seq: u64) -> ord::OrderDraft {
    let n = 1 + pick(seq, 3, MAX_LINES);
    let first = pick(seq, 4, c.skus.len());
    let lines = (0..n.min(c.skus.len()))
        .map(|i| ord::OrderLineInput {
            sku: c.skus[(first + i * 7) % c.skus.len()].clone(),
            quantity: 1 + pick(seq, 10 + i as u64, 2) as i32,
            unit_price: Some(Money {
                minor_units: PRICE_MINOR,
                currency: "CNY".to_owned(),
            }),
        })
        .collect();
    let fulfilment = if pick(seq, 5, 10) < SHIP_IN_TEN || c.stores.is_empty() {
        let lat = 30.5 + 1.4 * (pick(seq, 6, 1_000) as f64 / 1_000.0);
        let lon = 120.8 + 1.2 * (pick(seq, 7, 1_000) as f64 / 1_000.0);
        ship_to(lat, lon)
    } else {
        ord::Fulfilment {
            method: Some(ord::fulfilment::Method::Pickup(ord::PickupFulfilment {
                store_id: c.stores[pick(seq, 8, c.stores.len())].clone(),
            })),
        }
    };
    ord::OrderDraft {
        channel_id: CHANNEL.to_owned(),
        member: None,
        lines,
        fulfilment: Some(fulfilment),
        points_to_redeem: 0,
        checkout_hold_id: String::new(),
    }
}

async fn system(t: &Targets, c: &Arc<Catalogue>, plan: LoadPlan) -> crate::stats::Summary {
    let fleet = t.orders_fleet.clone();
    let c = Arc::clone(c);
    run(plan, move |call| {
        let mut client = fleet.for_worker(call.worker);
        let request = ord::PlaceOrderRequest {
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            order: Some(draft(&c, call.seq)),
        };
        async move {
            grpc_outcome(
                client.place_order(request).await,
                &[Code::FailedPrecondition],
            )
        }
    })
    .await
}

/// Closed loop at `concurrency`, beside the two-transaction baseline.
pub async fn closed(t: &Targets, s: &Settings, c: &Arc<Catalogue>, concurrency: usize) -> Row {
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: Stop::After(s.duration),
        rate: None,
    };
    let summary = system(t, c, plan).await;
    // The system's relays and consumers are still draining; the baseline must not pay for it.
    let settled = crate::settle::settle().await;

    let pg = t.pg_order.clone();
    let cat = Arc::clone(c);
    let baseline = run(plan, move |call| {
        let pg = pg.clone();
        let d = draft(&cat, call.seq);
        let location = cat.sites[pick(call.seq, 9, cat.sites.len())].id.clone();
        let lines: Vec<BaselineLine> = d
            .lines
            .iter()
            .map(|l| BaselineLine {
                sku: l.sku.clone(),
                location: location.clone(),
                qty: l.quantity,
                unit_price_minor: PRICE_MINOR,
            })
            .collect();
        async move { pg.place(&lines).await }
    })
    .await;

    let mut row = Row::new("place-order", concurrency, summary);
    row.note = format!(
        "1–{MAX_LINES} lines, {SHIP_IN_TEN}/10 ship, {} locations",
        c.sites.len()
    );
    row.baselines = vec![Baseline {
        name: "2 PostgreSQL transactions",
        summary: baseline,
    }];
    row.settled = settled;
    row
}

/// Open loop at `rate` orders/s (half the peak), for the latency target.
pub async fn paced(
    t: &Targets,
    s: &Settings,
    c: &Arc<Catalogue>,
    concurrency: usize,
    rate: f64,
) -> Row {
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: Stop::After(s.duration),
        rate: Some(rate),
    };
    let mut row = Row::new(
        "place-order @ ½ peak",
        concurrency,
        system(t, c, plan).await,
    );
    row.rate = Some(rate);
    row
}
