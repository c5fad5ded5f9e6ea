//! The order and allocation state machines.
//!
//! Allocations move on their own (one order may ship from two places and be half delivered):
//!
//! ```text
//! Ship:      ALLOCATED → SHIPPED → DELIVERED
//! Pickup:    ALLOCATED → READY_FOR_PICKUP → PICKED_UP
//! Transfer:  ALLOCATED → RECEIVED_AT_STORE → READY_FOR_PICKUP → PICKED_UP
//! open (ALLOCATED, RECEIVED_AT_STORE, READY_FOR_PICKUP) → CANCELLED
//! completed (DELIVERED, PICKED_UP) → RETURNED   (once every unit is back)
//! ```
//!
//! The order's status is derived, never stored apart from its allocations (see
//! [`OrderState::status`]). Every operation either applies completely and returns the events to
//! publish, each with the next per-order sequence number, or changes nothing and returns an error.
//! Lines are cancelled whole; returns are per unit. Refunds are the lines' own value (qty × unit
//! price) and the redeemed points pro rata to the refunded share of the order total, computed on
//! cumulative amounts so rounding never refunds more or less than was redeemed in the end.

use std::collections::BTreeSet;
use std::fmt;

use omni_types::{Currency, LocationId, Money, OrderId, Sku};
use serde::{Deserialize, Serialize};

use crate::domain::order::{LineId, OrderDraft};
use crate::domain::planner::{AllocationKind, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AllocationStatus {
    Allocated,
    ReceivedAtStore,
    ReadyForPickup,
    PickedUp,
    Shipped,
    Delivered,
    Cancelled,
    Returned,
}

impl AllocationStatus {
    /// Goods have not left the building: the allocation can still be cancelled.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Allocated | Self::ReceivedAtStore | Self::ReadyForPickup
        )
    }

    /// The customer has the goods.
    pub fn is_completed(self) -> bool {
        matches!(self, Self::PickedUp | Self::Delivered | Self::Returned)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allocated => "ALLOCATED",
            Self::ReceivedAtStore => "RECEIVED_AT_STORE",
            Self::ReadyForPickup => "READY_FOR_PICKUP",
            Self::PickedUp => "PICKED_UP",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
            Self::Returned => "RETURNED",
        }
    }
}

impl fmt::Display for AllocationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transition is not allowed from the current state: refuse, change nothing
/// (FAILED_PRECONDITION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot move from {from} to {to}")]
pub struct TransitionError {
    pub from: AllocationStatus,
    pub to: AllocationStatus,
}

/// The allocation state machine. `Ok` iff an allocation of `kind` may go from `from` to `to`.
pub fn check_transition(
    kind: &AllocationKind,
    from: AllocationStatus,
    to: AllocationStatus,
) -> Result<(), TransitionError> {
    use AllocationStatus as S;
    let allowed = match (kind, from, to) {
        (_, f, S::Cancelled) => f.is_open(),
        (_, S::PickedUp | S::Delivered, S::Returned) => true,
        (AllocationKind::Ship, S::Allocated, S::Shipped)
        | (AllocationKind::Ship, S::Shipped, S::Delivered)
        | (AllocationKind::Pickup, S::Allocated, S::ReadyForPickup)
        | (AllocationKind::TransferToStore { .. }, S::Allocated, S::ReceivedAtStore)
        | (AllocationKind::TransferToStore { .. }, S::ReceivedAtStore, S::ReadyForPickup)
        | (
            AllocationKind::Pickup | AllocationKind::TransferToStore { .. },
            S::ReadyForPickup,
            S::PickedUp,
        ) => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(TransitionError { from, to })
    }
}

/// The order's status, derived from its allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Every live allocation is waiting to be picked, shipped or transferred.
    Allocated,
    /// Every live allocation waits at the pickup store.
    ReadyForPickup,
    /// Every live allocation has shipped, some not yet delivered.
    Shipped,
    /// A mix of the above (one parcel shipped, another still being picked).
    InProgress,
    /// The customer has everything that was not cancelled.
    Completed,
    /// Completed, and some units came back.
    PartiallyReturned,
    /// Every unit that was not cancelled came back.
    Returned,
    /// Nothing is left to fulfil: every line was cancelled.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AllocationId(pub u32);

