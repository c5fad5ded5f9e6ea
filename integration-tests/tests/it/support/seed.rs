//! Seeding and reading the system through its public gRPC API, as an operator, a channel or a
//! till would.

use std::time::Duration;

use omni_proto::common::v1 as common;
use omni_proto::inventory::v1 as inv;
use omni_proto::member::v1 as mem;
use omni_proto::orders::v1 as ord;

use super::{System, eventually};

pub const CNY: &str = "CNY";
/// Long enough for an outbox relay, a broker hop and a consumer on a busy 2-core machine.
pub const EVENTUAL: Duration = Duration::from_secs(30);

/// Where shoppers are: central Shanghai.
pub const CUSTOMER: (f64, f64) = (31.2304, 121.4737);

pub fn money(minor_units: i64) -> common::Money {
    common::Money {
        minor_units,
        currency: CNY.to_owned(),
    }
}

pub fn line(sku: &str, quantity: i32, unit_price: i64) -> ord::OrderLineInput {
    ord::OrderLineInput {
        sku: sku.to_owned(),
        quantity,
        unit_price: Some(money(unit_price)),
    }
}

pub fn ship_to((lat, lon): (f64, f64)) -> ord::Fulfilment {
    ord::Fulfilment {
        method: Some(ord::fulfilment::Method::Ship(ord::ShipFulfilment {
            address: Some(common::Address {
                recipient: "Li Lei".to_owned(),
                lines: vec!["1 Nanjing Road".to_owned()],
                city: "Shanghai".to_owned(),
                region: String::new(),
                postal_code: "200001".to_owned(),
                country_code: "CN".to_owned(),
                phone: "+8613800000000".to_owned(),
            }),
            delivery_point: Some(common::GeoPoint { lat, lon }),
        })),
    }
}

pub fn pickup_at(store: &str) -> ord::Fulfilment {
    ord::Fulfilment {
        method: Some(ord::fulfilment::Method::Pickup(ord::PickupFulfilment {
            store_id: store.to_owned(),
        })),
    }
}

