//! The gRPC transport: `omni.orders.v1.OrderService` and `StoreService`, converting between
//! the wire messages and the service layer, with one authorization table.

pub mod auth_rules;
mod convert;
mod error;
mod order_service;
mod store_service;

pub use order_service::OrderApi;
pub use store_service::StoreApi;