impl fmt::Display for AllocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineState {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: u32,
    pub unit_price_minor: i64,
    pub allocation: AllocationId,
    pub cancelled: bool,
    pub returned: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationState {
    pub id: AllocationId,
    pub location: LocationId,
    pub kind: AllocationKind,
    pub status: AllocationStatus,
}

/// Units of one line, as events carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineQty {
    pub line_id: LineId,
    pub sku: Sku,
    pub qty: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub amount: Money,
    pub points: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    Customer,
    PickupExpired,
    NotCollected,
    StoreCouldNotFind,
    Shortage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEventKind {
    Placed,
    FulfilmentRequested {
        allocation: AllocationId,
        location: LocationId,
        lines: Vec<LineQty>,
    },
    PickupReady {
        store: LocationId,
    },
    /// Goods left the location (shipped or handed over): commit the stock.
    AllocationFulfilled {
        allocation: AllocationId,
        location: LocationId,
        lines: Vec<LineQty>,
    },
    /// Goods will not leave: release the reservation for these units.
    AllocationReleased {
        allocation: AllocationId,
        location: LocationId,
        lines: Vec<LineQty>,
    },
    Completed,
    Cancelled {
        reason: CancelReason,
        lines: Vec<LineQty>,
        refund: Refund,
    },
    Returned {
        location: LocationId,
        lines: Vec<LineQty>,
        refund: Refund,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order: OrderId,
    pub sequence: u64,
    pub kind: OrderEventKind,
}

/// What the caller asked for does not fit the order as it is now; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderStateError {
    /// FAILED_PRECONDITION: the order is not in a state that allows this.
    #[error("allocation {allocation}: {source}")]
    Transition {
        allocation: AllocationId,
        source: TransitionError,
    },
    /// NOT_FOUND.
    #[error("order has no allocation {0}")]
    UnknownAllocation(AllocationId),
    /// INVALID_ARGUMENT: name lines of this order.
    #[error("order has no line {0}")]
    UnknownLine(LineId),
    /// INVALID_ARGUMENT: the selection was empty.
    #[error("no lines selected")]
    NothingSelected,
    /// FAILED_PRECONDITION: wait for the transfer to arrive.
    #[error("transfer allocation {0} has not arrived at the store yet")]
    TransferPending(AllocationId),
    /// FAILED_PRECONDITION: this order is not picked up at that store.
    #[error("order has nothing to pick up at {0}")]
    NotPickedUpHere(LocationId),
    /// INVALID_ARGUMENT: return at most what was received and not yet returned.
    #[error("line {line}: {requested} unit(s) to return, but only {returnable} can be")]
    ReturnTooLarge {
        line: LineId,
        requested: u32,
        returnable: u32,
    },
}

/// Where re-routed lines go: one new allocation per entry (the planner's answer for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerouteTo {
    pub location: LocationId,
    pub kind: AllocationKind,
    pub lines: Vec<LineId>,
}

/// An order as the state machines see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub id: OrderId,
    pub currency: Currency,
    pub total_minor: i64,
    pub points_redeemed: u64,
    pub lines: Vec<LineState>,
    pub allocations: Vec<AllocationState>,
    pub refunded_minor: i64,
    pub refunded_points: u64,
    /// Sequence number of the last event emitted; the next event takes `sequence + 1`.
    pub sequence: u64,
}

impl OrderState {
    /// A new order from its draft and plan. Returns the `Placed` event and one fulfilment request
    /// per allocation. Lines the plan does not allocate are a caller bug and are refused.
    pub fn place(
        id: OrderId,
        draft: &OrderDraft,
        plan: &Plan,
    ) -> Result<(Self, Vec<OrderEvent>), OrderStateError> {
        let mut lines = Vec::with_capacity(draft.lines().len());
        for l in draft.lines() {
            let allocation = plan
                .allocations
                .iter()
                .position(|a| a.lines.iter().any(|al| al.line_id == l.line_id))
                .ok_or(OrderStateError::UnknownLine(l.line_id))?;
            lines.push(LineState {
                line_id: l.line_id,
                sku: l.sku.clone(),
                qty: l.qty.get(),
                unit_price_minor: l.unit_price.minor_units,
                allocation: AllocationId(allocation as u32 + 1),
                cancelled: false,
                returned: 0,
            });
        }
        let allocations = plan
            .allocations
            .iter()
            .enumerate()
            .map(|(i, a)| AllocationState {
                id: AllocationId(i as u32 + 1),
                location: a.location.clone(),
                kind: a.kind.clone(),
                status: AllocationStatus::Allocated,
            })
            .collect();
        let mut order = Self {
            id,
            currency: draft.currency(),
            total_minor: draft.total().minor_units,
            points_redeemed: draft.points_to_redeem(),
            lines,
            allocations,
            refunded_minor: 0,
            refunded_points: 0,
            sequence: 0,
        };
        let mut kinds = vec![OrderEventKind::Placed];
        for a in &order.allocations {
            kinds.push(OrderEventKind::FulfilmentRequested {
                allocation: a.id,
                location: a.location.clone(),
                lines: order.live_lines(a.id),
            });
        }
        let events = order.emit(kinds);
        Ok((order, events))
    }

