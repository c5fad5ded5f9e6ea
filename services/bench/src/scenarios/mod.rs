//! The measured scenarios. Each runs its system figure and its baseline at the same
//! concurrency, one after the other, and returns report rows; none asserts a target.

pub mod availability;
pub mod flash_sale;
pub mod place_order;
pub mod planner;
pub mod relay;
pub mod spread;

use std::time::Duration;

use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::baselines::{PgHotReserve, PgOrder, RedisScript};
use crate::stats::{Outcome, Summary};

/// Sizes and timings of a run; `scripts/bench.sh` picks ones that finish in minutes on 2 cores.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    /// Units on sale in a flash sale, and how many buy attempts are made (more: "and beyond").
    pub flash_units: u32,
    pub flash_buyers: u64,
    pub flash_order_units: u32,
    pub flash_order_buyers: u64,
    pub spread_skus: usize,
    pub spread_locations: usize,
    pub order_locations: usize,
    pub order_skus: usize,
}

/// Clients of the running services and the baselines' connections.
#[derive(Clone)]
pub struct Targets {
    pub tag: String,
    /// For seeding and one-off calls.
    pub inventory: InventoryServiceClient<Channel>,
    pub orders: OrderServiceClient<Channel>,
    /// One connection per concurrent client of the load, as separate storefront servers or
    /// order-routing replicas would hold: N workers multiplexed over one HTTP/2 connection
    /// would measure that connection's single reader task, not the service.
    pub inventory_fleet: Fleet<InventoryServiceClient<Channel>>,
    /// The same connections as `inventory_fleet`, for calls made without the generated client.
    pub inventory_channels: Fleet<Channel>,
    pub orders_fleet: Fleet<OrderServiceClient<Channel>>,
    pub script: RedisScript,
    pub pg_hot: PgHotReserve,
    pub pg_order: PgOrder,
}

/// Clients, one per load worker (worker `i` uses connection `i mod len`).
#[derive(Clone)]
pub struct Fleet<C>(std::sync::Arc<Vec<C>>);

impl<C: Clone> Fleet<C> {
    /// `clients` must not be empty.
    pub fn new(clients: Vec<C>) -> Self {
        Self(std::sync::Arc::new(clients))
    }

    pub fn for_worker(&self, worker: usize) -> C {
        self.0[worker % self.0.len()].clone()
    }
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub concurrency: usize,
    /// Open-loop rate, when the row was driven at a fixed rate.
    pub rate: Option<f64>,
    pub system: Summary,
    pub baselines: Vec<Baseline>,
    /// What else the row proves (e.g. "accepted exactly K = 500").
    pub note: String,
    /// How long its runs waited for the machine to settle, beyond the wait before the row.
    pub settled: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Baseline {
    pub name: &'static str,
    pub summary: Summary,
}

impl Row {
    pub fn new(scenario: impl Into<String>, concurrency: usize, system: Summary) -> Self {
        Self {
            scenario: scenario.into(),
            concurrency,
            rate: None,
            system,
            baselines: Vec::new(),
            note: String::new(),
            settled: std::time::Duration::ZERO,
        }
    }
}

/// A gRPC answer as an outcome: `refused` codes are the system's correct "no".
pub fn grpc_outcome<T>(result: Result<T, Status>, refused: &[Code]) -> Outcome {
    match result {
        Ok(_) => Outcome::Accepted,
        Err(s) if refused.contains(&s.code()) => Outcome::Refused,
        Err(s) => Outcome::Failed(format!("{:?}", s.code())),
    }
}

/// splitmix64: spreads a call's sequence number into a well-mixed index, so every run draws
/// the same "random" SKUs and locations and two runs compare like with like.
pub fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An index below `n` drawn from `seq` and a `salt` (different draws of one call differ).
pub fn pick(seq: u64, salt: u64, n: usize) -> usize {
    let n = n.max(1) as u64;
    usize::try_from(mix(seq ^ mix(salt)) % n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_spread_out() {
        let mut hits = [0u32; 10];
        for seq in 0..10_000 {
            hits[pick(seq, 1, 10)] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1_200).contains(&h)), "{hits:?}");
        assert_ne!(pick(5, 1, 1_000), pick(5, 2, 1_000));
    }

    #[test]
    fn only_the_named_codes_count_as_refusals() {
        let refused = [Code::FailedPrecondition];
        assert_eq!(
            grpc_outcome(Ok::<(), Status>(()), &refused),
            Outcome::Accepted
        );
        assert_eq!(
            grpc_outcome::<()>(Err(Status::failed_precondition("sold out")), &refused),
            Outcome::Refused
        );
        assert_eq!(
            grpc_outcome::<()>(Err(Status::aborted("race")), &refused),
            Outcome::Failed("Aborted".into())
        );
    }
}
