//! What every Omni service shares: configuration, telemetry, the gRPC server bootstrap, error
//! mapping, database connection and migrations, the event plumbing, page tokens, and a test kit.

pub mod auth;
pub mod batch;
pub mod clock;
pub mod config;
pub mod db;
pub mod events;
pub mod grpc;
pub mod metrics;
pub mod paging;
pub mod telemetry;
pub mod testkit;
pub mod tls;
