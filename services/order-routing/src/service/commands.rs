//! Changes to an existing order: customer cancels, store operations, warehouse and inventory
//! event effects, scheduled expiry. Each runs in one transaction: lock the order, apply the
//! domain transition, save, enqueue its events, record the idempotency key or inbox claim.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use omni_platform::events::{inbox, outbox};
use omni_types::{LocationId, ReservationId};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::error::ServiceError;
use super::record::{OrderRecord, PickupStatus, Tracking};
use super::reroute::{Rerouting, affected_lines};
use super::{Orders, chrono_duration, sha256_hex};
use crate::domain::order::{Fulfilment, LineId};
use crate::domain::pickup::{self, PickupCode, PickupCodeError};
use crate::domain::planner::AllocationKind;
use crate::domain::state::{
    AllocationId, AllocationStatus, CancelReason, OrderEvent, OrderEventKind, OrderStateError,
};
use crate::events::outgoing::{self, EventContext};
use crate::store::{orders, request_keys, reservations};

/// Value and points given back by one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub minor_units: i64,
    pub points: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfirmOutcome {
    PickedUp(Refund),
    WrongCode { attempts_left: u32 },
    Locked { until: DateTime<Utc> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectOutcome {
    /// Held and requested at another location; nothing is refunded.
    Rerouted,
    Cancelled(Refund),
}

/// What an event did to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectOutcome {
    Applied,
    /// Redelivered, or already reflected in the order.
    AlreadyApplied,
}

/// An effect's failure, as the consumer tells the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// Transient, or the event came before the state it follows: deliver again later.
    #[error("retry: {0}")]
    Retry(String),
    /// Refers to nothing we know or contradicts the order: park it for an operator.
    #[error("reject: {0}")]
    Reject(String),
}

impl From<ServiceError> for EffectError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable(m) | ServiceError::RetryLater(m) => Self::Retry(m),
            ServiceError::Internal(m) => Self::Retry(m),
            other => Self::Reject(other.to_string()),
        }
    }
}

/// The events and the extra event context one change produced.
#[derive(Default)]
struct Emitted {
    events: Vec<OrderEvent>,
    detail: String,
    pickup_code: Option<PickupCode>,
    return_id: Option<String>,
    changed: Vec<AllocationId>,
    /// Re-route reservations this change gives to the order (recorded for inventory's events).
    reservations: Vec<ReservationId>,
}

/// How a change is made idempotent.
enum Dedupe<'a> {
    None,
    /// An RPC's idempotency key; `hash` tells a replay from another request.
    Key {
        scope: &'static str,
        key: &'a str,
        hash: String,
    },
    /// A consumed event.
    Inbox {
        consumer: &'a str,
        event_id: &'a str,
    },
}

fn refund_of(events: &[OrderEvent]) -> Refund {
    events
        .iter()
        .find_map(|e| match &e.kind {
            OrderEventKind::Cancelled { refund, .. } | OrderEventKind::Returned { refund, .. } => {
                Some(Refund {
                    minor_units: refund.amount.minor_units,
                    points: refund.points,
                })
            }
            _ => None,
        })
        .unwrap_or(Refund {
            minor_units: 0,
            points: 0,
        })
}

fn check_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must be 1-128 printable characters",
        ));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), ServiceError> {
    let n = reason.trim().chars().count();
    if n == 0 || n > 500 {
        return Err(ServiceError::invalid("reason", "must be 1-500 characters"));
    }
    Ok(())
}