/// A draft from `channel`, for `member` (when given).
pub fn draft(
    channel: &str,
    member: Option<&str>,
    lines: Vec<ord::OrderLineInput>,
    fulfilment: ord::Fulfilment,
) -> ord::OrderDraft {
    ord::OrderDraft {
        channel_id: channel.to_owned(),
        member: member.map(|id| ord::MemberRef {
            member: Some(ord::member_ref::Member::MemberId(id.to_owned())),
        }),
        lines,
        fulfilment: Some(fulfilment),
        points_to_redeem: 0,
        checkout_hold_id: String::new(),
    }
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl System {
    async fn location(&self, id: &str, kind: inv::LocationKind, at: (f64, f64), store: bool) {
        self.inventory_as("admin")
            .upsert_location(inv::UpsertLocationRequest {
                location: Some(inv::Location {
                    id: id.to_owned(),
                    kind: kind as i32,
                    name: id.to_owned(),
                    position: Some(common::GeoPoint {
                        lat: at.0,
                        lon: at.1,
                    }),
                    capabilities: Some(inv::LocationCapabilities {
                        ships: true,
                        pickup: store,
                        ship_from_store: store,
                    }),
                    daily_capacity: 0,
                    time_zone: "Asia/Shanghai".to_owned(),
                    pickup_hold: None,
                    active: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("upsert location {id}: {e}"));
    }

    pub async fn warehouse(&self, id: &str, at: (f64, f64)) {
        self.location(id, inv::LocationKind::Warehouse, at, false)
            .await;
    }

    /// A store that ships and takes pickups.
    pub async fn store(&self, id: &str, at: (f64, f64)) {
        self.location(id, inv::LocationKind::Store, at, true).await;
    }

    pub async fn pool(&self, channel: &str, locations: &[&str]) {
        self.inventory_as("admin")
            .set_channel_pool(inv::SetChannelPoolRequest {
                channel_id: channel.to_owned(),
                location_ids: locations.iter().map(|l| (*l).to_owned()).collect(),
            })
            .await
            .unwrap_or_else(|e| panic!("pool {channel}: {e}"));
    }

    async fn adjust(&self, sku: &str, location: &str, kind: inv::MovementKind, quantity: i64) {
        self.inventory_as("admin")
            .adjust_stock(inv::AdjustStockRequest {
                adjustments: vec![inv::StockAdjustment {
                    idempotency_key: new_key(),
                    sku: sku.to_owned(),
                    location_id: location.to_owned(),
                    kind: kind as i32,
                    quantity,
                    reason: "integration test".to_owned(),
                    reference: String::new(),
                }],
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?} {quantity} {sku}@{location}: {e}"));
    }

    /// Goods received into stock.
    pub async fn receive(&self, sku: &str, location: &str, quantity: i64) {
        self.adjust(sku, location, inv::MovementKind::Receipt, quantity)
            .await;
    }

    /// A sale at the till: the physical truth, whatever is reserved.
    pub async fn pos_sale(&self, sku: &str, location: &str, quantity: i64) {
        self.adjust(sku, location, inv::MovementKind::Sale, quantity)
            .await;
    }

    pub async fn level(&self, sku: &str, location: &str) -> inv::StockLevel {
        let levels = self
            .inventory_as("admin")
            .get_availability(inv::GetAvailabilityRequest {
                skus: vec![sku.to_owned()],
                location_ids: vec![location.to_owned()],
                channel_id: None,
                ..Default::default()
            })
            .await
            .expect("availability")
            .into_inner()
            .levels;
        levels
            .into_iter()
            .find(|l| l.sku == sku && l.location_id == location)
            .unwrap_or_else(|| inv::StockLevel {
                sku: sku.to_owned(),
                location_id: location.to_owned(),
                ..Default::default()
            })
    }

    pub async fn wait_level(
        &self,
        what: &str,
        sku: &str,
        location: &str,
        ok: impl Fn(&inv::StockLevel) -> bool,
    ) -> inv::StockLevel {
        eventually(what, EVENTUAL, || async {
            let level = self.level(sku, location).await;
            ok(&level).then_some(level)
        })
        .await
    }

    /// Redis and PostgreSQL agree (no repair), as `CheckInvariants` sees it.
    pub async fn drift(&self) -> Vec<inv::DriftFinding> {
        self.inventory_as("admin")
            .check_invariants(inv::CheckInvariantsRequest { repair: false })
            .await
            .expect("check invariants")
            .into_inner()
            .findings
    }

    /// A member enrolled on `channel` with a phone number.
    pub async fn enroll(&self, channel: &str, phone: &str) -> String {
        self.member_as("admin")
            .enroll_member(mem::EnrollMemberRequest {
                idempotency_key: new_key(),
                name: "Han Meimei".to_owned(),
                identities: vec![common::Identity {
                    r#type: common::IdentityType::Phone as i32,
                    value: phone.to_owned(),
                }],
                channel_id: channel.to_owned(),
            })
            .await
            .expect("enroll member")
            .into_inner()
            .member
            .expect("member")
            .id
    }

    /// Points from a purchase at a till; returns the balance after it.
    pub async fn earn_at_till(&self, member: &str, store: &str, amount: i64) -> i64 {
        self.member_as("admin")
            .record_purchase(mem::RecordPurchaseRequest {
                member: Some(mem::record_purchase_request::Member::MemberId(
                    member.to_owned(),
                )),
                store_id: store.to_owned(),
                channel_id: "pos".to_owned(),
                receipt_id: new_key(),
                amount: Some(money(amount)),
                occurred_at: None,
            })
            .await
            .expect("record purchase");
        self.balance(member).await
    }

    pub async fn balance(&self, member: &str) -> i64 {
        self.member_as("admin")
            .get_balance(mem::GetBalanceRequest {
                member_id: member.to_owned(),
            })
            .await
            .expect("balance")
            .into_inner()
            .balance
    }

    pub async fn wait_balance(&self, what: &str, member: &str, ok: impl Fn(i64) -> bool) -> i64 {
        eventually(what, EVENTUAL, || async {
            let balance = self.balance(member).await;
            ok(balance).then_some(balance)
        })
        .await
    }

    pub async fn place(&self, draft: ord::OrderDraft) -> Result<ord::Order, tonic::Status> {
        let subject = format!("channel:{}", draft.channel_id);
        self.orders_as(&subject)
            .place_order(ord::PlaceOrderRequest {
                idempotency_key: new_key(),
                order: Some(draft),
            })
            .await
            .map(|r| r.into_inner().order.expect("order"))
    }

    pub async fn order(&self, id: &str) -> ord::Order {
        self.orders_as("admin")
            .get_order(ord::GetOrderRequest {
                order_id: id.to_owned(),
            })
            .await
            .expect("get order")
            .into_inner()
            .order
            .expect("order")
    }

    pub async fn wait_order(
        &self,
        what: &str,
        id: &str,
        ok: impl Fn(&ord::Order) -> bool,
    ) -> ord::Order {
        eventually(what, EVENTUAL, || async {
            let order = self.order(id).await;
            ok(&order).then_some(order)
        })
        .await
    }
}

pub fn status(order: &ord::Order) -> ord::OrderStatus {
    ord::OrderStatus::try_from(order.status).unwrap_or(ord::OrderStatus::Unspecified)
}
