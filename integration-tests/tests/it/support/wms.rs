//! A warehouse system as the AsyncAPI document describes it: it publishes CloudEvents on the
//! test exchange with the camelCase `data` of `docs/asyncapi.yaml`.

use std::sync::Arc;

use omni_platform::events::{Envelope, EventBus, names};
use serde_json::json;

pub struct Wms {
    bus: Arc<dyn EventBus>,
}

impl Wms {
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    async fn publish(&self, event: &str, order_id: &str, data: serde_json::Value) {
        let envelope = Envelope::new("wms-sim", event, order_id, data).expect("envelope");
        self.bus
            .publish(std::slice::from_ref(&envelope))
            .await
            .expect("WMS event published");
    }

    pub async fn dispatched(&self, order_id: &str, allocation_id: &str, location_id: &str) {
        self.publish(
            names::WAREHOUSE_SHIPMENT_DISPATCHED,
            order_id,
            json!({
                "orderId": order_id,
                "allocationId": allocation_id,
                "locationId": location_id,
                "carrier": "SF",
                "trackingNumber": format!("SF{}", &allocation_id[..8]),
                "dispatchedAt": chrono::Utc::now().to_rfc3339(),
            }),
        )
        .await;
    }

    pub async fn delivered(&self, order_id: &str, allocation_id: &str) {
        self.publish(
            names::WAREHOUSE_SHIPMENT_DELIVERED,
            order_id,
            json!({
                "orderId": order_id,
                "allocationId": allocation_id,
                "carrier": "SF",
                "deliveredAt": chrono::Utc::now().to_rfc3339(),
            }),
        )
        .await;
    }
}