fn request_hash(parts: &impl Serialize) -> Result<String, ServiceError> {
    serde_json::to_vec(parts)
        .map(|b| sha256_hex(&b))
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Whole lines from `(line_id, quantity)` pairs: the domain cancels lines whole, so a quantity
/// must be the line's full quantity. `field` names the request list.
fn whole_lines(
    record: &OrderRecord,
    lines: &[(String, i64)],
    field: &str,
) -> Result<Option<BTreeSet<LineId>>, ServiceError> {
    if lines.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeSet::new();
    for (i, (id, qty)) in lines.iter().enumerate() {
        let line = id
            .parse::<u32>()
            .ok()
            .and_then(|n| record.state.lines.iter().find(|l| l.line_id == LineId(n)))
            .ok_or_else(|| {
                ServiceError::invalid(format!("{field}[{i}].line_id"), format!("no line {id:?}"))
            })?;
        if *qty != i64::from(line.qty) {
            return Err(ServiceError::invalid(
                format!("{field}[{i}].quantity"),
                format!("lines are handled whole: must be {}", line.qty),
            ));
        }
        out.insert(line.line_id);
    }
    Ok(Some(out))
}

fn order_not_found(id: uuid::Uuid) -> ServiceError {
    ServiceError::NotFound {
        resource: "order",
        id: id.to_string(),
    }
}

impl Orders {
    /// Locks the order, applies `f`, saves, enqueues events and records the dedupe marker, all
    /// in one transaction. A replayed key or event returns the first answer / `None`.
    async fn change<T, F>(
        &self,
        id: uuid::Uuid,
        dedupe: Dedupe<'_>,
        f: F,
    ) -> Result<Option<(OrderRecord, T)>, ServiceError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&mut OrderRecord, DateTime<Utc>) -> Result<(Emitted, T, bool), ServiceError>,
    {
        let txn = self.db.begin().await?;
        if let Some(stored) = self.replayed::<T>(&txn, &dedupe).await? {
            txn.commit().await?;
            return Ok(match stored {
                Replay::Answer(t) => orders::load(&self.db, id).await?.map(|r| (r, t)),
                Replay::Handled => None,
            });
        }
        let mut record = orders::load_for_update(&txn, id)
            .await?
            .ok_or_else(|| order_not_found(id))?;
        let now = self.clock.now();
        let (emitted, answer, keep_key) = f(&mut record, now)?;
        record.touch(now, &emitted.changed);
        let ctx = EventContext {
            detail: &emitted.detail,
            pickup_code: emitted.pickup_code.as_ref(),
            return_id: emitted.return_id.as_deref(),
        };
        let envelopes = outgoing::envelopes(&record, &emitted.events, &ctx, now)?;
        orders::save(&txn, &record).await?;
        outbox::enqueue_all(&txn, &envelopes).await?;
        for reservation in &emitted.reservations {
            reservations::record(&txn, &reservation.to_string(), id, now).await?;
        }
        if let Dedupe::Key { scope, key, hash } = &dedupe
            && keep_key
        {
            let response = serde_json::to_string(&answer)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            request_keys::record(&txn, scope, key, hash, &response, now).await?;
        }
        txn.commit().await?;
        if !envelopes.is_empty() {
            self.outbox.notify_one();
        }
        Ok(Some((record, answer)))
    }

    async fn replayed<T: DeserializeOwned>(
        &self,
        txn: &DatabaseTransaction,
        dedupe: &Dedupe<'_>,
    ) -> Result<Option<Replay<T>>, ServiceError> {
        match dedupe {
            Dedupe::None => Ok(None),
            Dedupe::Inbox { consumer, event_id } => {
                if inbox::claim(txn, consumer, event_id).await? {
                    Ok(None)
                } else {
                    Ok(Some(Replay::Handled))
                }
            }
            Dedupe::Key { scope, key, hash } => match request_keys::find(txn, scope, key).await? {
                None => Ok(None),
                Some(stored) if &stored.request_hash == hash => {
                    let answer = serde_json::from_str(&stored.response)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    Ok(Some(Replay::Answer(answer)))
                }
                Some(_) => Err(ServiceError::KeyReused(format!(
                    "idempotency key {key:?} was used for another request"
                ))),
            },
        }
    }

    /// Like [`Orders::change`] for RPCs: a concurrent duplicate that loses the race to store the
    /// key is answered from the winner's row.
    async fn keyed_change<T, F>(
        &self,
        id: uuid::Uuid,
        scope: &'static str,
        key: &str,
        hash: String,
        f: F,
    ) -> Result<(OrderRecord, T), ServiceError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(&mut OrderRecord, DateTime<Utc>) -> Result<(Emitted, T, bool), ServiceError>,
    {
        let dedupe = Dedupe::Key {
            scope,
            key,
            hash: hash.clone(),
        };
        match self.change(id, dedupe, f).await {
            Ok(Some(done)) => Ok(done),
            Ok(None) => Err(order_not_found(id)),
            Err(ServiceError::RetryLater(_)) => {
                let replay = Dedupe::Key { scope, key, hash };
                let txn = self.db.begin().await?;
                let stored = self.replayed::<T>(&txn, &replay).await?;
                txn.commit().await?;
                match stored {
                    Some(Replay::Answer(t)) => orders::load(&self.db, id)
                        .await?
                        .map(|r| (r, t))
                        .ok_or_else(|| order_not_found(id)),
                    _ => Err(ServiceError::RetryLater(
                        "a concurrent change to this order won; retry".into(),
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// CancelOrder: the whole order (`lines` empty) or whole lines.
    pub async fn cancel(
        &self,
        id: uuid::Uuid,
        lines: Vec<(String, i64)>,
        reason: String,
        key: &str,
    ) -> Result<(OrderRecord, Refund), ServiceError> {
        check_key(key)?;
        check_reason(&reason)?;
        let hash = request_hash(&(&lines, &reason))?;
        self.keyed_change(id, "cancel", key, hash, move |record, _now| {
            let chosen = whole_lines(record, &lines, "lines")?;
            let events = record
                .state
                .cancel(chosen.as_ref(), CancelReason::Customer)
                .map_err(|e| match e {
                    OrderStateError::UnknownLine(l) => {
                        ServiceError::invalid("lines", format!("no line {l}"))
                    }
                    other => ServiceError::refused("ORDER_NOT_CANCELLABLE", other.to_string()),
                })?;
            let refund = refund_of(&events);
            let changed = released_allocations(&events);
            Ok((
                Emitted {
                    events,
                    detail: reason,
                    changed,
                    ..Emitted::default()
                },
                refund,
                true,
            ))
        })
        .await
    }

    /// MarkReady: issues the pickup code (returned once) and starts the pickup hold.
    pub async fn mark_ready(
        &self,
        store: &LocationId,
        id: uuid::Uuid,
    ) -> Result<(OrderRecord, String, DateTime<Utc>), ServiceError> {
        let hold = self
            .inventory
            .locations()
            .await?
            .iter()
            .find(|l| &l.id == store)
            .and_then(|l| l.pickup_hold)
            .unwrap_or(self.settings.default_pickup_hold);
        let store = store.clone();
        let (record, code) = self
            .change(id, Dedupe::None, move |record, now| {
                ensure_pickup_at(record, &store, id)?;
                let events = record.state.mark_ready(&store).map_err(|e| match e {
                    OrderStateError::TransferPending(_) => {
                        ServiceError::refused("TRANSFER_PENDING", e.to_string())
                    }
                    OrderStateError::NotPickedUpHere(_) => order_not_found(id),
                    other => ServiceError::refused("ORDER_NOT_READYABLE", other.to_string()),
                })?;
                let (code, secret) = pickup::issue(&mut rand::rng());
                let expires_at = now + chrono_duration(hold);
                if let Some(p) = record.pickup.as_mut() {
                    p.ready_at = Some(now);
                    p.expires_at = Some(expires_at);
                    p.secret = Some(secret);
                    p.attempts = pickup::PickupAttempts::default();
                }
                let plain = code.reveal().to_owned();
                let changed = record.state.allocations.iter().map(|a| a.id).collect();
                Ok((
                    Emitted {
                        events,
                        pickup_code: Some(code),
                        changed,
                        ..Emitted::default()
                    },
                    plain,
                    false,
                ))
            })
            .await?
            .ok_or_else(|| order_not_found(id))?;
        let expires_at = record
            .pickup
            .as_ref()
            .and_then(|p| p.expires_at)
            .unwrap_or(record.updated_at);
        Ok((record, code, expires_at))
    }

    /// ConfirmPickup: checks the code (wrong tries are counted and saved even though the call
    /// fails), then hands over the taken lines and cancels the rest.
    pub async fn confirm_pickup(
        &self,
        store: &LocationId,
        id: uuid::Uuid,
        code: String,
        lines_taken: Vec<(String, i64)>,
        key: &str,
    ) -> Result<(OrderRecord, ConfirmOutcome), ServiceError> {
        check_key(key)?;
        let hash = request_hash(&(store, &lines_taken))?;
        let store = store.clone();
        self.keyed_change(id, "confirm-pickup", key, hash, move |record, now| {
            ensure_pickup_at(record, &store, id)?;
            if record.pickup_status() != Some(PickupStatus::Ready) {
                return Err(ServiceError::refused(
                    "ORDER_NOT_READY",
                    "the order is not ready for pickup",
                ));
            }
            let taken = whole_lines(record, &lines_taken, "lines_taken")?;
            let Some(p) = record.pickup.as_mut() else {
                return Err(order_not_found(id));
            };
            let Some(secret) = p.secret.clone() else {
                return Err(ServiceError::Internal("ready pickup without a code".into()));
            };
            match p.attempts.verify(&secret, &code, now) {
                Ok(()) => {}
                Err(PickupCodeError::WrongCode { tries_left }) => {
                    return Ok((
                        Emitted::default(),
                        ConfirmOutcome::WrongCode {
                            attempts_left: tries_left,
                        },
                        false,
                    ));
                }
                Err(PickupCodeError::Locked { until }) => {
                    return Ok((Emitted::default(), ConfirmOutcome::Locked { until }, false));
                }
                Err(PickupCodeError::CorruptSecret) => {
                    return Err(ServiceError::Internal(
                        "stored pickup secret is corrupt".into(),
                    ));
                }
            }
            let events = record
                .state
                .confirm_pickup(&store, taken.as_ref())
                .map_err(|e| match e {
                    OrderStateError::UnknownLine(l) => ServiceError::invalid(
                        "lines_taken",
                        format!("line {l} is not picked up here"),
                    ),
                    OrderStateError::NothingSelected => {
                        ServiceError::invalid("lines_taken", "take at least one line")
                    }
                    other => ServiceError::refused("ORDER_NOT_READY", other.to_string()),
                })?;
            let refund = refund_of(&events);
            let changed = record.state.allocations.iter().map(|a| a.id).collect();
            Ok((
                Emitted {
                    events,
                    detail: "not collected at pickup".into(),
                    changed,
                    ..Emitted::default()
                },
                ConfirmOutcome::PickedUp(refund),
                true,
            ))
        })
        .await
    }

    /// RejectLine: the store cannot find a line. REROUTE holds it at another location under a
    /// new reservation and asks that location to fulfil it; when none can (or for CANCEL) the
    /// line is cancelled, refunded and released.
    #[allow(clippy::too_many_arguments)]
    pub async fn reject_line(
        &self,
        store: &LocationId,
        id: uuid::Uuid,
        line_id: String,
        quantity: i64,
        reason: String,
        key: &str,
        reroute: bool,
    ) -> Result<(OrderRecord, RejectOutcome), ServiceError> {
        check_key(key)?;
        check_reason(&reason)?;
        let hash = request_hash(&(store, &line_id, quantity, &reason, reroute))?;
        let rerouting = if reroute {
            let record = orders::load(&self.db, id)
                .await?
                .ok_or_else(|| order_not_found(id))?;
            let line = rejected_line(&record, store, id, &line_id, quantity)?;
            self.prepare_reroute(
                &record,
                &BTreeSet::from([line]),
                &BTreeSet::from([store.clone()]),
            )
            .await?
        } else {
            None
        };
        let store = store.clone();
        let plan = rerouting.clone();
        let result = self
            .keyed_change(id, "reject-line", key, hash, move |record, now| {
                let line = rejected_line(record, &store, id, &line_id, quantity)?;
                if let Some(r) = &plan {
                    let (events, changed) = r.apply(record, now)?;
                    return Ok((
                        Emitted {
                            events,
                            detail: reason,
                            changed,
                            reservations: vec![r.reservation.clone()],
                            ..Emitted::default()
                        },
                        RejectOutcome::Rerouted,
                        true,
                    ));
                }
                let chosen = BTreeSet::from([line]);
                let events = record
                    .state
                    .cancel(Some(&chosen), CancelReason::StoreCouldNotFind)
                    .map_err(|e| ServiceError::refused("LINE_NOT_OPEN", e.to_string()))?;
                let refund = refund_of(&events);
                let changed = released_allocations(&events);
                Ok((
                    Emitted {
                        events,
                        detail: reason,
                        changed,
                        ..Emitted::default()
                    },
                    RejectOutcome::Cancelled(refund),
                    true,
                ))
            })
            .await;
        if let Some(r) = &rerouting {
            let applied = result.as_ref().is_ok_and(|(record, _)| {
                record
                    .allocations
                    .iter()
                    .any(|a| a.reservation.as_ref() == Some(&r.reservation))
            });
            self.finish_reroute(id, r, applied).await;
        }
        result
    }

    /// AcceptReturn: handed-over units come back at `store`.
    pub async fn accept_return(
        &self,
        store: &LocationId,
        id: uuid::Uuid,
        lines: Vec<(String, i64)>,
        reason: String,
        key: &str,
    ) -> Result<(OrderRecord, Refund), ServiceError> {
        check_key(key)?;
        check_reason(&reason)?;
        if lines.is_empty() || lines.len() > 100 {
            return Err(ServiceError::invalid("lines", "1-100 entries"));
        }
        let hash = request_hash(&(store, &lines, &reason))?;
        let store = store.clone();
        let return_id = key.to_owned();
        self.keyed_change(id, "accept-return", key, hash, move |record, _now| {
            let mut parsed = Vec::with_capacity(lines.len());
            for (i, (line, qty)) in lines.iter().enumerate() {
                let n = line.parse::<u32>().map_err(|_| {
                    ServiceError::invalid(
                        format!("lines[{i}].line_id"),
                        format!("no line {line:?}"),
                    )
                })?;
                let q = u32::try_from(*qty)
                    .ok()
                    .filter(|q| (1..=100_000).contains(q))
                    .ok_or_else(|| {
                        ServiceError::invalid(format!("lines[{i}].quantity"), "must be 1-100000")
                    })?;
                parsed.push((LineId(n), q));
            }
            let events = record
                .state
                .accept_return(&store, &parsed)
                .map_err(|e| match e {
                    OrderStateError::UnknownLine(l) => {
                        ServiceError::invalid("lines", format!("no line {l}"))
                    }
                    OrderStateError::ReturnTooLarge { .. } => {
                        ServiceError::refused("QUANTITY_EXCEEDS_RETURNABLE", e.to_string())
                    }
                    other => ServiceError::refused("ORDER_NOT_COMPLETED", other.to_string()),
                })?;
            let refund = refund_of(&events);
            let changed = record.state.allocations.iter().map(|a| a.id).collect();
            Ok((
                Emitted {
                    events,
                    detail: reason,
                    return_id: Some(return_id),
                    changed,
                    ..Emitted::default()
                },
                refund,
                true,
            ))
        })
        .await
    }

    /// `warehouse.shipment.dispatched`.
    pub async fn shipment_dispatched(
        &self,
        consumer: &str,
        event_id: &str,
        order: uuid::Uuid,
        allocation: uuid::Uuid,
        tracking: Tracking,
    ) -> Result<EffectOutcome, EffectError> {
        self.allocation_effect(
            consumer,
            event_id,
            order,
            allocation,
            move |record, a, _now| {
                let status = record
                    .state
                    .allocation(a)
                    .map(|x| x.status)
                    .map_err(|e| e.to_string());
                match status {
                    Ok(AllocationStatus::Shipped | AllocationStatus::Delivered) => Ok(Vec::new()),
                    Ok(AllocationStatus::Allocated) => {
                        let events = record
                            .state
                            .dispatch(a)
                            .map_err(|e| EffectError::Reject(e.to_string()))?;
                        if let Some(meta) = record.allocations.iter_mut().find(|m| m.id == a) {
                            meta.tracking = Some(tracking);
                        }
                        Ok(events)
                    }
                    Ok(other) => Err(EffectError::Reject(format!(
                        "allocation {allocation} is {other}; it cannot be dispatched"
                    ))),
                    Err(e) => Err(EffectError::Reject(e)),
                }
            },
        )
        .await
    }

    /// `warehouse.shipment.delivered`. Before its dispatch is known it is retried later.
    pub async fn shipment_delivered(
        &self,
        consumer: &str,
        event_id: &str,
        order: uuid::Uuid,
        allocation: uuid::Uuid,
        delivered_at: Option<DateTime<Utc>>,
    ) -> Result<EffectOutcome, EffectError> {
        self.allocation_effect(
            consumer,
            event_id,
            order,
            allocation,
            move |record, a, now| match record.state.allocation(a).map(|x| x.status) {
                Ok(AllocationStatus::Delivered) => Ok(Vec::new()),
                Ok(AllocationStatus::Allocated) => Err(EffectError::Retry(format!(
                    "delivery of {allocation} arrived before its dispatch"
                ))),
                Ok(_) => {
                    let events = record
                        .state
                        .deliver(a)
                        .map_err(|e| EffectError::Reject(e.to_string()))?;
                    if let Some(t) = record
                        .allocations
                        .iter_mut()
                        .find(|m| m.id == a)
                        .and_then(|m| m.tracking.as_mut())
                    {
                        t.delivered_at = Some(delivered_at.unwrap_or(now));
                    }
                    Ok(events)
                }
                Err(e) => Err(EffectError::Reject(e.to_string())),
            },
        )
        .await
    }

    /// `warehouse.transfer.received`: the pickup can now be marked ready.
    pub async fn transfer_received(
        &self,
        consumer: &str,
        event_id: &str,
        order: uuid::Uuid,
        allocation: uuid::Uuid,
    ) -> Result<EffectOutcome, EffectError> {
        self.allocation_effect(
            consumer,
            event_id,
            order,
            allocation,
            move |record, a, _now| match record.state.allocation(a).map(|x| x.status) {
                Ok(AllocationStatus::Allocated) => record
                    .state
                    .receive_transfer(a)
                    .map_err(|e| EffectError::Reject(e.to_string())),
                Ok(_) => Ok(Vec::new()),
                Err(e) => Err(EffectError::Reject(e.to_string())),
            },
        )
        .await
    }

    async fn allocation_effect<F>(
        &self,
        consumer: &str,
        event_id: &str,
        order: uuid::Uuid,
        allocation: uuid::Uuid,
        f: F,
    ) -> Result<EffectOutcome, EffectError>
    where
        F: FnOnce(
            &mut OrderRecord,
            AllocationId,
            DateTime<Utc>,
        ) -> Result<Vec<OrderEvent>, EffectError>,
    {
        let mut failure = None;
        let result = self
            .change(
                order,
                Dedupe::Inbox { consumer, event_id },
                |record, now| {
                    let Some(a) = record.allocation_by_uuid(allocation) else {
                        failure = Some(EffectError::Reject(format!(
                            "order {order} has no allocation {allocation}"
                        )));
                        return Err(ServiceError::Internal("unknown allocation".into()));
                    };
                    match f(record, a, now) {
                        Ok(events) => {
                            let applied = !events.is_empty();
                            Ok((
                                Emitted {
                                    events,
                                    changed: vec![a],
                                    ..Emitted::default()
                                },
                                applied,
                                false,
                            ))
                        }
                        Err(e) => {
                            failure = Some(e);
                            Err(ServiceError::Internal("effect refused".into()))
                        }
                    }
                },
            )
            .await;
        if let Some(f) = failure {
            return Err(f);
        }
        match result {
            Ok(Some((_, true))) => Ok(EffectOutcome::Applied),
            Ok(_) => Ok(EffectOutcome::AlreadyApplied),
            Err(ServiceError::NotFound { .. }) => {
                Err(EffectError::Reject(format!("order {order} does not exist")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `inventory.stock.shortage` / `inventory.reservation.expired`: the units `reservation`
    /// holds at `location` (every location when `None`) of these SKUs (every SKU when `None`)
    /// can no longer be served. Their open lines are re-routed elsewhere (never back to
    /// `location`); what nothing can serve is cancelled with the reason and released.
    #[allow(clippy::too_many_arguments)]
    pub async fn stock_lost(
        &self,
        consumer: &str,
        event_id: &str,
        order: uuid::Uuid,
        reservation: Option<ReservationId>,
        location: Option<LocationId>,
        skus: Option<BTreeSet<String>>,
        detail: String,
    ) -> Result<EffectOutcome, EffectError> {
        let Some(record) = orders::load(&self.db, order)
            .await
            .map_err(ServiceError::from)?
        else {
            // An expiry for an order that never became durable is the saga's normal crash
            // outcome: nothing to do.
            return Ok(EffectOutcome::AlreadyApplied);
        };
        let affected = affected_lines(
            &record,
            location.as_ref(),
            skus.as_ref(),
            reservation.as_ref(),
        );
        if affected.is_empty() {
            return Ok(EffectOutcome::AlreadyApplied);
        }
        let avoid: BTreeSet<LocationId> = location.iter().cloned().collect();
        let rerouting: Option<Rerouting> = self.prepare_reroute(&record, &affected, &avoid).await?;
        let plan = rerouting.clone();
        let result = self
            .change(
                order,
                Dedupe::Inbox { consumer, event_id },
                |record, now| {
                    if let Some(r) = &plan {
                        let (events, changed) = r.apply(record, now)?;
                        return Ok((
                            Emitted {
                                events,
                                detail,
                                changed,
                                reservations: vec![r.reservation.clone()],
                                ..Emitted::default()
                            },
                            true,
                            false,
                        ));
                    }
                    let affected = affected_lines(
                        record,
                        location.as_ref(),
                        skus.as_ref(),
                        reservation.as_ref(),
                    );
                    if affected.is_empty() {
                        return Ok((Emitted::default(), false, false));
                    }
                    let events = record
                        .state
                        .cancel(Some(&affected), CancelReason::Shortage)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    let changed = released_allocations(&events);
                    Ok((
                        Emitted {
                            events,
                            detail,
                            changed,
                            ..Emitted::default()
                        },
                        true,
                        false,
                    ))
                },
            )
            .await;
        if let Some(r) = &rerouting {
            let applied = matches!(result, Ok(Some((_, true))));
            self.finish_reroute(order, r, applied).await;
        }
        match result {
            Ok(Some((_, true))) => Ok(EffectOutcome::Applied),
            Ok(_) => Ok(EffectOutcome::AlreadyApplied),
            Err(ServiceError::NotFound { .. }) => Ok(EffectOutcome::AlreadyApplied),
            Err(e) => Err(e.into()),
        }
    }

    /// Pickup expiry job: cancels ready pickups past their hold. Safe in several replicas.
    pub async fn expire_pickups(
        &self,
        now: DateTime<Utc>,
        batch: u64,
    ) -> Result<usize, ServiceError> {
        let txn = self.db.begin().await?;
        let due = orders::claim_expired_pickups(&txn, now, batch).await?;
        let mut expired = 0;
        for mut record in due {
            let events = match record.state.cancel(None, CancelReason::PickupExpired) {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(order = %record.id(), error = %e, "ready pickup could not be expired");
                    continue;
                }
            };
            let changed = released_allocations(&events);
            record.touch(now, &changed);
            let ctx = EventContext {
                detail: "not collected within the store's pickup hold",
                ..EventContext::default()
            };
            let envelopes = outgoing::envelopes(&record, &events, &ctx, now)?;
            orders::save(&txn, &record).await?;
            outbox::enqueue_all(&txn, &envelopes).await?;
            expired += 1;
        }
        txn.commit().await?;
        if expired > 0 {
            self.outbox.notify_one();
        }
        Ok(expired)
    }

    /// Confirmation sweeper: finishes confirmations a crash left undone, for orders older than
    /// `grace` (younger ones are still being confirmed by their own saga).
    pub async fn sweep_confirmations(
        &self,
        now: DateTime<Utc>,
        grace: std::time::Duration,
        batch: u64,
    ) -> Result<usize, ServiceError> {
        let txn = self.db.begin().await?;
        let due = orders::claim_unconfirmed(&txn, now - chrono_duration(grace), batch).await?;
        let mut done = 0;
        for record in due {
            let before = record.clone();
            let after = self.confirm_without_saving(record).await;
            if after != before {
                orders::save(&txn, &after).await?;
                done += 1;
            }
        }
        txn.commit().await?;
        Ok(done)
    }

    async fn confirm_without_saving(&self, mut record: OrderRecord) -> OrderRecord {
        if record.unconfirmed.reservation {
            match self.inventory.confirm(&record.reservation_id()).await {
                Ok(()) => record.unconfirmed.reservation = false,
                Err(crate::clients::PortError::Refused { .. }) => {
                    record.unconfirmed.reservation = false;
                    tracing::error!(order = %record.id(), "reservation expired before confirmation");
                }
                Err(e) => {
                    tracing::warn!(order = %record.id(), error = %e, "confirmation still pending")
                }
            }
        }
        let owed: Vec<ReservationId> = record
            .allocations
            .iter()
            .filter(|a| a.unconfirmed)
            .filter_map(|a| a.reservation.clone())
            .collect();
        for reservation in owed {
            match self.inventory.confirm(&reservation).await {
                Ok(()) | Err(crate::clients::PortError::Refused { .. }) => {
                    for meta in record
                        .allocations
                        .iter_mut()
                        .filter(|m| m.reservation.as_ref() == Some(&reservation))
                    {
                        meta.unconfirmed = false;
                    }
                }
                Err(e) => {
                    tracing::warn!(order = %record.id(), %reservation, error = %e, "re-route confirmation still pending")
                }
            }
        }
        if record.unconfirmed.redemption {
            match self.member.confirm_redemption(record.id().as_uuid()).await {
                Ok(()) => record.unconfirmed.redemption = false,
                Err(crate::clients::PortError::Refused { .. }) => {
                    record.unconfirmed.redemption = false;
                    tracing::error!(order = %record.id(), "redemption expired before confirmation");
                }
                Err(e) => {
                    tracing::warn!(order = %record.id(), error = %e, "redemption still pending")
                }
            }
        }
        record
    }
}

enum Replay<T> {
    Answer(T),
    Handled,
}

fn released_allocations(events: &[OrderEvent]) -> Vec<AllocationId> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            OrderEventKind::AllocationReleased { allocation, .. } => Some(*allocation),
            _ => None,
        })
        .collect()
}

/// The line a store rejects: it must be allocated to `store`, and rejected whole.
fn rejected_line(
    record: &OrderRecord,
    store: &LocationId,
    id: uuid::Uuid,
    line_id: &str,
    quantity: i64,
) -> Result<LineId, ServiceError> {
    let line = line_id
        .parse::<u32>()
        .ok()
        .and_then(|n| record.state.lines.iter().find(|l| l.line_id == LineId(n)))
        .ok_or_else(|| ServiceError::invalid("line_id", format!("no line {line_id:?}")))?;
    let here = record
        .state
        .allocation(line.allocation)
        .is_ok_and(|a| &a.location == store);
    if !here {
        return Err(order_not_found(id));
    }
    if quantity != 0 && quantity != i64::from(line.qty) {
        return Err(ServiceError::invalid(
            "quantity",
            format!("lines are rejected whole: 0 or {}", line.qty),
        ));
    }
    Ok(line.line_id)
}

/// The order must be a pickup at `store`; otherwise it does not exist for this store.
fn ensure_pickup_at(
    record: &OrderRecord,
    store: &LocationId,
    id: uuid::Uuid,
) -> Result<(), ServiceError> {
    let at_store = match &record.fulfilment {
        Fulfilment::Pickup { store: s } => s == store,
        Fulfilment::Ship { .. } => false,
    } || record
        .state
        .allocations
        .iter()
        .any(|a| matches!(&a.kind, AllocationKind::TransferToStore { to } if to == store));
    if at_store {
        Ok(())
    } else {
        Err(order_not_found(id))
    }
}
