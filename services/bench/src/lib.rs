//! `omni-bench`: the load generator behind `scripts/bench.sh` (issue 9). It starts the service
//! binaries as its own children, drives them with N concurrent gRPC clients, measures the same
//! work straight on Redis and PostgreSQL as baselines, and writes `docs/benchmarks.md`.
//!
//! `stats` and `driver` are pure; `baselines`, `services`, `infra` and `scenarios` do the I/O.

pub mod baselines;
pub mod driver;
pub mod infra;
pub mod report;
pub mod rss;
pub mod run;
pub mod scenarios;
pub mod seed;
pub mod services;
pub mod settle;
pub mod stats;
pub mod targets;
