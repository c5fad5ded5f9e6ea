//! The order-routing service: takes orders from channels, routes them to warehouses and stores,
//! and keeps every order's state machine (ARCHITECTURE §2 "Order-routing").
//!
//! `domain` is pure; `service` runs the use cases (the PlaceOrder saga, store operations, event
//! effects) over `store` (PostgreSQL/SQLite) and the `clients` ports; `grpc` and `events` are
//! the transports; `jobs` the scheduled work.

pub mod app;
pub mod clients;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod metrics;
pub mod service;
pub mod store;
