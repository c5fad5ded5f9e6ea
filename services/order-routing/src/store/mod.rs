//! Persistence of orders, placements, routing records, profiles and request keys (sea-orm; the
//! same code runs on PostgreSQL and on SQLite in embedded mode).

pub mod confirmation_flags;
pub mod entities;
pub mod location_catalogues;
pub mod orders;
pub mod placed_order;
pub mod placements;
pub mod profiles;
pub mod request_keys;
pub mod reservations;
pub mod routing_records;
mod stored_forms;

use sea_orm::{DbErr, RuntimeErr};

/// A storage failure, sorted by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or timed out: retry later (UNAVAILABLE).
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// A unique key already holds a row (a concurrent writer won).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored document cannot be read back: a bug or manual edit (INTERNAL).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error (INTERNAL).
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        match &e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(e),
            DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s))
                if matches!(
                    s.as_ref(),
                    sea_orm::sqlx::Error::Io(_)
                        | sea_orm::sqlx::Error::PoolTimedOut
                        | sea_orm::sqlx::Error::PoolClosed
                ) =>
            {
                Self::Unavailable(e)
            }
            _ if e
                .sql_err()
                .is_some_and(|s| matches!(s, sea_orm::SqlErr::UniqueConstraintViolation(_))) =>
            {
                Self::Conflict(e.to_string())
            }
            _ => Self::Database(e),
        }
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
