//! The stored order: the domain state machine plus what the service keeps around it (who
//! ordered, where it goes, pickup secret and lockout, confirmations, allocation ids).

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, LocationId, OrderId, ReservationId};
use serde::{Deserialize, Serialize};

use crate::domain::order::Fulfilment;
use crate::domain::pickup::{PickupAttempts, PickupSecret};
use crate::domain::planner::AllocationKind;
use crate::domain::state::{AllocationId, AllocationStatus, OrderState, OrderStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub tracking_number: String,
    pub tracking_url: String,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What the service keeps per allocation besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationMeta {
    pub id: AllocationId,
    /// Published in events and used by warehouses to report back.
    pub uuid: uuid::Uuid,
    pub distance_km: f64,
    pub tracking: Option<Tracking>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set on allocations made by a re-route: their own reservation (`order:<new uuid>`),
    /// because inventory cannot add lines to the order's first one. `None` = `order:<order id>`.
    #[serde(default)]
    pub reservation: Option<ReservationId>,
    /// The re-route reservation still waits for ConfirmReservation (the sweeper finishes it).
    #[serde(default)]
    pub unconfirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickupRecord {
    pub store: LocationId,
    pub ready_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Only the salted hash of the code issued by MarkReady.
    pub secret: Option<PickupSecret>,
    pub attempts: PickupAttempts,
}

/// Which saga confirmations are still owed to the peers. The sweeper finishes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmations {
    pub reservation: bool,
    pub redemption: bool,
}

impl Confirmations {
    pub fn pending(&self) -> bool {
        self.reservation || self.redemption
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub state: OrderState,
    pub channel: ChannelId,
    pub member: Option<uuid::Uuid>,
    pub fulfilment: Fulfilment,
    /// 0 = the built-in default profile.
    pub profile_version: u32,
    pub allocations: Vec<AllocationMeta>,
    pub pickup: Option<PickupRecord>,
    pub unconfirmed: Confirmations,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The store's view of a pickup order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickupStatus {
    ToPrepare,
    AwaitingTransfer,
    Ready,
    PickedUp,
    Cancelled,
}

impl PickupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToPrepare => "TO_PREPARE",
            Self::AwaitingTransfer => "AWAITING_TRANSFER",
            Self::Ready => "READY",
            Self::PickedUp => "PICKED_UP",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl OrderRecord {
    pub fn id(&self) -> OrderId {
        self.state.id
    }

    pub fn reservation_id(&self) -> ReservationId {
        ReservationId::for_order(self.state.id)
    }

    /// The reservation that holds `allocation`'s stock; events about it carry this id.
    pub fn reservation_of(&self, allocation: AllocationId) -> ReservationId {
        self.meta(allocation)
            .and_then(|m| m.reservation.clone())
            .unwrap_or_else(|| self.reservation_id())
    }

    /// Any confirmation still owed: the saga's, or a re-route reservation's.
    pub fn confirmations_pending(&self) -> bool {
        self.unconfirmed.pending() || self.allocations.iter().any(|a| a.unconfirmed)
    }

    /// Marks every confirmation made: what the store's `confirmations_pending = false` says
    /// about a document written before they were.
    pub fn settle_confirmations(&mut self) {
        self.unconfirmed = Confirmations::default();
        for allocation in &mut self.allocations {
            allocation.unconfirmed = false;
        }
    }

    pub fn is_pickup(&self) -> bool {
        matches!(self.fulfilment, Fulfilment::Pickup { .. })
    }

    pub fn meta(&self, id: AllocationId) -> Option<&AllocationMeta> {
        self.allocations.iter().find(|a| a.id == id)
    }

    pub fn allocation_by_uuid(&self, uuid: uuid::Uuid) -> Option<AllocationId> {
        self.allocations
            .iter()
            .find(|a| a.uuid == uuid)
            .map(|a| a.id)
    }

    pub fn touch(&mut self, now: DateTime<Utc>, changed: &[AllocationId]) {
        self.updated_at = now;
        for meta in self
            .allocations
            .iter_mut()
            .filter(|m| changed.contains(&m.id))
        {
            meta.updated_at = now;
        }
    }

    /// The status name stored in the `status` column and shown on the API.
    pub fn status_name(&self) -> &'static str {
        match self.state.status() {
            OrderStatus::Allocated => "ALLOCATED",
            OrderStatus::ReadyForPickup => "READY_FOR_PICKUP",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::InProgress => {
                if self.state.allocations.iter().any(|a| {
                    matches!(
                        a.status,
                        AllocationStatus::Shipped | AllocationStatus::Delivered
                    )
                }) {
                    "SHIPPED"
                } else {
                    "ALLOCATED"
                }
            }
            OrderStatus::Completed => {
                if self.is_pickup() {
                    "PICKED_UP"
                } else {
                    "DELIVERED"
                }
            }
            OrderStatus::PartiallyReturned => "PARTIALLY_RETURNED",
            OrderStatus::Returned => "RETURNED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn pickup_status(&self) -> Option<PickupStatus> {
        let store = match &self.fulfilment {
            Fulfilment::Pickup { store } => store,
            Fulfilment::Ship { .. } => return None,
        };
        let live: Vec<_> = self
            .state
            .allocations
            .iter()
            .filter(|a| a.status != AllocationStatus::Cancelled)
            .collect();
        if live.is_empty() {
            return Some(PickupStatus::Cancelled);
        }
        if live.iter().all(|a| a.status.is_completed()) {
            return Some(PickupStatus::PickedUp);
        }
        if live
            .iter()
            .all(|a| a.status == AllocationStatus::ReadyForPickup)
        {
            return Some(PickupStatus::Ready);
        }
        let awaiting = live.iter().any(|a| {
            matches!(&a.kind, AllocationKind::TransferToStore { to } if to == store)
                && a.status == AllocationStatus::Allocated
        });
        Some(if awaiting {
            PickupStatus::AwaitingTransfer
        } else {
            PickupStatus::ToPrepare
        })
    }

    /// Value of the units handed over and not cancelled: what completion earns points on.
    pub fn handed_over_minor(&self) -> i64 {
        self.state
            .lines
            .iter()
            .filter(|l| !l.cancelled)
            .filter(|l| {
                self.state
                    .allocations
                    .iter()
                    .any(|a| a.id == l.allocation && a.status.is_completed())
            })
            .map(|l| l.unit_price_minor.saturating_mul(i64::from(l.qty)))
            .sum()
    }
}
