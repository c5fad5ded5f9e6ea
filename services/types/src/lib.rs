//! Value types shared by every Omni service.
//!
//! Each type is built by a `parse` that returns a [`ValueError`] naming what is wrong, so past the
//! transport boundary a `Sku` or a `LocationId` is valid by construction and nothing re-checks it.

mod geo;
mod ids;
mod money;
mod quantity;

pub use geo::GeoPoint;
pub use ids::{ChannelId, LocationId, OrderId, ReservationId, Sku};
pub use money::{Currency, Money};
pub use quantity::Quantity;

/// Why a value was refused. The message is written for the caller who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters, got {len}")]
    TooLong { max: usize, len: usize },
    #[error("may contain only {allowed}, found {found:?}")]
    BadCharacter { allowed: &'static str, found: char },
    #[error("must be between {min} and {max}, got {value}")]
    OutOfRange { min: i64, max: i64, value: i64 },
    #[error("{0}")]
    Malformed(String),
}
