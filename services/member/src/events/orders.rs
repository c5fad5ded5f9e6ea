//! `member.orders`: earn on `order.completed`, refund on `order.cancelled`, reverse on
//! `order.returned`. Each effect and its inbox claim commit in one transaction (see `ops`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omni_platform::events::{Envelope, EventHandler, HandlerError, Subscription, names};
use omni_proto::common::v1 as common;
use omni_proto::events::v1 as ev;
use omni_types::{ChannelId, Currency, Money, OrderId};

use crate::domain::MemberId;
use crate::ops::{MemberOps, ORDERS_CONSUMER, OpError};

pub fn subscription() -> Subscription {
    Subscription::new(
        ORDERS_CONSUMER,
        [
            names::ORDER_COMPLETED,
            names::ORDER_CANCELLED,
            names::ORDER_RETURNED,
            names::ORDER_PLACED,
        ],
    )
}

pub struct OrdersConsumer {
    ops: MemberOps,
}

impl OrdersConsumer {
    pub fn new(ops: MemberOps) -> Self {
        Self { ops }
    }
}

fn reject(what: impl std::fmt::Display) -> HandlerError {
    HandlerError::Reject(what.to_string())
}

/// Transient failures and events that came too early are retried; anything a redelivery
/// cannot fix is parked for an operator.
fn classify(error: OpError) -> HandlerError {
    match error {
        OpError::NotYetCompleted { .. } | OpError::Busy(_) | OpError::Unavailable(_) => {
            HandlerError::Retry(error.to_string())
        }
        other => HandlerError::Reject(other.to_string()),
    }
}

fn order_id(raw: &str) -> Result<OrderId, HandlerError> {
    OrderId::parse(raw).map_err(|e| reject(format!("orderId {raw:?}: {e}")))
}

fn member_id(raw: &str) -> Result<Option<MemberId>, HandlerError> {
    if raw.is_empty() {
        return Ok(None);
    }
    MemberId::parse(raw)
        .map(Some)
        .map_err(|e| reject(e.to_string()))
}

fn channel(raw: &str) -> Result<ChannelId, HandlerError> {
    ChannelId::parse(raw).map_err(|e| reject(format!("channelId {raw:?}: {e}")))
}

fn money(field: &str, value: Option<&common::Money>) -> Result<Money, HandlerError> {
    let value = value.ok_or_else(|| reject(format!("{field} is missing")))?;
    let currency =
        Currency::parse(&value.currency).map_err(|e| reject(format!("{field}.currency: {e}")))?;
    if value.minor_units < 0 {
        return Err(reject(format!("{field} is negative")));
    }
    Ok(Money::new(value.minor_units, currency))
}

fn time(
    value: Option<&omni_proto::pbjson_types::Timestamp>,
    fallback: DateTime<Utc>,
) -> Result<DateTime<Utc>, HandlerError> {
    match value {
        None => Ok(fallback),
        Some(t) => DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            .ok_or_else(|| reject("timestamp out of range")),
    }
}

#[async_trait]
impl EventHandler for OrdersConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_name() {
            names::ORDER_COMPLETED => {
                let data: ev::OrderCompleted = event.data_as().map_err(reject)?;
                self.ops
                    .on_order_completed(
                        event.id(),
                        order_id(&data.order_id)?,
                        member_id(&data.member_id)?,
                        channel(&data.channel_id)?,
                        money("amount", data.amount.as_ref())?,
                        time(data.completed_at.as_ref(), event.time())?,
                    )
                    .await
                    .map_err(classify)
            }
            names::ORDER_CANCELLED => {
                let data: ev::OrderCancelled = event.data_as().map_err(reject)?;
                if data.points_to_refund < 0 {
                    return Err(reject("pointsToRefund is negative"));
                }
                let channel = (!data.channel_id.is_empty()).then(|| data.channel_id.clone());
                self.ops
                    .on_order_cancelled(
                        event.id(),
                        order_id(&data.order_id)?,
                        data.points_to_refund,
                        data.whole_order,
                        channel,
                    )
                    .await
                    .map_err(classify)
            }
            names::ORDER_RETURNED => {
                let data: ev::OrderReturned = event.data_as().map_err(reject)?;
                if data.return_id.is_empty() || data.return_id.len() > 128 {
                    return Err(reject("returnId must be 1..128 characters"));
                }
                self.ops
                    .on_order_returned(
                        event.id(),
                        order_id(&data.order_id)?,
                        &data.return_id,
                        money("refundAmount", data.refund_amount.as_ref())?,
                        time(data.returned_at.as_ref(), event.time())?,
                    )
                    .await
                    .map_err(classify)
            }
            // Bound so the queue sees the order's whole life; nothing to do yet: points are
            // earned at completion and redemptions arrive by gRPC before the order exists.
            names::ORDER_PLACED => Ok(()),
            other => Err(reject(format!("member.orders does not handle {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_and_transient_failures_retry_the_rest_park() {
        let order = OrderId::new();
        assert!(matches!(
            classify(OpError::NotYetCompleted { order }),
            HandlerError::Retry(_)
        ));
        assert!(matches!(
            classify(OpError::Unavailable("db down".into())),
            HandlerError::Retry(_)
        ));
        assert!(matches!(
            classify(OpError::not_found("member", "x")),
            HandlerError::Reject(_)
        ));
        assert!(matches!(
            classify(OpError::Conflict("other points".into())),
            HandlerError::Reject(_)
        ));
    }

    #[test]
    fn payload_fields_are_checked() {
        assert!(order_id("not-a-uuid").is_err());
        assert_eq!(member_id("").unwrap(), None);
        assert!(member_id("nope").is_err());
        assert!(money("amount", None).is_err());
        assert!(
            money(
                "amount",
                Some(&common::Money {
                    minor_units: -1,
                    currency: "CNY".into()
                })
            )
            .is_err()
        );
    }
}
