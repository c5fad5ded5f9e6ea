//! Event plumbing: CloudEvents envelope, bus port and adapters, outbox, inbox.
//!
//! A service writes events with [`outbox::enqueue`] inside the transaction that changes its
//! state; the [`outbox::OutboxRelay`] publishes them through an [`bus::EventBus`]
//! ([`rabbitmq::RabbitMqBus`] in production, [`in_process::InProcessBus`] embedded);
//! consumers record handled event ids with [`inbox::claim`] in the transaction of their effect.

pub mod bus;
pub mod envelope;
pub mod in_process;
pub mod inbox;
pub mod migration;
pub mod names;
mod observe;
pub mod outbox;
pub mod rabbitmq;
mod schema;
mod topic;

pub use bus::{
    BusError, ConsumerHandle, EventBus, EventHandler, HandlerError, ParkedMessage, ParkedMessages,
    PendingConfirms, ReplaySelection, Subscription,
};
pub use envelope::{Envelope, EnvelopeError};
