//! Wire messages ↔ service values.

use chrono::{DateTime, Utc};
use omni_proto::common::v1 as common;
use omni_proto::orders::v1 as pb;
use omni_proto::pbjson_types::Timestamp;
use omni_types::{ChannelId, LocationId, Money};

use crate::domain::order::{
    AddressInput, Fulfilment, FulfilmentInput, MemberRefInput, OrderDraftInput, OrderLineInput,
};
use crate::domain::planner::{
    AllocationKind, Decision, Explanation, Plan, PlanError, Strategy, VerdictReason,
};
use crate::domain::profile::{ProfileSpec, RoutingProfile};
use crate::domain::state::AllocationStatus;
use crate::events::outgoing::{address, money};
use crate::service::record::{OrderRecord, PickupStatus};
use crate::service::{ProfileView, ServiceError, Violation};
use crate::store::routing_records::RoutingRecord;

pub fn ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Some(Timestamp::from(t))
}

fn identity_kind(t: i32) -> String {
    match common::IdentityType::try_from(t) {
        Ok(common::IdentityType::Phone) => "phone",
        Ok(common::IdentityType::Email) => "email",
        Ok(common::IdentityType::PosCard) => "pos_card",
        Ok(common::IdentityType::Marketplace) => "marketplace",
        Ok(common::IdentityType::App) => "app",
        Ok(common::IdentityType::MiniProgram) => "mini_program",
        _ => "",
    }
    .to_owned()
}

pub fn draft_input(d: pb::OrderDraft) -> OrderDraftInput {
    let member = d.member.and_then(|m| m.member).map(|m| match m {
        pb::member_ref::Member::MemberId(id) => MemberRefInput::Id(id),
        pb::member_ref::Member::Identity(i) => MemberRefInput::Identity {
            kind: identity_kind(i.r#type),
            value: i.value,
        },
    });
    let fulfilment = d.fulfilment.and_then(|f| f.method).map(|m| match m {
        pb::fulfilment::Method::Ship(s) => {
            let a = s.address.unwrap_or_default();
            let p = s.delivery_point.unwrap_or(common::GeoPoint {
                lat: f64::NAN,
                lon: f64::NAN,
            });
            let mut lines = a.lines.into_iter();
            FulfilmentInput::Ship {
                address: AddressInput {
                    recipient: a.recipient,
                    line1: lines.next().unwrap_or_default(),
                    line2: lines.collect::<Vec<_>>().join(", "),
                    city: a.city,
                    postal_code: a.postal_code,
                    country: a.country_code,
                },
                lat: p.lat,
                lon: p.lon,
            }
        }
        pb::fulfilment::Method::Pickup(p) => FulfilmentInput::Pickup { store: p.store_id },
    });
    OrderDraftInput {
        channel: d.channel_id,
        member,
        lines: d
            .lines
            .into_iter()
            .map(|l| {
                let price = l.unit_price.unwrap_or_default();
                OrderLineInput {
                    sku: l.sku,
                    qty: i64::from(l.quantity),
                    unit_price_minor: price.minor_units,
                    currency: price.currency,
                }
            })
            .collect(),
        fulfilment,
        points_to_redeem: d.points_to_redeem,
        checkout_hold: Some(d.checkout_hold_id).filter(|h| !h.is_empty()),
    }
}

/// The domain names draft fields its own way; the client wants the wire path.
fn draft_field(field: &str) -> String {
    let mapped = field
        .replace(".qty", ".quantity")
        .replace("fulfilment.pickup.store", "fulfilment.pickup.store_id")
        .replace("fulfilment.ship.point", "fulfilment.ship.delivery_point")
        .replace("address.line1", "address.lines[0]")
        .replace("address.line2", "address.lines[1]")
        .replace("address.country", "address.country_code")
        .replace("member.id", "member.member_id")
        .replace("identity.kind", "identity.type")
        .replace("checkout_hold", "checkout_hold_id");
    let mapped = if mapped == "channel" {
        "channel_id".to_owned()
    } else {
        mapped
    };
    format!("order.{mapped}")
}

/// Renames draft field violations to their wire paths.
pub fn draft_error(e: ServiceError) -> ServiceError {
    match e {
        ServiceError::Invalid(v) => ServiceError::Invalid(
            v.into_iter()
                .map(|v| Violation {
                    field: if v.field.starts_with("order.") || v.field == "idempotency_key" {
                        v.field
                    } else {
                        draft_field(&v.field)
                    },
                    description: v.description,
                })
                .collect(),
        ),
        other => other,
    }
}

fn allocation_kind(k: &AllocationKind) -> pb::AllocationKind {
    match k {
        AllocationKind::Ship => pb::AllocationKind::Ship,
        AllocationKind::Pickup => pb::AllocationKind::Pickup,
        AllocationKind::TransferToStore { .. } => pb::AllocationKind::TransferToStore,
    }
}

fn allocation_status(s: AllocationStatus) -> pb::AllocationStatus {
    match s {
        AllocationStatus::Allocated => pb::AllocationStatus::Allocated,
        AllocationStatus::ReceivedAtStore => pb::AllocationStatus::AtStore,
        AllocationStatus::ReadyForPickup => pb::AllocationStatus::ReadyForPickup,
        AllocationStatus::PickedUp => pb::AllocationStatus::PickedUp,
        AllocationStatus::Shipped => pb::AllocationStatus::Shipped,
        AllocationStatus::Delivered => pb::AllocationStatus::Delivered,
        AllocationStatus::Cancelled => pb::AllocationStatus::Cancelled,
        AllocationStatus::Returned => pb::AllocationStatus::Returned,
    }
}

pub fn order_status(name: &str) -> pb::OrderStatus {
    pb::OrderStatus::from_str_name(&format!("ORDER_STATUS_{name}"))
        .unwrap_or(pb::OrderStatus::Unspecified)
}

pub fn status_name(s: i32) -> Option<String> {
    pb::OrderStatus::try_from(s)
        .ok()
        .filter(|s| *s != pb::OrderStatus::Unspecified)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ORDER_STATUS_")
                .to_owned()
        })
}

