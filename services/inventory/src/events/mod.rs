//! Events: what inventory publishes (through the outbox) and what it consumes (through the inbox).

pub mod consumers;
pub mod outgoing;