    /// See the module docs; cancelled allocations are ignored unless all are cancelled.
    pub fn status(&self) -> OrderStatus {
        use AllocationStatus as S;
        let live: Vec<AllocationStatus> = self
            .allocations
            .iter()
            .map(|a| a.status)
            .filter(|s| *s != S::Cancelled)
            .collect();
        let all = |f: fn(AllocationStatus) -> bool| live.iter().all(|s| f(*s));
        if live.is_empty() {
            OrderStatus::Cancelled
        } else if all(|s| s == S::Returned) {
            OrderStatus::Returned
        } else if all(AllocationStatus::is_completed) {
            if self.lines.iter().any(|l| l.returned > 0) {
                OrderStatus::PartiallyReturned
            } else {
                OrderStatus::Completed
            }
        } else if all(|s| s == S::ReadyForPickup) {
            OrderStatus::ReadyForPickup
        } else if all(|s| matches!(s, S::Shipped | S::Delivered)) {
            OrderStatus::Shipped
        } else if all(|s| matches!(s, S::Allocated | S::ReceivedAtStore)) {
            OrderStatus::Allocated
        } else {
            OrderStatus::InProgress
        }
    }

    pub fn allocation(&self, id: AllocationId) -> Result<&AllocationState, OrderStateError> {
        self.allocations
            .iter()
            .find(|a| a.id == id)
            .ok_or(OrderStateError::UnknownAllocation(id))
    }

    /// `warehouse.shipment.dispatched`: the parcel left; commit its stock.
    pub fn dispatch(&mut self, id: AllocationId) -> Result<Vec<OrderEvent>, OrderStateError> {
        self.move_to(id, AllocationStatus::Shipped)?;
        let a = self.allocation(id)?;
        let kind = OrderEventKind::AllocationFulfilled {
            allocation: id,
            location: a.location.clone(),
            lines: self.live_lines(id),
        };
        Ok(self.emit(vec![kind]))
    }

    /// `warehouse.shipment.delivered`. Completes the order once nothing else is outstanding.
    pub fn deliver(&mut self, id: AllocationId) -> Result<Vec<OrderEvent>, OrderStateError> {
        let before = self.status();
        self.move_to(id, AllocationStatus::Delivered)?;
        Ok(self.completion_events(before, Vec::new()))
    }

    /// `warehouse.transfer.received`: the goods are at the pickup store.
    pub fn receive_transfer(
        &mut self,
        id: AllocationId,
    ) -> Result<Vec<OrderEvent>, OrderStateError> {
        self.move_to(id, AllocationStatus::ReceivedAtStore)?;
        Ok(Vec::new())
    }

    /// Store staff mark the pickup ready at `store`: every live allocation for that store must be
    /// there (transfers received).
    pub fn mark_ready(&mut self, store: &LocationId) -> Result<Vec<OrderEvent>, OrderStateError> {
        let ids = self.pickup_allocations(store)?;
        for id in &ids {
            let a = self.allocation(*id)?;
            if matches!(a.kind, AllocationKind::TransferToStore { .. })
                && a.status == AllocationStatus::Allocated
            {
                return Err(OrderStateError::TransferPending(*id));
            }
            check_transition(&a.kind, a.status, AllocationStatus::ReadyForPickup).map_err(
                |source| OrderStateError::Transition {
                    allocation: *id,
                    source,
                },
            )?;
        }
        for id in ids {
            self.set_status(id, AllocationStatus::ReadyForPickup);
        }
        Ok(self.emit(vec![OrderEventKind::PickupReady {
            store: store.clone(),
        }]))
    }

