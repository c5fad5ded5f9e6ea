//! The one conversion of service errors into API errors.

use omni_platform::grpc::{ApiError, FieldViolation};

use crate::service::ServiceError;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(v) => ApiError::InvalidArgument(
                v.into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect(),
            ),
            ServiceError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            ServiceError::Refused {
                reason,
                message,
                metadata,
            } => ApiError::FailedPrecondition {
                reason,
                message,
                metadata,
            },
            ServiceError::RetryLater(message) => ApiError::Aborted {
                reason: "IN_PROGRESS",
                message,
                metadata: Vec::new(),
            },
            ServiceError::KeyReused(message) => ApiError::AlreadyExists { message },
            ServiceError::Unavailable(message) => ApiError::Unavailable { message },
            ServiceError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

pub fn status(e: ServiceError) -> tonic::Status {
    ApiError::from(e).into()
}
