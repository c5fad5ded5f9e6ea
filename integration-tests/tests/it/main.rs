//! Journeys across inventory, order-routing and member, in one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod journeys;
mod support;
