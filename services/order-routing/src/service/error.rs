//! The one error of the service layer, named by what the caller should do.

use crate::clients::PortError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Fix the named fields; nothing was written.
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// Refused in the current state; `reason` is the machine-readable ErrorInfo reason.
    #[error("{message}")]
    Refused {
        reason: &'static str,
        message: String,
        metadata: Vec<(String, String)>,
    },
    /// The same request is still in flight, or a concurrent change won: retry.
    #[error("{0}")]
    RetryLater(String),
    /// The idempotency key was used with another request.
    #[error("{0}")]
    KeyReused(String),
    /// A dependency (database, inventory, member) is down: retry with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data; logged, not shown.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn refused(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e.to_string()),
            StoreError::Conflict(_) => Self::RetryLater(e.to_string()),
            StoreError::Corrupt(_) | StoreError::Database(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> Self {
        StoreError::from(e).into()
    }
}

impl From<omni_platform::events::EnvelopeError> for ServiceError {
    fn from(e: omni_platform::events::EnvelopeError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<PortError> for ServiceError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            PortError::NotFound { what } => Self::NotFound {
                resource: "resource",
                id: what,
            },
            PortError::InProgress(m) => Self::RetryLater(m),
            PortError::Conflict(m) => Self::Internal(format!("peer conflict: {m}")),
            PortError::Refused { reason, detail } => {
                Self::Internal(format!("peer refused ({reason}): {detail}"))
            }
            PortError::Invalid(m) => Self::Internal(m),
        }
    }
}
