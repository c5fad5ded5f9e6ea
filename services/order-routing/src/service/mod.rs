//! Use cases: the PlaceOrder saga, order and store commands, event effects, queries and
//! profiles, over the store and the peer ports.

mod candidates;
mod commands;
pub mod error;
mod place;
mod profile_cache;
mod queries;
pub mod record;
mod reroute;

use std::sync::Arc;
use std::time::Duration;

use omni_platform::clock::SharedClock;
use omni_types::OrderId;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, Semaphore};

use crate::clients::{InventoryPort, MemberPort};
use crate::store::confirmation_flags::ConfirmationFlags;
use crate::store::location_catalogues::LocationCatalogues;
use profile_cache::ProfileCache;

pub use commands::{ConfirmOutcome, EffectError, EffectOutcome, Refund, RejectOutcome};
pub use error::{ServiceError, Violation};
pub use place::PlanAnswer;
pub use queries::{ListQuery, ProfileView};

/// Timings of the saga and the store operations.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Expiry of an order's reservation (and redemption) until the order is durable.
    pub reserve_ttl: Duration,
    /// How long a PlaceOrder attempt owns its idempotency key before a retry may take over.
    pub placement_lease: Duration,
    /// Reserve attempts when a race for stock is lost (re-planned each time).
    pub max_plan_attempts: u32,
    /// Pickup hold for stores that have none configured in inventory.
    pub default_pickup_hold: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            reserve_ttl: Duration::from_secs(60),
            placement_lease: Duration::from_secs(30),
            max_plan_attempts: 3,
            default_pickup_hold: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// A hook into the saga, so tests can make the process "die" at the worst moment, or hold two
/// sagas at the same point to make a race happen every time.
#[async_trait::async_trait]
pub trait SagaProbe: Send + Sync {
    /// Called once per PlaceOrder after the first plan and before its Reserve.
    async fn before_reserve(&self, _order: OrderId) {}

    /// Called after stock (and points) are held and before the order is written. An error
    /// stops the saga as a crash would: no compensation, no cleanup.
    fn before_persist(&self, _order: OrderId) -> Result<(), String> {
        Ok(())
    }
}

/// The production probe: does nothing.
pub struct NoProbe;
#[async_trait::async_trait]
impl SagaProbe for NoProbe {}

/// Connections of the pool for durable work (`app.rs`), and so the orders built for their write at
/// once: an order's documents and planner input are tens of kilobytes, and a placement that
/// built them before waiting for a connection would hold them through the wait.
pub const DURABLE_CONNECTIONS: u32 = 12;

#[derive(Clone)]
pub struct Orders {
    db: DatabaseConnection,
    /// The same database, where commits may return before their WAL flush
    /// (`DbOptions::wait_for_flush`); `db` itself unless [`Orders::with_unflushed_writes`]. Only
    /// for writes a crash may lose: the placement claim and the confirmation flags.
    unflushed: DatabaseConnection,
    /// Writes placed orders' confirmation flags through `unflushed`, many in one statement.
    confirmation_flags: Arc<ConfirmationFlags>,
    /// The location catalogue placed orders' planner inputs refer to.
    catalogues: Arc<LocationCatalogues>,
    /// [`DURABLE_CONNECTIONS`] permits, one per order being written.
    order_writes: Arc<Semaphore>,
    inventory: Arc<dyn InventoryPort>,
    member: Arc<dyn MemberPort>,
    clock: SharedClock,
    outbox: Arc<Notify>,
    settings: Settings,
    probe: Arc<dyn SagaProbe>,
    profiles: Arc<ProfileCache>,
}

impl Orders {
    pub fn new(
        db: DatabaseConnection,
        inventory: Arc<dyn InventoryPort>,
        member: Arc<dyn MemberPort>,
        clock: SharedClock,
        outbox: Arc<Notify>,
        settings: Settings,
        probe: Arc<dyn SagaProbe>,
    ) -> Self {
        Self {
            unflushed: db.clone(),
            confirmation_flags: Arc::new(ConfirmationFlags::new(db.clone())),
            db,
            catalogues: Arc::default(),
            order_writes: Arc::new(Semaphore::new(DURABLE_CONNECTIONS as usize)),
            inventory,
            member,
            clock,
            outbox,
            settings,
            probe,
            profiles: Arc::default(),
        }
    }

    /// Writes that a crash may lose go through `unflushed`: a pool on the same database whose
    /// commits do not wait for their WAL flush.
    pub fn with_unflushed_writes(mut self, unflushed: DatabaseConnection) -> Self {
        self.confirmation_flags = Arc::new(ConfirmationFlags::new(unflushed.clone()));
        self.unflushed = unflushed;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