pub fn pickup_status(s: PickupStatus) -> pb::PickupStatus {
    match s {
        PickupStatus::ToPrepare => pb::PickupStatus::ToPrepare,
        PickupStatus::AwaitingTransfer => pb::PickupStatus::AwaitingTransfer,
        PickupStatus::Ready => pb::PickupStatus::Ready,
        PickupStatus::PickedUp => pb::PickupStatus::PickedUp,
        PickupStatus::Cancelled => pb::PickupStatus::Cancelled,
    }
}

pub fn pickup_status_name(s: i32) -> Option<String> {
    pb::PickupStatus::try_from(s)
        .ok()
        .filter(|s| *s != pb::PickupStatus::Unspecified)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("PICKUP_STATUS_")
                .to_owned()
        })
}

fn fulfilment(record: &OrderRecord) -> pb::Fulfilment {
    let method = match &record.fulfilment {
        Fulfilment::Ship { point, .. } => pb::fulfilment::Method::Ship(pb::ShipFulfilment {
            address: address(&record.fulfilment),
            delivery_point: Some(common::GeoPoint {
                lat: point.lat(),
                lon: point.lon(),
            }),
        }),
        Fulfilment::Pickup { store } => pb::fulfilment::Method::Pickup(pb::PickupFulfilment {
            store_id: store.to_string(),
        }),
    };
    pb::Fulfilment {
        method: Some(method),
    }
}

