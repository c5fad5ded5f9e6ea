//! Integration tests of omni-inventory, in one binary.
//!
//! The Redis tests need Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`); each uses its own
//! random key prefix and deletes it afterwards, so they run in parallel and leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod gate_contract;
mod hold_changes;
mod hold_writes;
mod level_cache;
mod metrics;
mod service;
mod support;
