//! Member service integration tests: the real Application on port 0, a fresh PostgreSQL
//! database per test, RabbitMQ (unique topology) where the broker matters, real gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod events;
mod lifecycle;
mod paging;
mod redemption;
mod returns;
mod tiers;
mod validation;