pub fn order(record: &OrderRecord) -> pb::Order {
    let currency = record.state.currency;
    let m = |minor: i64| Some(money(Money::new(minor, currency)));
    let completed = |a: crate::domain::state::AllocationId| {
        record
            .state
            .allocation(a)
            .is_ok_and(|a| a.status.is_completed())
    };
    let lines: Vec<pb::OrderLine> = record
        .state
        .lines
        .iter()
        .map(|l| {
            let cancelled = if l.cancelled { l.qty } else { 0 };
            let fulfilled = if !l.cancelled && completed(l.allocation) {
                l.qty
            } else {
                0
            };
            let status = if l.cancelled {
                pb::OrderLineStatus::Cancelled
            } else if fulfilled > 0 && l.returned == fulfilled {
                pb::OrderLineStatus::Returned
            } else if fulfilled > 0 {
                pb::OrderLineStatus::Fulfilled
            } else {
                pb::OrderLineStatus::Open
            };
            pb::OrderLine {
                line_id: l.line_id.to_string(),
                sku: l.sku.to_string(),
                quantity: i32::try_from(l.qty).unwrap_or(i32::MAX),
                unit_price: m(l.unit_price_minor),
                status: status as i32,
                cancelled_quantity: i32::try_from(cancelled).unwrap_or(i32::MAX),
                fulfilled_quantity: i32::try_from(fulfilled).unwrap_or(i32::MAX),
                returned_quantity: i32::try_from(l.returned).unwrap_or(i32::MAX),
            }
        })
        .collect();
    let cancelled_total: i64 = record
        .state
        .lines
        .iter()
        .filter(|l| l.cancelled)
        .map(|l| l.unit_price_minor.saturating_mul(i64::from(l.qty)))
        .sum();
    let returned_total: i64 = record
        .state
        .lines
        .iter()
        .map(|l| l.unit_price_minor.saturating_mul(i64::from(l.returned)))
        .sum();
    let allocations = record
        .state
        .allocations
        .iter()
        .map(|a| {
            let meta = record.meta(a.id);
            pb::Allocation {
                allocation_id: meta.map(|m| m.uuid.to_string()).unwrap_or_default(),
                location_id: a.location.to_string(),
                kind: allocation_kind(&a.kind) as i32,
                status: allocation_status(a.status) as i32,
                lines: record
                    .state
                    .lines
                    .iter()
                    .filter(|l| l.allocation == a.id)
                    .map(|l| pb::AllocationLine {
                        line_id: l.line_id.to_string(),
                        sku: l.sku.to_string(),
                        quantity: i32::try_from(l.qty).unwrap_or(i32::MAX),
                        cancelled_quantity: if l.cancelled {
                            i32::try_from(l.qty).unwrap_or(i32::MAX)
                        } else {
                            0
                        },
                        returned_quantity: i32::try_from(l.returned).unwrap_or(i32::MAX),
                    })
                    .collect(),
                pickup_store_id: match (&a.kind, &record.fulfilment) {
                    (AllocationKind::TransferToStore { to }, _) => to.to_string(),
                    (AllocationKind::Pickup, _) => a.location.to_string(),
                    _ => String::new(),
                },
                distance_km: meta.map_or(0.0, |m| m.distance_km),
                tracking: meta
                    .and_then(|m| m.tracking.as_ref())
                    .map(|t| pb::Tracking {
                        carrier: t.carrier.clone(),
                        tracking_number: t.tracking_number.clone(),
                        tracking_url: t.tracking_url.clone(),
                        dispatched_at: t.dispatched_at.and_then(ts),
                        delivered_at: t.delivered_at.and_then(ts),
                    }),
                created_at: meta.and_then(|m| ts(m.created_at)),
                updated_at: meta.and_then(|m| ts(m.updated_at)),
            }
        })
        .collect();
    pb::Order {
        id: record.id().to_string(),
        channel_id: record.channel.to_string(),
        member_id: record.member.map(|m| m.to_string()).unwrap_or_default(),
        status: order_status(record.status_name()) as i32,
        lines,
        allocations,
        fulfilment: Some(fulfilment(record)),
        totals: Some(pb::OrderTotals {
            goods_total: m(record.state.total_minor),
            cancelled_total: m(cancelled_total),
            returned_total: m(returned_total),
        }),
        points_redeemed: i64::try_from(record.state.points_redeemed).unwrap_or(i64::MAX),
        routing_profile_version: u64::from(record.profile_version),
        sequence: record.state.sequence,
        pickup: record.pickup.as_ref().map(|p| pb::PickupState {
            store_id: p.store.to_string(),
            ready_at: p.ready_at.and_then(ts),
            expires_at: p.expires_at.and_then(ts),
            failed_code_attempts: p.attempts.wrong_tries,
            locked_until: p.attempts.locked_until.and_then(ts),
        }),
        reservation_id: record.reservation_id().to_string(),
        created_at: ts(record.created_at),
        updated_at: ts(record.updated_at),
    }
}

