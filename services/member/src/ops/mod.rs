//! What the service does, one function per use case: each opens a transaction, locks what it
//! changes, applies a domain operation, writes its rows, ledger entries and outbox events, and
//! commits. The gRPC handlers, the event consumers and the jobs all call these, so a rule holds
//! whichever door a change comes through.

mod error;
mod insights;
mod ledger_txn;
mod members;
mod outbox;
mod points;
mod purchases;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::sync::Notify;

use omni_platform::clock::SharedClock;

pub use error::{OpError, identity_violation};
pub use insights::{ListedPage, MemberFilter, Profile};
pub use members::{EnrollRequest, Export, MemberRef};
pub use outbox::timestamp as outbox_timestamp;
pub use points::{Balance, LedgerPage};
pub use purchases::{PurchaseOutcome, PurchaseRequest, ReturnOutcome, ReturnRequest};

use crate::config::Policy;

/// The consumer name under which order events are claimed in the inbox.
pub const ORDERS_CONSUMER: &str = "member.orders";

#[derive(Clone)]
pub struct MemberOps {
    db: DatabaseConnection,
    clock: SharedClock,
    policy: Arc<Policy>,
    /// Pokes the outbox relay after a commit that enqueued events.
    relay: Option<Arc<Notify>>,
}

impl MemberOps {
    pub fn new(
        db: DatabaseConnection,
        clock: SharedClock,
        policy: Policy,
        relay: Option<Arc<Notify>>,
    ) -> Self {
        Self {
            db,
            clock,
            policy: Arc::new(policy),
            relay,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The injected clock's time: the gRPC layer dates page tokens with it too.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    async fn begin(&self) -> Result<DatabaseTransaction, OpError> {
        Ok(self
            .db
            .begin()
            .await
            .map_err(crate::store::StoreError::from)?)
    }

    async fn commit(&self, txn: DatabaseTransaction) -> Result<(), OpError> {
        txn.commit().await.map_err(crate::store::StoreError::from)?;
        if let Some(relay) = &self.relay {
            relay.notify_one();
        }
        Ok(())
    }
}
