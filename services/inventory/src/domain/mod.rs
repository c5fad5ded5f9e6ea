//! Pure inventory rules: stock arithmetic, the movement ledger's effect on counters, the
//! reservation state machine, request validation, the shortage rule and capacity days.
//!
//! Nothing here performs I/O or reads a clock: callers pass `now`, so every rule is a function that
//! tests can drive directly. Adapters (Redis, in-process, PostgreSQL) implement these rules, never
//! redefine them.

mod calendar;
mod location;
mod request;
mod reservation;
mod shortage;
mod stock;

#[cfg(test)]
mod model_tests;

pub use calendar::{CapacityDay, TimeZoneError, local_date, parse_time_zone};
pub use location::{Capabilities, DEFAULT_PICKUP_HOLD, Location, LocationKind, RawLocation};
pub use request::{
    FieldViolation, InvalidRequest, MAX_HOLD_TTL, MAX_LINES, MIN_HOLD_TTL, RawLine,
    RawReserveRequest, ReserveRequest,
};
pub use reservation::{
    HeldLine, LineEffect, LineSelection, Reservation, ReservationLine, ReservationStatus,
    StateError,
};
pub use shortage::{HeldOnKey, unservable_reservations};
pub use stock::{
    Movement, MovementError, MovementKind, StockLevel, WriteOrder, apply, write_order,
};
