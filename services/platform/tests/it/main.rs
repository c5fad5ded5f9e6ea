#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod events;
mod grpc;
