//! The one conversion from the service's errors to the API's.

use omni_platform::grpc::ApiError;

use crate::ops::OpError;

impl From<OpError> for ApiError {
    fn from(error: OpError) -> Self {
        match error {
            OpError::Invalid(violations) => ApiError::InvalidArgument(violations),
            OpError::NotFound { resource, id } => ApiError::NotFound { resource, id },
            OpError::IdentityTaken { .. } | OpError::Conflict(_) => ApiError::AlreadyExists {
                message: error.to_string(),
            },
            OpError::NotActive { member, .. } => ApiError::FailedPrecondition {
                reason: "MEMBER_NOT_ACTIVE",
                message: error.to_string(),
                metadata: vec![("member_id".to_owned(), member.to_string())],
            },
            OpError::SameMember => ApiError::precondition("SAME_MEMBER", error.to_string()),
            OpError::InsufficientPoints {
                requested,
                available,
            } => ApiError::FailedPrecondition {
                reason: "INSUFFICIENT_POINTS",
                message: error.to_string(),
                metadata: vec![
                    ("requested".to_owned(), requested.to_string()),
                    ("balance".to_owned(), available.to_string()),
                ],
            },
            OpError::RedemptionExpired { .. } => {
                ApiError::precondition("REDEMPTION_EXPIRED", error.to_string())
            }
            OpError::Precondition { reason, message } => ApiError::precondition(reason, message),
            OpError::NotYetCompleted { .. } => {
                ApiError::precondition("ORDER_NOT_COMPLETED", error.to_string())
            }
            OpError::Busy(message) => ApiError::Aborted {
                reason: "CONCURRENT_CHANGE",
                message,
                metadata: Vec::new(),
            },
            OpError::Unavailable(message) => ApiError::Unavailable { message },
            OpError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}
