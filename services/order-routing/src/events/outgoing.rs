//! Domain order events → CloudEvents envelopes with the `omni.events.v1` payloads.
//!
//! The domain says *what* happened (`AllocationReleased`, `Cancelled` …); this module adds what
//! only the service knows: prices, addresses, the pickup code, the reservation id, the reason.

use chrono::{DateTime, Utc};
use omni_platform::events::{Envelope, EnvelopeError, names};
use omni_proto::common::v1 as common;
use omni_proto::events::v1 as pb;
use omni_types::Money;

use super::SOURCE;
use crate::domain::order::Fulfilment;
use crate::domain::pickup::PickupCode;
use crate::domain::planner::AllocationKind;
use crate::domain::state::{AllocationId, CancelReason, LineQty, OrderEvent, OrderEventKind};
use crate::service::record::OrderRecord;

/// What an operation knows beyond the domain events.
#[derive(Debug, Default)]
pub struct EventContext<'a> {
    /// Free text from the caller (cancel reason, staff's note).
    pub detail: &'a str,
    /// The code issued by MarkReady, published once in `order.pickup.ready`.
    pub pickup_code: Option<&'a PickupCode>,
    /// AcceptReturn's idempotency key: the return's id.
    pub return_id: Option<&'a str>,
}

pub fn money(m: Money) -> common::Money {
    common::Money {
        minor_units: m.minor_units,
        currency: m.currency.to_string(),
    }
}

pub fn fulfilment_kind(kind: &AllocationKind) -> pb::FulfilmentKind {
    match kind {
        AllocationKind::Ship => pb::FulfilmentKind::Ship,
        AllocationKind::Pickup => pb::FulfilmentKind::Pickup,
        AllocationKind::TransferToStore { .. } => pb::FulfilmentKind::TransferToStore,
    }
}

pub fn address(f: &Fulfilment) -> Option<common::Address> {
    match f {
        Fulfilment::Ship { address, .. } => Some(common::Address {
            recipient: address.recipient.clone(),
            lines: std::iter::once(address.line1.clone())
                .chain(address.line2.clone())
                .collect(),
            city: address.city.clone(),
            region: String::new(),
            postal_code: address.postal_code.clone(),
            country_code: address.country.clone(),
            phone: String::new(),
        }),
        Fulfilment::Pickup { .. } => None,
    }
}

fn unit_price(record: &OrderRecord, line: &LineQty) -> common::Money {
    let minor = record
        .state
        .lines
        .iter()
        .find(|l| l.line_id == line.line_id)
        .map_or(0, |l| l.unit_price_minor);
    money(Money::new(minor, record.state.currency))
}

fn lines(record: &OrderRecord, lines: &[LineQty]) -> Vec<pb::OrderLineQuantity> {
    lines
        .iter()
        .map(|l| pb::OrderLineQuantity {
            line_id: l.line_id.to_string(),
            sku: l.sku.to_string(),
            quantity: i32::try_from(l.qty).unwrap_or(i32::MAX),
            unit_price: Some(unit_price(record, l)),
        })
        .collect()
}

fn all_lines(record: &OrderRecord) -> Vec<LineQty> {
    record
        .state
        .lines
        .iter()
        .map(|l| LineQty {
            line_id: l.line_id,
            sku: l.sku.clone(),
            qty: l.qty,
        })
        .collect()
}

fn allocation_uuid(record: &OrderRecord, id: AllocationId) -> String {
    record
        .meta(id)
        .map(|m| m.uuid.to_string())
        .unwrap_or_default()
}

fn pickup_store(record: &OrderRecord, kind: &AllocationKind) -> String {
    match (kind, &record.fulfilment) {
        (AllocationKind::TransferToStore { to }, _) => to.to_string(),
        (AllocationKind::Pickup, Fulfilment::Pickup { store }) => store.to_string(),
        _ => String::new(),
    }
}

