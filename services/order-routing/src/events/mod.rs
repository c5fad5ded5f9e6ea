//! Events: what an order change publishes (through the outbox) and the consumers of warehouse
//! and inventory events.

pub mod consumers;
pub mod outgoing;

/// The CloudEvents `source` of everything this service publishes.
pub const SOURCE: &str = "orders";
