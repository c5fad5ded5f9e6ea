//! Event consumers. One queue, `member.orders`, fed by the order events that move points.

pub mod orders;

pub use orders::{OrdersConsumer, subscription};