fn reason(r: VerdictReason) -> (pb::CandidateReason, String, i64) {
    use pb::CandidateReason as R;
    match r {
        VerdictReason::Chosen | VerdictReason::ServedAtPickupStore => {
            (R::Selected, String::new(), 0)
        }
        VerdictReason::OutOfStock { available } => (
            R::OutOfStock,
            format!("available {available}"),
            i64::from(available),
        ),
        VerdictReason::NoCapacity => (R::NoCapacity, String::new(), 0),
        VerdictReason::NotInPool => (R::NotInChannelPool, String::new(), 0),
        VerdictReason::Inactive => (R::Inactive, String::new(), 0),
        VerdictReason::Excluded => (R::Excluded, String::new(), 0),
        VerdictReason::CannotShip | VerdictReason::NotChosenStore => {
            (R::NotCapable, format!("{r:?}"), 0)
        }
        VerdictReason::ShipFromStoreNotAllowed => {
            (R::NotCapable, "ship-from-store not allowed".into(), 0)
        }
        VerdictReason::MoreShipments | VerdictReason::CoversLess => {
            (R::MoreShipments, format!("{r:?}"), 0)
        }
        VerdictReason::Farther => (R::Farther, String::new(), 0),
        VerdictReason::LowerPreference => (R::LowerPreference, String::new(), 0),
        VerdictReason::IdOrder => (R::TieBreak, String::new(), 0),
        VerdictReason::SplitLimit => (R::SplitLimit, String::new(), 0),
    }
}

pub fn explanation(e: &Explanation, with_ids: bool) -> pb::RoutingExplanation {
    pb::RoutingExplanation {
        summary: e.summary.clone(),
        strategy: match e.strategy {
            Strategy::SingleLocation => pb::PlannerStrategy::SingleLocation,
            Strategy::GreedyCover => pb::PlannerStrategy::GreedyCover,
            Strategy::Pickup => pb::PlannerStrategy::PickupStore,
            Strategy::PickupWithTransfer => pb::PlannerStrategy::PickupWithTransfer,
        } as i32,
        lines: e
            .lines
            .iter()
            .map(|l| {
                let mut candidates: Vec<pb::CandidateTrace> = e
                    .verdicts_for(l.line_id)
                    .map(|v| {
                        let (r, detail, available) = reason(v.reason);
                        pb::CandidateTrace {
                            location_id: v.location.to_string(),
                            decision: match v.decision {
                                Decision::Taken => pb::CandidateDecision::Taken,
                                Decision::Passed => pb::CandidateDecision::Passed,
                            } as i32,
                            reason: r as i32,
                            detail,
                            distance_km: v.distance_km,
                            available,
                            quantity_taken: if v.decision == Decision::Taken {
                                i32::try_from(l.qty.get()).unwrap_or(i32::MAX)
                            } else {
                                0
                            },
                        }
                    })
                    .collect();
                candidates.sort_by(|a, b| {
                    b.quantity_taken
                        .cmp(&a.quantity_taken)
                        .then(a.distance_km.total_cmp(&b.distance_km))
                });
                pb::LineExplanation {
                    line_id: if with_ids {
                        l.line_id.to_string()
                    } else {
                        String::new()
                    },
                    line_index: i32::try_from(l.line_id.0.saturating_sub(1)).unwrap_or(0),
                    sku: l.sku.to_string(),
                    quantity: i32::try_from(l.qty.get()).unwrap_or(i32::MAX),
                    candidates,
                }
            })
            .collect(),
        suggested_stores: Vec::new(),
    }
}

