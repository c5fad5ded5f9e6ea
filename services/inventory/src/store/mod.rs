//! PostgreSQL (or SQLite, embedded) as the record of stock: locations, the movement ledger, stock
//! levels, reservations and capacity used. Every change and its outbox events are written in one
//! transaction.

pub mod entities;
mod hold_batch;
mod locations;
mod reservations;
mod snapshot;
mod sql;
mod stock;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, SqlErr};

pub use reservations::{
    HoldChange, InsertHold, SettleAction, SettleRefused, Settled, StoredReservation,
};
pub use snapshot::{AuditedLevel, Drift};
pub use stock::{AppliedMovement, MovementFilter, MovementRequest};

/// The inventory database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Started on the first hold, inside the runtime; PostgreSQL only.
    hold_batcher: Arc<OnceLock<hold_batch::HoldBatcher>>,
    max_hold_wait: Duration,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            hold_batcher: Arc::default(),
            max_hold_wait: Duration::from_secs(1),
        }
    }

    /// How long an accepted hold may wait for its PostgreSQL write to start before it is refused
    /// (1 s unless set): at most the statement timeout, so wait and write together stay inside
    /// the hold grace.
    pub fn with_max_hold_wait(mut self, max_wait: Duration) -> Self {
        self.max_hold_wait = max_wait;
        self
    }

    fn hold_batcher(&self) -> &hold_batch::HoldBatcher {
        self.hold_batcher
            .get_or_init(|| hold_batch::HoldBatcher::start(self.db.clone(), self.max_hold_wait))
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// Storage failures sorted by what the caller can do about them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (a replayed id or idempotency key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or timed out. When `ambiguous`, a commit may or may not
    /// have happened and the caller must not undo anything it did elsewhere.
    #[error("database unavailable: {message}")]
    Unavailable { message: String, ambiguous: bool },
    /// Stored data that does not parse: a bug or a manual edit.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                ambiguous: true,
                ..
            }
        )
    }

    /// A failure of a statement that commits on its own: what the server answered is certain
    /// (it rolled the statement back), what never reached it did nothing, and anything else (a
    /// connection lost on the way) may have committed.
    pub(crate) fn from_autocommit(error: DbErr) -> Self {
        use sea_orm::sqlx::Error;
        let certain = match &error {
            DbErr::ConnectionAcquire(_) => true,
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
                matches!(
                    e.as_ref(),
                    Error::Database(_) | Error::PoolTimedOut | Error::PoolClosed
                )
            }
            _ => false,
        };
        if certain {
            error.into()
        } else {
            Self::at_commit(error)
        }
    }

    /// The same failure, seen at `COMMIT`: whatever it was, the outcome is unknown.
    pub(crate) fn at_commit(error: DbErr) -> Self {
        Self::Unavailable {
            message: error.to_string(),
            ambiguous: true,
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return Self::Conflict(detail);
        }
        match &error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable {
                message: error.to_string(),
                ambiguous: false,
            },
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_transient(e.as_ref()) =>
            {
                Self::Unavailable {
                    message: error.to_string(),
                    ambiguous: false,
                }
            }
            _ => Self::Other(error.to_string()),
        }
    }
}

fn is_transient(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => true,
        // 57014 query_canceled (statement_timeout), 40001 serialization, 40P01 deadlock,
        // 55P03 lock_not_available, 57P01 admin shutdown.
        Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("57014" | "40001" | "40P01" | "55P03" | "57P01")
        ),
        _ => false,
    }
}
