//! The routing planner in process, call by call, so its p99 can be judged (criterion, in
//! `services/order-routing/benches/planner`, gives the mean of the same problem).

use std::sync::Arc;
use std::time::Duration;

use omni_order_routing::domain::planner::plan;

use super::Row;
use crate::driver::{LoadPlan, Stop, run};
use crate::stats::Outcome;

#[allow(
    dead_code,
    clippy::expect_used,
    reason = "shared fixture: constant, valid inputs; not every item is used here"
)]
#[path = "../../../order-routing/benches/planner/fixture.rs"]
mod fixture;

pub async fn run_planner(duration: Duration, warmup: Duration) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, spread) in [
        ("planner: single location", fixture::Spread::SomeHoldAll),
        ("planner: greedy cover", fixture::Spread::Scattered),
    ] {
        let problem = Arc::new(fixture::problem(spread, 42));
        let load = LoadPlan {
            concurrency: 1,
            warmup,
            stop: Stop::After(duration),
            rate: None,
        };
        let p = Arc::clone(&problem);
        let summary = run(load, move |_| {
            let outcome = match plan(&p.order, &p.candidates, &p.profile) {
                Ok(_) => Outcome::Accepted,
                Err(_) => Outcome::Refused,
            };
            async move { outcome }
        })
        .await;
        let mut row = Row::new(name, 1, summary);
        row.note = format!(
            "{} lines over {} candidates, in process",
            fixture::LINES,
            fixture::CANDIDATES
        );
        rows.push(row);
    }
    rows
}