pub fn plan(outcome: &Result<Plan, PlanError>, profile_version: u32) -> pb::RoutingPlan {
    match outcome {
        Ok(p) => pb::RoutingPlan {
            outcome: pb::PlanOutcome::Routed as i32,
            allocations: p
                .allocations
                .iter()
                .map(|a| pb::PlannedAllocation {
                    location_id: a.location.to_string(),
                    kind: allocation_kind(&a.kind) as i32,
                    lines: a
                        .lines
                        .iter()
                        .map(|l| pb::LineQuantity {
                            line_id: l.line_id.to_string(),
                            quantity: i32::try_from(l.qty.get()).unwrap_or(i32::MAX),
                        })
                        .collect(),
                    pickup_store_id: match &a.kind {
                        AllocationKind::TransferToStore { to } => to.to_string(),
                        AllocationKind::Pickup => a.location.to_string(),
                        AllocationKind::Ship => String::new(),
                    },
                    distance_km: a.distance_km,
                })
                .collect(),
            explanation: Some(explanation(&p.explanation, false)),
            routing_profile_version: u64::from(profile_version),
        },
        Err(e) => pb::RoutingPlan {
            outcome: pb::PlanOutcome::Unroutable as i32,
            allocations: Vec::new(),
            explanation: Some(pb::RoutingExplanation {
                summary: e.to_string(),
                strategy: 0,
                lines: Vec::new(),
                suggested_stores: match e {
                    PlanError::PickupStoreCannotServe { suggestions, .. } => suggestions
                        .iter()
                        .map(|s| pb::SuggestedStore {
                            store_id: s.store.to_string(),
                            distance_km: s.distance_km,
                        })
                        .collect(),
                    _ => Vec::new(),
                },
            }),
            routing_profile_version: u64::from(profile_version),
        },
    }
}

pub fn routing_record(r: &RoutingRecord) -> pb::RoutingRecord {
    pb::RoutingRecord {
        trigger: pb::RoutingTrigger::from_str_name(&format!("ROUTING_TRIGGER_{}", r.trigger))
            .unwrap_or(pb::RoutingTrigger::Unspecified) as i32,
        planned_at: ts(r.planned_at),
        routing_profile_version: u64::from(r.profile_version),
        explanation: Some(explanation(&r.explanation, true)),
    }
}

pub fn profile(v: &ProfileView) -> pb::RoutingProfile {
    let p: &RoutingProfile = &v.profile;
    pb::RoutingProfile {
        channel_id: p.channel().to_string(),
        version: u64::from(v.version),
        max_splits: u32::try_from(p.max_splits()).unwrap_or(0),
        prefer_warehouses: p.prefer_warehouses(),
        allow_ship_from_store: p.allow_ship_from_store(),
        allow_transfer_to_store: p.allow_transfer_to_store(),
        // The planner's objective is lexicographic (see domain::profile): no weights to show.
        weights: Some(pb::RoutingWeights {
            distance: 1.0,
            store_shipment_penalty_km: 0.0,
        }),
        excluded_location_ids: p.excluded().iter().map(ToString::to_string).collect(),
        updated_at: v.updated_at.and_then(ts),
    }
}

/// A profile from the wire; `prefix` names the request field (`profile`, `candidate`).
pub fn profile_spec(p: pb::RoutingProfile, prefix: &str) -> Result<ProfileSpec, ServiceError> {
    let channel = ChannelId::parse(p.channel_id)
        .map_err(|e| ServiceError::invalid(format!("{prefix}.channel_id"), e.to_string()))?;
    let max_splits = u8::try_from(p.max_splits)
        .map_err(|_| ServiceError::invalid(format!("{prefix}.max_splits"), "must be 1-10"))?;
    let mut excluded = std::collections::BTreeSet::new();
    for (i, id) in p.excluded_location_ids.into_iter().enumerate() {
        excluded.insert(LocationId::parse(id).map_err(|e| {
            ServiceError::invalid(
                format!("{prefix}.excluded_location_ids[{i}]"),
                e.to_string(),
            )
        })?);
    }
    Ok(ProfileSpec {
        channel,
        version: 1,
        max_splits,
        prefer_warehouses: p.prefer_warehouses,
        allow_ship_from_store: p.allow_ship_from_store,
        allow_transfer_to_store: p.allow_transfer_to_store,
        excluded,
    })
}

pub fn line_quantities(lines: Vec<pb::LineQuantity>) -> Vec<(String, i64)> {
    lines
        .into_iter()
        .map(|l| (l.line_id, i64::from(l.quantity)))
        .collect()
}

pub fn parse_order_id(id: &str, field: &str) -> Result<uuid::Uuid, ServiceError> {
    uuid::Uuid::parse_str(id).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

pub fn parse_store(id: String) -> Result<LocationId, ServiceError> {
    LocationId::parse(id).map_err(|e| ServiceError::invalid("store_id", e.to_string()))
}
