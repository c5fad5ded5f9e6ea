//! Availability: 20 SKUs over every location of the channel's pool in one GetAvailability, the
//! call a storefront makes for a product list.

use std::sync::Arc;

use omni_proto::inventory::v1 as inv;

use super::place_order::{CHANNEL, Catalogue};
use super::{Row, Settings, Targets, grpc_outcome, pick};
use crate::driver::{LoadPlan, run};
use crate::stats::Summary;

pub const SKUS_PER_CALL: usize = 20;

async fn system(t: &Targets, c: &Arc<Catalogue>, plan: LoadPlan) -> Summary {
    let fleet = t.inventory_fleet.clone();
    let c = Arc::clone(c);
    run(plan, move |call| {
        let mut client = fleet.for_worker(call.worker);
        let first = pick(call.seq, 1, c.skus.len());
        let skus = (0..SKUS_PER_CALL.min(c.skus.len()))
            .map(|i| c.skus[(first + i) % c.skus.len()].clone())
            .collect();
        let request = inv::GetAvailabilityRequest {
            skus,
            location_ids: Vec::new(),
            channel_id: Some(CHANNEL.to_owned()),
        };
        async move { grpc_outcome(client.get_availability(request).await, &[]) }
    })
    .await
}

pub async fn closed(t: &Targets, s: &Settings, c: &Arc<Catalogue>, concurrency: usize) -> Row {
    let plan = LoadPlan {
        concurrency,
        warmup: s.warmup,
        stop: crate::driver::Stop::After(s.duration),
        rate: None,
    };
    let mut row = Row::new("availability", concurrency, system(t, c, plan).await);
    row.note = format!("{SKUS_PER_CALL} SKUs × {} locations", c.sites.len());
    row
}

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
        stop: crate::driver::Stop::After(s.duration),
        rate: Some(rate),
    };
    let mut row = Row::new(
        "availability @ ½ peak",
        concurrency,
        system(t, c, plan).await,
    );
    row.rate = Some(rate);
    row
}
