//! Consumers: `orders.warehouse` (WMS reports) and `orders.inventory` (shortages, expiries).
//! Each effect and its inbox claim commit in one transaction (see `service::commands`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use omni_platform::events::{Envelope, EventHandler, HandlerError, Subscription, names};
use omni_proto::events::v1 as pb;
use omni_types::{LocationId, ReservationId};

use crate::service::Orders;
use crate::service::record::Tracking;

/// Production queue names; they also name the consumers in the inbox, whatever queue a
/// deployment uses.
pub const WAREHOUSE_QUEUE: &str = "orders.warehouse";
pub const INVENTORY_QUEUE: &str = "orders.inventory";

pub fn warehouse_subscription(queue: &str) -> Subscription {
    Subscription::new(queue, ["warehouse.#"])
}

pub fn inventory_subscription(queue: &str) -> Subscription {
    Subscription::new(
        queue,
        [
            names::INVENTORY_STOCK_SHORTAGE,
            names::INVENTORY_RESERVATION_EXPIRED,
        ],
    )
}

fn decode<T: serde::de::DeserializeOwned>(event: &Envelope) -> Result<T, HandlerError> {
    event
        .data_as()
        .map_err(|e| HandlerError::Reject(format!("malformed {}: {e}", event.event_name())))
}

fn uuid(field: &str, value: &str) -> Result<uuid::Uuid, HandlerError> {
    uuid::Uuid::parse_str(value)
        .map_err(|_| HandlerError::Reject(format!("{field} {value:?} is not a UUID")))
}

fn time(t: Option<omni_proto::pbjson_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| t.try_into().ok())
}

fn outcome(
    r: Result<crate::service::EffectOutcome, crate::service::EffectError>,
) -> Result<(), HandlerError> {
    use crate::service::EffectError;
    match r {
        Ok(_) => Ok(()),
        Err(EffectError::Retry(m)) => Err(HandlerError::Retry(m)),
        Err(EffectError::Reject(m)) => Err(HandlerError::Reject(m)),
    }
}

pub struct WarehouseEvents {
    orders: Orders,
}

impl WarehouseEvents {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }
}

#[async_trait]
impl EventHandler for WarehouseEvents {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let id = event.id();
        match event.event_name() {
            names::WAREHOUSE_SHIPMENT_DISPATCHED => {
                let e: pb::ShipmentDispatched = decode(event)?;
                let tracking = Tracking {
                    carrier: e.carrier,
                    tracking_number: e.tracking_number,
                    tracking_url: e.tracking_url,
                    dispatched_at: time(e.dispatched_at),
                    delivered_at: None,
                };
                outcome(
                    self.orders
                        .shipment_dispatched(
                            WAREHOUSE_QUEUE,
                            id,
                            uuid("order_id", &e.order_id)?,
                            uuid("allocation_id", &e.allocation_id)?,
                            tracking,
                        )
                        .await,
                )
            }
            names::WAREHOUSE_SHIPMENT_DELIVERED => {
                let e: pb::ShipmentDelivered = decode(event)?;
                outcome(
                    self.orders
                        .shipment_delivered(
                            WAREHOUSE_QUEUE,
                            id,
                            uuid("order_id", &e.order_id)?,
                            uuid("allocation_id", &e.allocation_id)?,
                            time(e.delivered_at),
                        )
                        .await,
                )
            }
            names::WAREHOUSE_TRANSFER_RECEIVED => {
                let e: pb::TransferReceived = decode(event)?;
                outcome(
                    self.orders
                        .transfer_received(
                            WAREHOUSE_QUEUE,
                            id,
                            uuid("order_id", &e.order_id)?,
                            uuid("allocation_id", &e.allocation_id)?,
                        )
                        .await,
                )
            }
            // Other warehouse events (stock receipts) are inventory's business.
            _ => Ok(()),
        }
    }
}

pub struct InventoryEvents {
    orders: Orders,
}

impl InventoryEvents {
    pub fn new(orders: Orders) -> Self {
        Self { orders }
    }

    /// Re-routed lines have reservations of their own; inventory names only those.
    async fn order_of(
        &self,
        reservation: &str,
        named: &str,
    ) -> Result<Option<uuid::Uuid>, HandlerError> {
        self.orders
            .order_of_reservation(reservation, named)
            .await
            .map_err(|e| HandlerError::Retry(e.to_string()))
    }
}

#[async_trait]
impl EventHandler for InventoryEvents {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let id = event.id();
        match event.event_name() {
            names::INVENTORY_STOCK_SHORTAGE => {
                let e: pb::StockShortage = decode(event)?;
                let location = LocationId::parse(e.location_id.clone())
                    .map_err(|err| HandlerError::Reject(format!("location_id: {err}")))?;
                for r in e.reservations.iter().filter(|r| !r.order_id.is_empty()) {
                    let Some(order) = self.order_of(&r.reservation_id, &r.order_id).await? else {
                        continue;
                    };
                    // One inbox claim per (event, order): a shortage names several orders.
                    let claim = format!("{id}:{order}");
                    outcome(
                        self.orders
                            .stock_lost(
                                INVENTORY_QUEUE,
                                &claim,
                                order,
                                ReservationId::parse(&r.reservation_id).ok(),
                                Some(location.clone()),
                                Some(BTreeSet::from([e.sku.clone()])),
                                format!("stock shortage of {} at {}", e.sku, e.location_id),
                            )
                            .await,
                    )?;
                }
                Ok(())
            }
            names::INVENTORY_RESERVATION_EXPIRED => {
                let e: pb::ReservationExpired = decode(event)?;
                if e.order_id.is_empty() {
                    return Ok(());
                }
                let Some(order) = self.order_of(&e.reservation_id, &e.order_id).await? else {
                    return Ok(());
                };
                outcome(
                    self.orders
                        .stock_lost(
                            INVENTORY_QUEUE,
                            id,
                            order,
                            ReservationId::parse(&e.reservation_id).ok(),
                            None,
                            None,
                            "the reservation expired before the order was confirmed".into(),
                        )
                        .await,
                )
            }
            _ => Ok(()),
        }
    }
}
