//! gRPC plumbing shared by every service.

pub mod call_metrics;
pub mod client;
pub mod server;
pub mod status;

pub use server::{GrpcServices, RunningServer, ServerError, serve, shutdown_signal};
pub use status::{ApiError, FieldViolation, PreconditionViolation};
