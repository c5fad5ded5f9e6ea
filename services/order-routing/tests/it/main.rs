#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of the order-routing service: the real application over gRPC on
//! PostgreSQL, with fake inventory and member ports for failure injection.

mod fakes;
mod pickup;
mod saga;
mod support;
mod warehouse;