/// Why stock was let go. A release with no cancellation beside it is a re-route: the lines
/// moved to another location.
fn release_reason(reason: Option<CancelReason>) -> pb::ReleaseReason {
    match reason {
        None => pb::ReleaseReason::Rerouted,
        Some(CancelReason::PickupExpired) => pb::ReleaseReason::PickupExpired,
        Some(CancelReason::NotCollected) => pb::ReleaseReason::PartialPickup,
        Some(CancelReason::StoreCouldNotFind) => pb::ReleaseReason::Rejected,
        Some(CancelReason::Customer | CancelReason::Shortage) => pb::ReleaseReason::Cancelled,
    }
}

/// One envelope per event, in order, stamped with `now` and the event's sequence.
pub fn envelopes(
    record: &OrderRecord,
    events: &[OrderEvent],
    ctx: &EventContext<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Envelope>, EnvelopeError> {
    let at = Some(omni_proto::pbjson_types::Timestamp::from(now));
    let order_id = record.id().to_string();
    let member_id = record.member.map(|m| m.to_string()).unwrap_or_default();
    let channel_id = record.channel.to_string();
    // A release is explained by the cancellation emitted with it.
    let cancel_reason = events.iter().find_map(|e| match &e.kind {
        OrderEventKind::Cancelled { reason, .. } => Some(*reason),
        _ => None,
    });
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let seq = event.sequence;
        let envelope =
            match &event.kind {
                OrderEventKind::Placed => Envelope::new(
                    SOURCE,
                    names::ORDER_PLACED,
                    &order_id,
                    pb::OrderPlaced {
                        order_id: order_id.clone(),
                        channel_id: channel_id.clone(),
                        member_id: member_id.clone(),
                        lines: lines(record, &all_lines(record)),
                        allocations: record
                            .state
                            .allocations
                            .iter()
                            .map(|a| pb::AllocationSummary {
                                allocation_id: allocation_uuid(record, a.id),
                                location_id: a.location.to_string(),
                                kind: fulfilment_kind(&a.kind) as i32,
                                lines: lines(
                                    record,
                                    &all_lines(record)
                                        .into_iter()
                                        .filter(|l| {
                                            record.state.lines.iter().any(|s| {
                                                s.line_id == l.line_id && s.allocation == a.id
                                            })
                                        })
                                        .collect::<Vec<_>>(),
                                ),
                                pickup_store_id: pickup_store(record, &a.kind),
                            })
                            .collect(),
                        total: Some(money(Money::new(
                            record.state.total_minor,
                            record.state.currency,
                        ))),
                        points_redeemed: i64::try_from(record.state.points_redeemed)
                            .unwrap_or(i64::MAX),
                        placed_at: at,
                        sequence: seq,
                    },
                )?,
                OrderEventKind::FulfilmentRequested {
                    allocation,
                    location,
                    lines: l,
                } => {
                    let kind = record
                        .state
                        .allocation(*allocation)
                        .map(|a| a.kind.clone())
                        .unwrap_or(AllocationKind::Ship);
                    let destination = match &kind {
                        AllocationKind::Ship => address(&record.fulfilment)
                            .map(pb::fulfilment_requested::Destination::ShipTo),
                        other => Some(pb::fulfilment_requested::Destination::PickupStoreId(
                            pickup_store(record, other),
                        )),
                    };
                    Envelope::new(
                        SOURCE,
                        &names::fulfilment_requested(location),
                        &order_id,
                        pb::FulfilmentRequested {
                            order_id: order_id.clone(),
                            allocation_id: allocation_uuid(record, *allocation),
                            location_id: location.to_string(),
                            kind: fulfilment_kind(&kind) as i32,
                            lines: lines(record, l),
                            destination,
                            requested_at: at,
                            sequence: seq,
                        },
                    )?
                }
                OrderEventKind::PickupReady { store } => {
                    let pickup = record.pickup.as_ref();
                    Envelope::new(
                        SOURCE,
                        names::ORDER_PICKUP_READY,
                        &order_id,
                        pb::OrderPickupReady {
                            order_id: order_id.clone(),
                            store_id: store.to_string(),
                            channel_id: channel_id.clone(),
                            member_id: member_id.clone(),
                            pickup_code: ctx
                                .pickup_code
                                .map(|c| c.reveal().to_owned())
                                .unwrap_or_default(),
                            ready_at: pickup
                                .and_then(|p| p.ready_at)
                                .map(omni_proto::pbjson_types::Timestamp::from),
                            expires_at: pickup
                                .and_then(|p| p.expires_at)
                                .map(omni_proto::pbjson_types::Timestamp::from),
                            sequence: seq,
                        },
                    )?
                }
                OrderEventKind::AllocationFulfilled {
                    allocation,
                    location,
                    lines: l,
                } => {
                    let kind = record
                        .state
                        .allocation(*allocation)
                        .map(|a| fulfilment_kind(&a.kind))
                        .unwrap_or(pb::FulfilmentKind::Unspecified);
                    Envelope::new(
                        SOURCE,
                        names::ORDER_ALLOCATION_FULFILLED,
                        &order_id,
                        pb::AllocationFulfilled {
                            order_id: order_id.clone(),
                            allocation_id: allocation_uuid(record, *allocation),
                            location_id: location.to_string(),
                            reservation_id: record.reservation_of(*allocation).to_string(),
                            kind: kind as i32,
                            lines: lines(record, l),
                            fulfilled_at: at,
                            sequence: seq,
                        },
                    )?
                }
                OrderEventKind::AllocationReleased {
                    allocation,
                    location,
                    lines: l,
                } => Envelope::new(
                    SOURCE,
                    names::ORDER_ALLOCATION_RELEASED,
                    &order_id,
                    pb::AllocationReleased {
                        order_id: order_id.clone(),
                        allocation_id: allocation_uuid(record, *allocation),
                        location_id: location.to_string(),
                        reservation_id: record.reservation_of(*allocation).to_string(),
                        lines: lines(record, l),
                        reason: release_reason(cancel_reason) as i32,
                        detail: ctx.detail.to_owned(),
                        released_at: at,
                        sequence: seq,
                    },
                )?,
                OrderEventKind::Completed => Envelope::new(
                    SOURCE,
                    names::ORDER_COMPLETED,
                    &order_id,
                    pb::OrderCompleted {
                        order_id: order_id.clone(),
                        member_id: member_id.clone(),
                        channel_id: channel_id.clone(),
                        amount: Some(money(Money::new(
                            record.handed_over_minor(),
                            record.state.currency,
                        ))),
                        lines: lines(
                            record,
                            &all_lines(record)
                                .into_iter()
                                .filter(|l| {
                                    record
                                        .state
                                        .lines
                                        .iter()
                                        .any(|s| s.line_id == l.line_id && !s.cancelled)
                                })
                                .collect::<Vec<_>>(),
                        ),
                        completed_at: at,
                        sequence: seq,
                    },
                )?,
                OrderEventKind::Cancelled {
                    reason: _,
                    lines: l,
                    refund,
                } => Envelope::new(
                    SOURCE,
                    names::ORDER_CANCELLED,
                    &order_id,
                    pb::OrderCancelled {
                        order_id: order_id.clone(),
                        member_id: member_id.clone(),
                        channel_id: channel_id.clone(),
                        lines: lines(record, l),
                        refund_amount: Some(money(refund.amount)),
                        points_to_refund: i64::try_from(refund.points).unwrap_or(i64::MAX),
                        whole_order: record.status_name() == "CANCELLED",
                        reason: ctx.detail.to_owned(),
                        cancelled_at: at,
                        sequence: seq,
                    },
                )?,
                OrderEventKind::Returned {
                    location,
                    lines: l,
                    refund,
                } => Envelope::new(
                    SOURCE,
                    names::ORDER_RETURNED,
                    &order_id,
                    pb::OrderReturned {
                        order_id: order_id.clone(),
                        return_id: ctx.return_id.unwrap_or_default().to_owned(),
                        member_id: member_id.clone(),
                        channel_id: channel_id.clone(),
                        location_id: location.to_string(),
                        lines: lines(record, l),
                        refund_amount: Some(money(refund.amount)),
                        completed_amount: Some(money(Money::new(
                            record.handed_over_minor(),
                            record.state.currency,
                        ))),
                        reason: ctx.detail.to_owned(),
                        returned_at: at,
                        sequence: seq,
                    },
                )?,
            };
        out.push(envelope.at(now).with_sequence(seq));
    }
    Ok(out)
}
