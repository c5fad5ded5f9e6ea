//! PostgreSQL (or SQLite, embedded) persistence of members, the points ledger and purchases.
//!
//! Every function takes the caller's connection or transaction: the operations in `ops` decide
//! what commits together (state, ledger entries, outbox events, inbox claims).

pub mod codec;
pub mod entities;
mod error;
pub mod ledger;
pub mod members;
pub mod purchases;

pub use error::StoreError;