    /// The customer collects at `store`. `taken = None` takes every line; otherwise the lines not
    /// taken are cancelled (refunded and released), as in a partial pickup.
    pub fn confirm_pickup(
        &mut self,
        store: &LocationId,
        taken: Option<&BTreeSet<LineId>>,
    ) -> Result<Vec<OrderEvent>, OrderStateError> {
        let ids = self.pickup_allocations(store)?;
        for id in &ids {
            let a = self.allocation(*id)?;
            check_transition(&a.kind, a.status, AllocationStatus::PickedUp).map_err(|source| {
                OrderStateError::Transition {
                    allocation: *id,
                    source,
                }
            })?;
        }
        let here: BTreeSet<LineId> = self
            .lines
            .iter()
            .filter(|l| !l.cancelled && ids.contains(&l.allocation))
            .map(|l| l.line_id)
            .collect();
        if let Some(taken) = taken {
            if taken.is_empty() {
                return Err(OrderStateError::NothingSelected);
            }
            if let Some(unknown) = taken.iter().find(|l| !here.contains(l)) {
                return Err(OrderStateError::UnknownLine(*unknown));
            }
        }
        let before = self.status();
        let left: BTreeSet<LineId> = match taken {
            Some(taken) => here.difference(taken).copied().collect(),
            None => BTreeSet::new(),
        };
        let mut kinds = self.cancel_lines_unchecked(&left, CancelReason::NotCollected);
        for id in ids {
            if self.allocation(id)?.status == AllocationStatus::Cancelled {
                continue;
            }
            self.set_status(id, AllocationStatus::PickedUp);
            kinds.push(OrderEventKind::AllocationFulfilled {
                allocation: id,
                location: self.allocation(id)?.location.clone(),
                lines: self.live_lines(id),
            });
        }
        Ok(self.completion_events(before, kinds))
    }

    /// Cancel chosen lines (`None` = the whole order). Every chosen line must still be open.
    pub fn cancel(
        &mut self,
        lines: Option<&BTreeSet<LineId>>,
        reason: CancelReason,
    ) -> Result<Vec<OrderEvent>, OrderStateError> {
        let chosen: BTreeSet<LineId> = match lines {
            Some(lines) => lines.clone(),
            None => self
                .lines
                .iter()
                .filter(|l| !l.cancelled)
                .map(|l| l.line_id)
                .collect(),
        };
        if chosen.is_empty() {
            return Err(OrderStateError::NothingSelected);
        }
        for id in &chosen {
            let line = self.line(*id)?;
            let a = self.allocation(line.allocation)?;
            if line.cancelled || !a.status.is_open() {
                let from = if line.cancelled {
                    AllocationStatus::Cancelled
                } else {
                    a.status
                };
                return Err(OrderStateError::Transition {
                    allocation: a.id,
                    source: TransitionError {
                        from,
                        to: AllocationStatus::Cancelled,
                    },
                });
            }
        }
        let before = self.status();
        let kinds = self.cancel_lines_unchecked(&chosen, reason);
        Ok(self.completion_events(before, kinds))
    }

    /// Moves open lines to new allocations: each line is released at its old allocation (which
    /// is cancelled once nothing is left on it) and each new allocation is asked to fulfil.
    /// Returns the new allocations' ids, in the order of `to`, and the events. Nothing changes
    /// on error.
    pub fn reroute(
        &mut self,
        to: &[RerouteTo],
    ) -> Result<(Vec<AllocationId>, Vec<OrderEvent>), OrderStateError> {
        let moved: BTreeSet<LineId> = to.iter().flat_map(|r| r.lines.iter().copied()).collect();
        if moved.is_empty() || to.iter().any(|r| r.lines.is_empty()) {
            return Err(OrderStateError::NothingSelected);
        }
        for id in &moved {
            let line = self.line(*id)?;
            let a = self.allocation(line.allocation)?;
            if line.cancelled || !a.status.is_open() {
                return Err(OrderStateError::Transition {
                    allocation: a.id,
                    source: TransitionError {
                        from: a.status,
                        to: AllocationStatus::Cancelled,
                    },
                });
            }
        }
        let mut old: Vec<AllocationId> = moved
            .iter()
            .filter_map(|id| self.line(*id).ok().map(|l| l.allocation))
            .collect();
        old.sort();
        old.dedup();
        let mut kinds = Vec::new();
        for id in &old {
            let lines: Vec<LineQty> = self
                .live_lines(*id)
                .into_iter()
                .filter(|l| moved.contains(&l.line_id))
                .collect();
            let location = self.allocation(*id)?.location.clone();
            kinds.push(OrderEventKind::AllocationReleased {
                allocation: *id,
                location,
                lines,
            });
        }
        let mut next = self.allocations.iter().map(|a| a.id.0).max().unwrap_or(0);
        let mut created = Vec::with_capacity(to.len());
        for target in to {
            next += 1;
            let id = AllocationId(next);
            self.allocations.push(AllocationState {
                id,
                location: target.location.clone(),
                kind: target.kind.clone(),
                status: AllocationStatus::Allocated,
            });
            for line in self
                .lines
                .iter_mut()
                .filter(|l| target.lines.contains(&l.line_id))
            {
                line.allocation = id;
            }
            created.push(id);
        }
        for id in old {
            if self
                .lines
                .iter()
                .filter(|l| l.allocation == id)
                .all(|l| l.cancelled)
            {
                self.set_status(id, AllocationStatus::Cancelled);
            }
        }
        for id in &created {
            let a = self.allocation(*id)?;
            kinds.push(OrderEventKind::FulfilmentRequested {
                allocation: *id,
                location: a.location.clone(),
                lines: self.live_lines(*id),
            });
        }
        Ok((created, self.emit(kinds)))
    }

