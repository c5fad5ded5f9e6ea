use sea_orm::{DbErr, SqlErr};

/// Storage failures sorted by what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (an identity, a receipt, an order's redemption): another request
    /// got there first; read what is there and answer from it.
    #[error("already stored: {0}")]
    Conflict(String),
    /// The database is down, timed out or cancelled the statement: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Rows that break an invariant the code relies on: an operator must look.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return Self::Conflict(detail);
        }
        match error {
            DbErr::Json(detail) | DbErr::Type(detail) => Self::Corrupt(detail),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Corrupt(error.to_string())
    }
}
