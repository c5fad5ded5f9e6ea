//! Availability: 20 SKUs over every location of the channel's pool in one GetAvailability, the
//! call a storefront makes for a product list.

use std::sync::Arc;

use omni_proto::inventory::v1 as inv;
use tonic::Status;
use tonic::transport::Channel;

use super::place_order::{CHANNEL, Catalogue};
use super::{Row, Settings, Targets, pick};
use crate::driver::{LoadPlan, run};
use crate::stats::{Outcome, Summary};

pub const SKUS_PER_CALL: usize = 20;

/// One answer, decoded in full: in layout GRID that is 220 ids and four packed columns, cheap
/// enough that the figures measure the service rather than the harness. (In layout ROWS,
/// decoding 4,000 rows into 8,000 strings took ~45 % of this machine's CPU in the harness.)
async fn get_availability(
    channel: Channel,
    request: inv::GetAvailabilityRequest,
) -> Result<inv::GetAvailabilityResponse, Status> {
    let mut client = inv::inventory_service_client::InventoryServiceClient::new(channel);
    Ok(client.get_availability(request).await?.into_inner())
}

/// An answer is right when its grid has a cell per SKU × location and a capacity per location;
/// a wrong one counts as an error (`wrong_rows`), not as served.
fn outcome(
    answer: Result<inv::GetAvailabilityResponse, Status>,
    skus: usize,
    locations: usize,
) -> Outcome {
    match answer {
        Ok(answer) => match &answer.grid {
            Some(grid)
                if grid.check_shape().is_ok()
                    && grid.skus.len() == skus
                    && grid.location_ids.len() == locations
                    && answer.capacities.len() == locations =>
            {
                Outcome::Accepted
            }
            _ => Outcome::Failed("wrong_rows".to_owned()),
        },
        Err(s) => Outcome::Failed(format!("{:?}", s.code())),
    }
}

async fn system(t: &Targets, c: &Arc<Catalogue>, plan: LoadPlan) -> Summary {
    let channels = t.inventory_channels.clone();
    let c = Arc::clone(c);
    run(plan, move |call| {
        let channel = channels.for_worker(call.worker);
        let first = pick(call.seq, 1, c.skus.len());
        let skus: Vec<String> = (0..SKUS_PER_CALL.min(c.skus.len()))
            .map(|i| c.skus[(first + i) % c.skus.len()].clone())
            .collect();
        let (sku_count, locations) = (skus.len(), c.sites.len());
        let request = inv::GetAvailabilityRequest {
            skus,
            location_ids: Vec::new(),
            channel_id: Some(CHANNEL.to_owned()),
            layout: inv::AvailabilityLayout::Grid.into(),
        };
        async move {
            outcome(
                get_availability(channel, request).await,
                sku_count,
                locations,
            )
        }
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