    /// A return of `lines` (line, units) at `location`. Only units the customer received and has
    /// not returned yet can come back.
    pub fn accept_return(
        &mut self,
        location: &LocationId,
        lines: &[(LineId, u32)],
    ) -> Result<Vec<OrderEvent>, OrderStateError> {
        if lines.is_empty() || lines.iter().all(|(_, q)| *q == 0) {
            return Err(OrderStateError::NothingSelected);
        }
        let mut requested: std::collections::BTreeMap<LineId, u32> = Default::default();
        for (id, qty) in lines {
            let entry = requested.entry(*id).or_default();
            *entry = entry.saturating_add(*qty);
        }
        for (id, qty) in &requested {
            let line = self.line(*id)?;
            let a = self.allocation(line.allocation)?;
            let returnable = if a.status.is_completed() && !line.cancelled {
                line.qty - line.returned
            } else {
                0
            };
            if *qty > returnable {
                if returnable == 0 && !a.status.is_completed() {
                    return Err(OrderStateError::Transition {
                        allocation: a.id,
                        source: TransitionError {
                            from: a.status,
                            to: AllocationStatus::Returned,
                        },
                    });
                }
                return Err(OrderStateError::ReturnTooLarge {
                    line: *id,
                    requested: *qty,
                    returnable,
                });
            }
        }
        let mut returned = Vec::new();
        let mut value = 0i64;
        for (id, qty) in requested.into_iter().filter(|(_, q)| *q > 0) {
            if let Some(line) = self.lines.iter_mut().find(|l| l.line_id == id) {
                line.returned += qty;
                value = value.saturating_add(line.unit_price_minor.saturating_mul(i64::from(qty)));
                returned.push(LineQty {
                    line_id: id,
                    sku: line.sku.clone(),
                    qty,
                });
            }
        }
        let fully_returned: Vec<AllocationId> = self
            .allocations
            .iter()
            .filter(|a| a.status.is_completed() && a.status != AllocationStatus::Returned)
            .filter(|a| {
                self.lines
                    .iter()
                    .filter(|l| l.allocation == a.id && !l.cancelled)
                    .all(|l| l.returned == l.qty)
            })
            .map(|a| a.id)
            .collect();
        for id in fully_returned {
            self.set_status(id, AllocationStatus::Returned);
        }
        let refund = self.refund(value);
        Ok(self.emit(vec![OrderEventKind::Returned {
            location: location.clone(),
            lines: returned,
            refund,
        }]))
    }

    fn line(&self, id: LineId) -> Result<&LineState, OrderStateError> {
        self.lines
            .iter()
            .find(|l| l.line_id == id)
            .ok_or(OrderStateError::UnknownLine(id))
    }

    fn live_lines(&self, id: AllocationId) -> Vec<LineQty> {
        self.lines
            .iter()
            .filter(|l| l.allocation == id && !l.cancelled)
            .map(|l| LineQty {
                line_id: l.line_id,
                sku: l.sku.clone(),
                qty: l.qty,
            })
            .collect()
    }

