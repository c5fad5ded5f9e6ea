//! Pure order-routing rules: order input, the routing planner and its profiles, policy
//! simulation, the order and allocation state machines, and pickup codes.
//!
//! Nothing here performs I/O or reads the clock: the transport and storage layers hand values
//! in (candidates with their stock, `now`, a random number generator) and persist what comes out.

pub mod order;
pub mod pickup;
pub mod planner;
pub mod profile;
pub mod simulate;
pub mod state;
