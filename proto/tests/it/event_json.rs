//! Event payloads are the `data` of CloudEvents in structured JSON mode; consumers in any
//! language read them with the proto3 JSON mapping.

use omni_proto::common::v1::{Address, Money, SkuQuantity};
use omni_proto::events::v1::{
    FulfilmentKind, FulfilmentRequested, OrderLineQuantity, StockReceived, fulfilment_requested,
};
use omni_proto::pbjson_types::Timestamp;
use serde_json::json;

fn fulfilment_requested() -> FulfilmentRequested {
    FulfilmentRequested {
        order_id: "6f1c1d62-3c1e-4a53-9d2f-2b0c7f1f4e10".into(),
        allocation_id: "0b9e3c55-1f0a-4c44-8d7e-5a6f3e2d1c0b".into(),
        location_id: "wh-east".into(),
        kind: FulfilmentKind::Ship.into(),
        lines: vec![OrderLineQuantity {
            line_id: "1".into(),
            sku: "SKU-42".into(),
            quantity: 3,
            unit_price: Some(Money {
                minor_units: 1999,
                currency: "EUR".into(),
            }),
        }],
        destination: Some(fulfilment_requested::Destination::ShipTo(Address {
            recipient: "Ada".into(),
            lines: vec!["1 Main St".into()],
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country_code: "DE".into(),
            ..Default::default()
        })),
        requested_at: Some(Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        }),
        sequence: 7,
    }
}

#[test]
fn payload_serialises_with_the_proto3_json_mapping() {
    let value = serde_json::to_value(fulfilment_requested()).unwrap();

    assert_eq!(
        value["allocationId"],
        "0b9e3c55-1f0a-4c44-8d7e-5a6f3e2d1c0b"
    );
    assert_eq!(value["kind"], "FULFILMENT_KIND_SHIP");
    assert_eq!(value["requestedAt"], "2026-01-01T00:00:00+00:00");
    // 64-bit integers are strings in proto3 JSON: JavaScript numbers cannot hold them exactly.
    assert_eq!(value["sequence"], "7");
    assert_eq!(value["lines"][0]["unitPrice"]["minorUnits"], "1999");
    assert_eq!(value["shipTo"]["postalCode"], "10115");
    // The unset oneof member and default-valued fields are omitted, not null.
    assert!(value.get("pickupStoreId").is_none());
    assert!(value["shipTo"].get("region").is_none());
}

#[test]
fn payload_survives_a_json_round_trip() {
    let event = fulfilment_requested();
    let text = serde_json::to_string(&event).unwrap();
    let back: FulfilmentRequested = serde_json::from_str(&text).unwrap();
    assert_eq!(back, event);
}

#[test]
fn a_foreign_producer_payload_is_read_including_fields_added_later() {
    // What a warehouse system written in another language sends: camelCase, enum-free, plus a
    // field this version does not know yet (payloads evolve by adding fields).
    let data = json!({
        "receiptId": "GRN-2026-0001",
        "locationId": "wh-east",
        "lines": [{ "sku": "SKU-42", "quantity": 12 }],
        "receivedAt": "2026-01-01T08:30:00Z",
        "dockDoor": "7"
    });
    let event: StockReceived = serde_json::from_value(data).unwrap();
    assert_eq!(
        event,
        StockReceived {
            receipt_id: "GRN-2026-0001".into(),
            location_id: "wh-east".into(),
            lines: vec![SkuQuantity {
                sku: "SKU-42".into(),
                quantity: 12,
            }],
            received_at: Some(Timestamp {
                seconds: 1_767_256_200,
                nanos: 0,
            }),
        }
    );
}

#[test]
fn an_unknown_enum_name_is_refused_rather_than_guessed() {
    let data = json!({ "orderId": "x", "kind": "FULFILMENT_KIND_TELEPORT" });
    assert!(serde_json::from_value::<FulfilmentRequested>(data).is_err());
}
