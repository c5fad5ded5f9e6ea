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

use std::sync::Arc;
use std::time::Duration;

use omni_platform::clock::SharedClock;
use tokio::sync::{Notify, RwLock};

use crate::reservations::{Epoch, GateStatus, ReservationGate};
use crate::store::Store;

pub use error::InventoryError;
pub use rebuild::RebuildReport;
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
    catalogue: RwLock<Option<Arc<locations::Catalogue>>>,
    catalogue_load: tokio::sync::Mutex<()>,
    /// Poked after a commit that wrote outbox rows, so the relay publishes without waiting.
    outbox: Arc<Notify>,
    /// Poked when the gate has no epoch, so the rebuild job starts at once.
    rebuild_needed: Arc<Notify>,
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
            catalogue: RwLock::new(None),
            catalogue_load: tokio::sync::Mutex::new(()),
            outbox,
            rebuild_needed: Arc::new(Notify::new()),
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

    /// The gate's epoch, or UNAVAILABLE (and a rebuild kicked off) when it has none.
    pub(crate) async fn ready_epoch(&self) -> Result<Epoch, InventoryError> {
        match self.gate.status().await? {
            GateStatus::Ready { epoch } => Ok(epoch),
            GateStatus::Missing => {
                self.rebuild_needed.notify_one();
                Err(InventoryError::Unavailable(
                    "stock counters are being rebuilt; retry shortly".to_owned(),
                ))
            }
            GateStatus::Rebuilding => Err(InventoryError::Unavailable(
                "stock counters are being rebuilt; retry shortly".to_owned(),
            )),
        }
    }
}