    fn pickup_allocations(&self, store: &LocationId) -> Result<Vec<AllocationId>, OrderStateError> {
        let ids: Vec<AllocationId> = self
            .allocations
            .iter()
            .filter(|a| a.status != AllocationStatus::Cancelled)
            .filter(|a| match &a.kind {
                AllocationKind::Pickup => &a.location == store,
                AllocationKind::TransferToStore { to } => to == store,
                AllocationKind::Ship => false,
            })
            .map(|a| a.id)
            .collect();
        if ids.is_empty() {
            return Err(OrderStateError::NotPickedUpHere(store.clone()));
        }
        Ok(ids)
    }

    fn move_to(&mut self, id: AllocationId, to: AllocationStatus) -> Result<(), OrderStateError> {
        let a = self.allocation(id)?;
        check_transition(&a.kind, a.status, to).map_err(|source| OrderStateError::Transition {
            allocation: id,
            source,
        })?;
        self.set_status(id, to);
        Ok(())
    }

    fn set_status(&mut self, id: AllocationId, to: AllocationStatus) {
        if let Some(a) = self.allocations.iter_mut().find(|a| a.id == id) {
            a.status = to;
        }
    }

    /// Marks `chosen` (already checked open) cancelled; releases per allocation and refunds.
    fn cancel_lines_unchecked(
        &mut self,
        chosen: &BTreeSet<LineId>,
        reason: CancelReason,
    ) -> Vec<OrderEventKind> {
        if chosen.is_empty() {
            return Vec::new();
        }
        let mut value = 0i64;
        let mut cancelled = Vec::new();
        let mut touched = BTreeSet::new();
        for line in self
            .lines
            .iter_mut()
            .filter(|l| chosen.contains(&l.line_id))
        {
            line.cancelled = true;
            value = value.saturating_add(line.unit_price_minor.saturating_mul(i64::from(line.qty)));
            touched.insert(line.allocation);
            cancelled.push(LineQty {
                line_id: line.line_id,
                sku: line.sku.clone(),
                qty: line.qty,
            });
        }
        let mut kinds = Vec::new();
        for id in touched {
            let Some(a) = self.allocations.iter().find(|a| a.id == id) else {
                continue;
            };
            let released: Vec<LineQty> = cancelled
                .iter()
                .filter(|c| {
                    self.lines
                        .iter()
                        .any(|l| l.line_id == c.line_id && l.allocation == id)
                })
                .cloned()
                .collect();
            kinds.push(OrderEventKind::AllocationReleased {
                allocation: id,
                location: a.location.clone(),
                lines: released,
            });
            if self
                .lines
                .iter()
                .filter(|l| l.allocation == id)
                .all(|l| l.cancelled)
            {
                self.set_status(id, AllocationStatus::Cancelled);
            }
        }
        let refund = self.refund(value);
        kinds.push(OrderEventKind::Cancelled {
            reason,
            lines: cancelled,
            refund,
        });
        kinds
    }

    /// Records a refund of `value` minor units and the points it frees, pro rata on cumulative
    /// totals so that refunding the whole order refunds exactly the points redeemed.
    fn refund(&mut self, value: i64) -> Refund {
        let value = value.min(self.total_minor - self.refunded_minor).max(0);
        self.refunded_minor += value;
        let due = if self.total_minor <= 0 {
            self.points_redeemed
        } else {
            let share = i128::from(self.points_redeemed) * i128::from(self.refunded_minor)
                / i128::from(self.total_minor);
            u64::try_from(share).unwrap_or(self.points_redeemed)
        };
        let points = due.saturating_sub(self.refunded_points);
        self.refunded_points += points;
        Refund {
            amount: Money::new(value, self.currency),
            points,
        }
    }

    /// Adds `Completed` when this change completed the order.
    fn completion_events(
        &mut self,
        before: OrderStatus,
        mut kinds: Vec<OrderEventKind>,
    ) -> Vec<OrderEvent> {
        if before != OrderStatus::Completed && self.status() == OrderStatus::Completed {
            kinds.push(OrderEventKind::Completed);
        }
        self.emit(kinds)
    }

    fn emit(&mut self, kinds: Vec<OrderEventKind>) -> Vec<OrderEvent> {
        kinds
            .into_iter()
            .map(|kind| {
                self.sequence += 1;
                OrderEvent {
                    order: self.id,
                    sequence: self.sequence,
                    kind,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
