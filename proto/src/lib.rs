//! The gRPC and event contracts of Omni, compiled from `proto/omni/**.proto`.
//!
//! Modules mirror the protobuf packages (`omni_proto::inventory::v1` is `omni.inventory.v1`),
//! because generated code names types of other packages by relative paths (`super::super::…`).
//! Every message also implements `serde::Serialize`/`Deserialize` with the proto3 JSON mapping
//! (camelCase, enums as names, RFC 3339 timestamps): that is what event payloads are published as.
//!
//! Well-known types (`Timestamp`, `Duration`) are `pbjson_types`, re-exported here, not
//! `prost_types`: the same fields, plus serde and `chrono` conversions.

pub use pbjson_types;

mod availability;

/// The packages, nested as protobuf names them. Prefer the shortcuts below.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    reason = "generated code"
)]
pub mod omni {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("omni.common.v1");
            include!(concat!(env!("OUT_DIR"), "/omni.common.v1.serde.rs"));
        }
    }
    pub mod inventory {
        pub mod v1 {
            tonic::include_proto!("omni.inventory.v1");
            include!(concat!(env!("OUT_DIR"), "/omni.inventory.v1.serde.rs"));
            pub use crate::availability::{
                CapacityRow, CapacityRows, CapacityShapeError, Counters, GetAvailabilityResponse,
                GridShapeError, LevelGrid, PackedGrid,
            };
        }
    }
    pub mod orders {
        pub mod v1 {
            tonic::include_proto!("omni.orders.v1");
            include!(concat!(env!("OUT_DIR"), "/omni.orders.v1.serde.rs"));
        }
    }
    pub mod member {
        pub mod v1 {
            tonic::include_proto!("omni.member.v1");
            include!(concat!(env!("OUT_DIR"), "/omni.member.v1.serde.rs"));
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("omni.events.v1");
            include!(concat!(env!("OUT_DIR"), "/omni.events.v1.serde.rs"));
        }
    }
}

pub use omni::{common, events, inventory, member, orders};

/// Encoded `google.protobuf.FileDescriptorSet` of every Omni file and its imports, for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/omni_descriptor.bin"));

/// Fully qualified names of the gRPC services, as health checks and reflection report them.
pub mod service_names {
    pub const INVENTORY: &str = crate::inventory::v1::inventory_service_server::SERVICE_NAME;
    pub const ORDERS: &str = crate::orders::v1::order_service_server::SERVICE_NAME;
    pub const STORE: &str = crate::orders::v1::store_service_server::SERVICE_NAME;
    pub const MEMBER: &str = crate::member::v1::member_service_server::SERVICE_NAME;
}
