//! sea-orm entities of the tables in `omni-orders-migration`.

pub mod location_catalogues;
pub mod orders;
pub mod placements;
pub mod request_keys;
pub mod routing_profiles;
pub mod routing_records;
