//! The inventory use cases: each one orders its writes between the gate (Redis or in-process)
//! and PostgreSQL as ARCHITECTURE §3 prescribes, so a crash between the two leaves the gate
//! showing less than the truth, never more.

mod error;
mod locations;
mod rebuild;
mod reserve;
mod settle;

pub use settle::ReapReport;
mod stock;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use omni_platform::clock::SharedClock;
use tokio::sync::Notify;

use crate::reservations::{Epoch, GateError, GateStatus, ReservationGate};
use crate::store::Store;

pub use error::InventoryError;
pub use rebuild::{InvariantReport, RebuildReport};
pub use reserve::{ReserveCommand, ReserveReply};
pub use stock::{Adjustment, AvailabilityQuery, AvailabilityReply, LocationAvailability};

/// Settings the use cases need (a subset of the service configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// A PENDING hold older than this with no PostgreSQL row is an orphan; a rebuild waits this
    /// long for in-flight writes.
    pub hold_grace: Duration,
    /// TTL of a reservation whose request gave none (an order's until it is confirmed).
    pub default_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold_grace: Duration::from_secs(10),
            default_ttl: Duration::from_secs(120),
        }
    }
}

/// The inventory service's core, shared by the gRPC handlers, the consumers and the jobs.
pub struct Inventory {
    store: Store,
    gate: Arc<dyn ReservationGate>,
    clock: SharedClock,
    settings: Settings,
    /// Locations and pools, read on every reservation and availability call (see `locations`).
    catalogue: locations::CatalogueCache,
    /// Poked after a commit that wrote outbox rows, so the relay publishes without waiting.
    outbox: Arc<Notify>,
    /// Poked when the gate has no epoch, so the rebuild job starts at once.
    rebuild_needed: Arc<Notify>,
    /// The epoch the gate last reported ready. Reservations carry it without asking the gate
    /// first (the gate checks it in the same atomic step), so a refusal in a flash sale costs
    /// one round trip to Redis instead of two.
    epoch_seen: std::sync::Mutex<Option<Epoch>>,
    faults: Faults,
}

/// Failure injection for the hazards of ARCHITECTURE §3, so tests can prove each one is closed.
/// Every flag fires once and is off unless a test sets it.
#[derive(Debug, Default)]
pub struct Faults {
    /// The reservation row commits, then the caller sees an error as if the connection dropped
    /// during COMMIT: the outcome is ambiguous to the service.
    pub lose_commit_acknowledgement: std::sync::atomic::AtomicBool,
}

impl Faults {
    fn fire(flag: &std::sync::atomic::AtomicBool) -> bool {
        flag.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Inventory {
    pub fn new(
        store: Store,
        gate: Arc<dyn ReservationGate>,
        clock: SharedClock,
        settings: Settings,
        outbox: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            gate,
            clock,
            settings,
            catalogue: locations::CatalogueCache::default(),
            outbox,
            rebuild_needed: Arc::new(Notify::new()),
            epoch_seen: std::sync::Mutex::new(None),
            faults: Faults::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn gate(&self) -> &Arc<dyn ReservationGate> {
        &self.gate
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn rebuild_signal(&self) -> Arc<Notify> {
        self.rebuild_needed.clone()
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub(crate) fn events_written(&self) {
        self.outbox.notify_one();
    }

    /// The gate's epoch, asked afresh, or UNAVAILABLE (and a rebuild kicked off) when it has none.
    pub(crate) async fn ready_epoch(&self) -> Result<Epoch, InventoryError> {
        Ok(self.fresh_epoch().await?)
    }

    async fn fresh_epoch(&self) -> Result<Epoch, GateError> {
        let status = self.gate.status().await;
        let epoch = match status {
            Ok(GateStatus::Ready { epoch }) => Some(epoch),
            _ => None,
        };
        *self.epoch_seen_lock() = epoch;
        match status? {
            GateStatus::Ready { epoch } => Ok(epoch),
            GateStatus::Missing => {
                self.rebuild_needed.notify_one();
                Err(GateError::Unavailable(REBUILDING.to_owned()))
            }
            GateStatus::Rebuilding => Err(GateError::Unavailable(REBUILDING.to_owned())),
        }
    }

    /// Runs a gate write that carries the epoch: the last one seen, or the gate's current one
    /// after a mismatch (a rebuild finished meanwhile), once. A refusal as unavailable forgets
    /// the epoch and asks the gate why, which starts a rebuild when the epoch is gone.
    pub(crate) async fn with_epoch<T, F, Fut>(&self, write: F) -> Result<T, GateError>
    where
        F: Fn(Epoch) -> Fut,
        Fut: Future<Output = Result<T, GateError>>,
    {
        let seen = *self.epoch_seen_lock();
        let epoch = match seen {
            Some(epoch) => epoch,
            None => self.fresh_epoch().await?,
        };
        match write(epoch).await {
            Err(GateError::EpochMismatch { .. }) if seen.is_some() => {
                write(self.fresh_epoch().await?).await
            }
            Err(GateError::Unavailable(reason)) => {
                *self.epoch_seen_lock() = None;
                self.fresh_epoch().await?;
                Err(GateError::Unavailable(reason))
            }
            other => other,
        }
    }

    fn epoch_seen_lock(&self) -> std::sync::MutexGuard<'_, Option<Epoch>> {
        // A plain value, consistent even if a holder panicked.
        self.epoch_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const REBUILDING: &str = "stock counters are being rebuilt; retry shortly";
