#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of the order-routing service: the real application over gRPC on
//! PostgreSQL, with fake inventory and member ports for failure injection, and end-to-end
//! journeys against the real inventory service on PostgreSQL, Redis and RabbitMQ (`e2e`).

mod auth;
mod catalogues;
mod e2e;
mod e2e_harness;
mod fakes;
mod pickup;
mod saga;
mod support;
mod warehouse;
