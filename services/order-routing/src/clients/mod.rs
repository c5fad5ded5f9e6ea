//! Ports to the services order-routing calls while an answer is needed now (the PlaceOrder saga
//! and dry runs), with tonic adapters. Everything after an order exists travels as events
//! instead. Fakes of these traits let tests inject failures at every step of the saga.

mod grpc_inventory;
mod grpc_member;
mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use omni_types::{ChannelId, GeoPoint, LocationId, ReservationId, Sku};

use crate::domain::planner::{Capabilities, LocationKind};

pub use grpc_inventory::GrpcInventory;
pub use grpc_member::GrpcMember;

/// Why a peer call failed, named by what the saga does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Down, timed out or rebuilding: the outcome of a write is unknown; answer UNAVAILABLE.
    #[error("{peer} unavailable: {detail}")]
    Unavailable { peer: &'static str, detail: String },
    /// The named thing does not exist there.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The peer refused in the current state (`reason` as the peer's ErrorInfo says).
    #[error("refused ({reason}): {detail}")]
    Refused { reason: String, detail: String },
    /// The same id is being written by someone else right now: retry later.
    #[error("in progress: {0}")]
    InProgress(String),
    /// The id exists with other content.
    #[error("conflict: {0}")]
    Conflict(String),
    /// We sent something the peer considers invalid: a bug on our side.
    #[error("request refused as invalid: {0}")]
    Invalid(String),
}

/// A location as inventory describes it (cached briefly).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationInfo {
    pub id: LocationId,
    pub kind: LocationKind,
    pub point: GeoPoint,
    pub capabilities: Capabilities,
    pub active: bool,
    /// How long a ready pickup waits at this store; `None` when inventory has none set.
    pub pickup_hold: Option<Duration>,
}

/// Sellable units by location and SKU, and capacity left per location.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Availability {
    /// Only units above zero: a location or SKU missing here has none. Shaped as a
    /// candidate's stock, so planning moves it instead of looking up every (sku, location).
    pub available: HashMap<LocationId, BTreeMap<Sku, u32>>,
    /// `None` = unlimited; locations missing here are treated as unlimited.
    pub capacity_left: BTreeMap<LocationId, Option<u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReserveLine {
    pub sku: Sku,
    pub location: LocationId,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    Held,
    Committed,
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationView {
    pub id: ReservationId,
    pub state: ReservationState,
    pub confirmed: bool,
    /// Units still held per line.
    pub held: Vec<ReserveLine>,
}

/// A line of a reserve that could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLine {
    /// `INSUFFICIENT_STOCK`, `CAPACITY_EXHAUSTED` or `LOCATION_INACTIVE`.
    pub kind: String,
    /// `sku/<sku>/location/<id>` or `location/<id>`.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// Lost the race for stock or capacity: re-plan with fresh availability.
    #[error("stock or capacity taken meanwhile: {0:?}")]
    Short(Vec<ShortLine>),
    #[error(transparent)]
    Other(#[from] PortError),
}

#[async_trait]
pub trait InventoryPort: Send + Sync {
    /// Every location, active or not. Shared: every order plans over the same snapshot.
    async fn locations(&self) -> Result<Arc<[LocationInfo]>, PortError>;
    /// The locations whose stock `channel` may sell.
    async fn pool(&self, channel: &ChannelId) -> Result<Arc<BTreeSet<LocationId>>, PortError>;
    /// Sellable units of `skus` at every active location of the channel's pool.
    async fn availability(
        &self,
        channel: &ChannelId,
        skus: &[Sku],
    ) -> Result<Availability, PortError>;
    /// All-or-nothing hold that expires after `ttl` unless confirmed; counts capacity.
    async fn reserve(
        &self,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError>;
    /// Moves a checkout hold into the order's reservation in one step.
    async fn convert_hold(
        &self,
        hold: &ReservationId,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError>;
    async fn confirm(&self, id: &ReservationId) -> Result<(), PortError>;
    /// Gives a hold back before its order exists (the saga's compensation only).
    async fn release(&self, id: &ReservationId, reason: &str) -> Result<(), PortError>;
    /// `None` when inventory never saw this id.
    async fn get_reservation(
        &self,
        id: &ReservationId,
    ) -> Result<Option<ReservationView>, PortError>;
}

/// An identity as the member service knows it (`phone`, `email`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRef {
    pub kind: String,
    pub value: String,
}

#[async_trait]
pub trait MemberPort: Send + Sync {
    async fn resolve(&self, identity: &IdentityRef) -> Result<uuid::Uuid, PortError>;
    /// Pending redemption for `order`, expiring after `ttl` unless confirmed. Idempotent on the
    /// order id. `Refused { reason: "INSUFFICIENT_POINTS" }` when the balance is short.
    async fn redeem(
        &self,
        member: uuid::Uuid,
        order: uuid::Uuid,
        points: u64,
        channel: &ChannelId,
        ttl: Duration,
    ) -> Result<(), PortError>;
    async fn confirm_redemption(&self, order: uuid::Uuid) -> Result<(), PortError>;
}
