//! One way to turn a failure into a gRPC status with rich details (ARCHITECTURE §5).
//!
//! Each service converts its domain errors into [`ApiError`] in one `From` impl; this module turns
//! that into a `tonic::Status` with `google.rpc.BadRequest` field violations and `ErrorInfo`
//! reasons, so a client can act on the code and the reason without parsing messages.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error Omni returns.
pub const ERROR_DOMAIN: &str = "omni";

/// A request field that was refused, named as the client wrote it (`lines[2].quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// One failed precondition: what kind, about what, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    pub kind: String,
    pub subject: String,
    pub description: String,
}

/// What the caller should do, not which call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Fix the request: nothing was written.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// The resource is in a state that does not allow this; `reason` is machine-readable
    /// (`INSUFFICIENT_STOCK`, `INVALID_TRANSITION`, …).
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
        metadata: Vec<(String, String)>,
    },
    /// Like `FailedPrecondition`, with one `google.rpc.PreconditionFailure` violation per thing
    /// that failed (e.g. each line without stock: type `INSUFFICIENT_STOCK`, subject
    /// `sku/<sku>/location/<id>`), so a client can tell the customer which line is short.
    #[error("{message}")]
    PreconditionFailures {
        reason: &'static str,
        message: String,
        failures: Vec<PreconditionViolation>,
    },
    /// Lost a race or the same request is still in flight: retry.
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
        metadata: Vec<(String, String)>,
    },
    /// An idempotency key or id was reused with a different payload.
    #[error("{message}")]
    AlreadyExists { message: String },
    /// A dependency is down or rebuilding: retry with backoff.
    #[error("{message}")]
    Unavailable { message: String },
    #[error("{message}")]
    Unauthenticated { message: String },
    #[error("{message}")]
    PermissionDenied { message: String },
    /// A bug or an unexpected failure; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

fn error_info(reason: &str, metadata: &[(String, String)]) -> ErrorDetails {
    let metadata: HashMap<String, String> = metadata.iter().cloned().collect();
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match error {
            ApiError::InvalidArgument(violations) => {
                let message = format!("invalid request: {}", describe(&violations));
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ApiError::NotFound { resource, id } => Status::with_error_details(
                Code::NotFound,
                format!("{resource} {id} not found"),
                error_info(
                    "NOT_FOUND",
                    &[
                        ("resource".to_owned(), resource.to_owned()),
                        ("id".to_owned(), id),
                    ],
                ),
            ),
            ApiError::FailedPrecondition {
                reason,
                message,
                metadata,
            } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                error_info(reason, &metadata),
            ),
            ApiError::PreconditionFailures {
                reason,
                message,
                failures,
            } => {
                let mut details = error_info(reason, &[]);
                for f in failures {
                    details.add_precondition_failure_violation(f.kind, f.subject, f.description);
                }
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            ApiError::Aborted {
                reason,
                message,
                metadata,
            } => Status::with_error_details(Code::Aborted, message, error_info(reason, &metadata)),
            ApiError::AlreadyExists { message } => Status::with_error_details(
                Code::AlreadyExists,
                message,
                error_info("ALREADY_EXISTS", &[]),
            ),
            ApiError::Unavailable { message } => Status::with_error_details(
                Code::Unavailable,
                message,
                error_info("UNAVAILABLE", &[]),
            ),
            ApiError::Unauthenticated { message } => Status::unauthenticated(message),
            ApiError::PermissionDenied { message } => Status::permission_denied(message),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error; see the service log")
            }
        }
    }
}

/// Reads the `ErrorInfo` reason of a status (for clients and tests).
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

/// Reads the precondition failures of a status (for clients and tests).
pub fn precondition_failures_of(status: &Status) -> Vec<PreconditionViolation> {
    status
        .get_details_precondition_failure()
        .map(|pf| {
            pf.violations
                .into_iter()
                .map(|v| PreconditionViolation {
                    kind: v.r#type,
                    subject: v.subject,
                    description: v.description,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the field violations of a status (for clients and tests).
pub fn violations_of(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|br| {
            br.field_violations
                .into_iter()
                .map(|v| FieldViolation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_survive_the_wire_format() {
        let status: Status = ApiError::InvalidArgument(vec![
            FieldViolation::new("lines[0].quantity", "must be between 1 and 100000, got 0"),
            FieldViolation::new("reservation_id", "must not be empty"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("lines[0].quantity"));
        let violations = violations_of(&status);
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[1].field, "reservation_id");
    }

    #[test]
    fn reasons_are_machine_readable() {
        let status: Status = ApiError::FailedPrecondition {
            reason: "INSUFFICIENT_STOCK",
            message: "SKU-1 at store-1: 2 requested, 1 available".into(),
            metadata: vec![("sku".into(), "SKU-1".into())],
        }
        .into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(reason_of(&status).as_deref(), Some("INSUFFICIENT_STOCK"));
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let status: Status = ApiError::internal("password=hunter2 in a stack").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
