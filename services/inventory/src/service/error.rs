use omni_platform::grpc::{ApiError, FieldViolation, PreconditionViolation};
use omni_types::{LocationId, ReservationId};

use crate::domain::{InvalidRequest, StateError};
use crate::reservations::{GateError, Shortfall};
use crate::store::StoreError;

/// What went wrong, named by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{0}")]
    Invalid(InvalidRequest),
    #[error("location {id} not found ({field})")]
    UnknownLocation { field: String, id: String },
    #[error("reservation {0} not found")]
    UnknownReservation(String),
    #[error("not enough stock")]
    Insufficient(Vec<Shortfall>),
    #[error("no fulfilment capacity left today")]
    CapacityExhausted(Vec<LocationId>),
    #[error("locations not active: {0:?}")]
    InactiveLocations(Vec<(String, LocationId)>),
    #[error("reservation {0} is still being made; retry")]
    InProgress(ReservationId),
    #[error("reservation {0} already exists with other lines")]
    IdReused(ReservationId),
    #[error("reservation {id}: {error}")]
    State {
        id: ReservationId,
        error: StateError,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<GateError> for InventoryError {
    fn from(error: GateError) -> Self {
        match error {
            GateError::Unavailable(reason) => Self::Unavailable(reason),
            GateError::EpochMismatch { .. } => {
                Self::Unavailable("stock counters were rebuilt meanwhile; retry".to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for InventoryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable { message, .. } => Self::Unavailable(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<InvalidRequest> for InventoryError {
    fn from(error: InvalidRequest) -> Self {
        Self::Invalid(error)
    }
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::Invalid(InvalidRequest(violations)) => ApiError::InvalidArgument(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect(),
            ),
            InventoryError::UnknownLocation { field, id } => {
                ApiError::InvalidArgument(vec![FieldViolation::new(
                    field,
                    format!("location {id} does not exist"),
                )])
            }
            InventoryError::UnknownReservation(id) => ApiError::not_found("reservation", id),
            InventoryError::Insufficient(shortfalls) => {
                let message = shortfalls
                    .iter()
                    .map(|s| {
                        format!(
                            "{} at {}: {} requested, {} available",
                            s.sku,
                            s.location,
                            s.requested,
                            s.available.max(0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::PreconditionFailures {
                    reason: "INSUFFICIENT_STOCK",
                    message: format!("not enough stock: {message}"),
                    failures: shortfalls
                        .into_iter()
                        .map(|s| PreconditionViolation {
                            kind: "INSUFFICIENT_STOCK".to_owned(),
                            subject: format!("sku/{}/location/{}", s.sku, s.location),
                            description: format!(
                                "{} requested, {} available",
                                s.requested,
                                s.available.max(0)
                            ),
                        })
                        .collect(),
                }
            }
            InventoryError::CapacityExhausted(locations) => ApiError::PreconditionFailures {
                reason: "CAPACITY_EXHAUSTED",
                message: format!(
                    "no fulfilment capacity left today at {}",
                    locations
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                failures: locations
                    .into_iter()
                    .map(|l| PreconditionViolation {
                        kind: "CAPACITY_EXHAUSTED".to_owned(),
                        subject: format!("location/{l}"),
                        description: "daily fulfilment capacity used up".to_owned(),
                    })
                    .collect(),
            },
            InventoryError::InactiveLocations(lines) => ApiError::PreconditionFailures {
                reason: "LOCATION_INACTIVE",
                message: "some lines name an inactive location".to_owned(),
                failures: lines
                    .into_iter()
                    .map(|(field, l)| PreconditionViolation {
                        kind: "LOCATION_INACTIVE".to_owned(),
                        subject: format!("location/{l}"),
                        description: format!("{field}: location {l} is not active"),
                    })
                    .collect(),
            },
            InventoryError::InProgress(id) => ApiError::Aborted {
                reason: "IN_PROGRESS",
                message: format!("reservation {id} is still being made; retry"),
                metadata: vec![("reservation_id".to_owned(), id.to_string())],
            },
            InventoryError::IdReused(id) => ApiError::AlreadyExists {
                message: format!("reservation {id} already exists with other lines; use a new id"),
            },
            InventoryError::State { id, error } => ApiError::FailedPrecondition {
                reason: "INVALID_STATE",
                message: format!("reservation {id}: {error}"),
                metadata: vec![("reservation_id".to_owned(), id.to_string())],
            },
            InventoryError::Unavailable(message) => ApiError::unavailable(message),
            InventoryError::Internal(detail) => ApiError::internal(detail),
        }
    }
}
