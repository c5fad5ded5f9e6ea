//! The event catalogue (ARCHITECTURE §4): every routing key a service may publish or bind to.
//!
//! Constants rather than an enum because routing keys are also used as binding patterns
//! (`order.#`) and one of them takes a parameter (`fulfilment.requested.<location_id>`).

use omni_types::LocationId;

pub const INVENTORY_STOCK_CHANGED: &str = "inventory.stock.changed";
pub const INVENTORY_STOCK_SHORTAGE: &str = "inventory.stock.shortage";
pub const INVENTORY_RESERVATION_EXPIRED: &str = "inventory.reservation.expired";
pub const ORDER_PLACED: &str = "order.placed";
/// Published with the location appended: use [`fulfilment_requested`] to build the routing key.
pub const FULFILMENT_REQUESTED: &str = "fulfilment.requested";
pub const ORDER_PICKUP_READY: &str = "order.pickup.ready";
pub const ORDER_ALLOCATION_FULFILLED: &str = "order.allocation.fulfilled";
pub const ORDER_ALLOCATION_RELEASED: &str = "order.allocation.released";
pub const ORDER_COMPLETED: &str = "order.completed";
pub const ORDER_CANCELLED: &str = "order.cancelled";
pub const ORDER_RETURNED: &str = "order.returned";
pub const WAREHOUSE_SHIPMENT_DISPATCHED: &str = "warehouse.shipment.dispatched";
pub const WAREHOUSE_SHIPMENT_DELIVERED: &str = "warehouse.shipment.delivered";
pub const WAREHOUSE_TRANSFER_RECEIVED: &str = "warehouse.transfer.received";
pub const WAREHOUSE_STOCK_RECEIVED: &str = "warehouse.stock.received";
pub const MEMBER_POINTS_CHANGED: &str = "member.points.changed";
pub const MEMBER_TIER_CHANGED: &str = "member.tier.changed";

/// Every event of the catalogue, for documentation checks and admin tooling.
pub const ALL: &[&str] = &[
    INVENTORY_STOCK_CHANGED,
    INVENTORY_STOCK_SHORTAGE,
    INVENTORY_RESERVATION_EXPIRED,
    ORDER_PLACED,
    FULFILMENT_REQUESTED,
    ORDER_PICKUP_READY,
    ORDER_ALLOCATION_FULFILLED,
    ORDER_ALLOCATION_RELEASED,
    ORDER_COMPLETED,
    ORDER_CANCELLED,
    ORDER_RETURNED,
    WAREHOUSE_SHIPMENT_DISPATCHED,
    WAREHOUSE_SHIPMENT_DELIVERED,
    WAREHOUSE_TRANSFER_RECEIVED,
    WAREHOUSE_STOCK_RECEIVED,
    MEMBER_POINTS_CHANGED,
    MEMBER_TIER_CHANGED,
];

/// Catalogue names whose routing key carries one extra segment (the target location), so a
/// warehouse binds only to its own work.
const PARAMETERISED: &[&str] = &[FULFILMENT_REQUESTED];

/// Routing key of a fulfilment request addressed to one location.
pub fn fulfilment_requested(location: &LocationId) -> String {
    format!("{FULFILMENT_REQUESTED}.{location}")
}

/// The event name a routing key stands for: the routing key itself, except that a
/// parameterised key (`fulfilment.requested.<location>`) loses its parameter.
pub fn event_name_of(routing_key: &str) -> &str {
    PARAMETERISED
        .iter()
        .find(|base| {
            routing_key
                .strip_prefix(**base)
                .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
        })
        .copied()
        .unwrap_or(routing_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fulfilment_key_carries_the_location_and_maps_back_to_its_name() {
        let loc = LocationId::parse("store-17").unwrap();
        let key = fulfilment_requested(&loc);
        assert_eq!(key, "fulfilment.requested.store-17");
        assert_eq!(event_name_of(&key), FULFILMENT_REQUESTED);
    }

    #[test]
    fn plain_names_map_to_themselves() {
        for name in ALL {
            assert_eq!(event_name_of(name), *name);
        }
        assert_eq!(
            event_name_of("fulfilment.requestedx"),
            "fulfilment.requestedx"
        );
        assert_eq!(
            event_name_of("fulfilment.requested."),
            "fulfilment.requested."
        );
    }
}
