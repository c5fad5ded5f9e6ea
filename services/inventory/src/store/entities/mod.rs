//! sea-orm entities of the inventory database (schema in `omni-inventory-migration`).

pub mod channel_pools;
pub mod locations;
pub mod reservation_lines;
pub mod reservations;
pub mod stock_levels;
pub mod stock_movements;
