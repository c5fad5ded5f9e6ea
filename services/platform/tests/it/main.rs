#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_mtls;
mod config;
mod events;
mod grpc;
mod telemetry;
