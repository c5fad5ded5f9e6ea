//! Availability: 20 SKUs over every location of the channel's pool in one GetAvailability, the
//! call a storefront makes for a product list.

use std::sync::Arc;

use omni_proto::inventory::v1 as inv;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::place_order::{CHANNEL, Catalogue};
use super::{Row, Settings, Targets, pick};
use crate::driver::{LoadPlan, run};
use crate::stats::{Outcome, Summary};

pub const SKUS_PER_CALL: usize = 20;

const GET_AVAILABILITY: &str = "/omni.inventory.v1.InventoryService/GetAvailability";

/// `GetAvailabilityResponse` as the load generator reads it: each row kept as its encoded
/// bytes (slices of the received buffer), not decoded. Decoding 4,000 rows into 8,000 strings
/// took ~45 % of this 2-core machine's CPU in the harness, CPU the service under test shares:
/// the figures measured the harness's decoding more than the service. A storefront decodes on
/// its own machine.
#[derive(Clone, PartialEq, prost::Message)]
struct AvailabilityRows {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    levels: Vec<bytes::Bytes>,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    capacities: Vec<bytes::Bytes>,
}

async fn get_availability(
    channel: Channel,
    request: inv::GetAvailabilityRequest,
) -> Result<AvailabilityRows, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("inventory not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<inv::GetAvailabilityRequest, AvailabilityRows>::default();
    let answer = grpc
        .unary(
            Request::new(request),
            PathAndQuery::from_static(GET_AVAILABILITY),
            codec,
        )
        .await?;
    Ok(answer.into_inner())
}

/// An answer is right when it has a row per SKU × location and a capacity per location; a
/// wrong one counts as an error (`wrong_rows`), not as served.
fn outcome(answer: Result<AvailabilityRows, Status>, skus: usize, locations: usize) -> Outcome {
    match answer {
        Ok(rows) if rows.levels.len() == skus * locations && rows.capacities.len() == locations => {
            Outcome::Accepted
        }
        Ok(_) => Outcome::Failed("wrong_rows".to_owned()),
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
