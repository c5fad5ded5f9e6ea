//! What can go wrong in a CLI command, printed for a person: the gRPC code, the message and
//! the details a service attached (field violations, ErrorInfo reason, precondition failures).

use std::fmt;

use omni_platform::grpc::status::{precondition_failures_of, reason_of, violations_of};

/// Named by what the person at the terminal should do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Fix the command line (bad flag value, missing argument).
    #[error("{0}")]
    Usage(String),
    /// The service refused or failed the call; the details say why.
    #[error("{}", describe_status(.0))]
    Refused(tonic::Status),
    /// Fix the environment: a missing secret, an unreadable file, no broker configured.
    #[error("{0}")]
    Setup(String),
    /// Writing the output failed (closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    pub fn usage(message: impl fmt::Display) -> Self {
        Self::Usage(message.to_string())
    }

    pub fn setup(message: impl fmt::Display) -> Self {
        Self::Setup(message.to_string())
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Refused(status)
    }
}

/// `INVALID_ARGUMENT: <message>` followed by one indented line per detail.
pub fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("{}: {}", code_name(status.code()), status.message());
    if let Some(reason) = reason_of(status) {
        text.push_str(&format!("\n  reason: {reason}"));
    }
    for v in violations_of(status) {
        text.push_str(&format!("\n  field {}: {}", v.field, v.description));
    }
    for f in precondition_failures_of(status) {
        text.push_str(&format!("\n  {} {}: {}", f.kind, f.subject, f.description));
    }
    text
}

/// The canonical upper-case name (`FAILED_PRECONDITION`), as gRPC documentation spells it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use omni_platform::grpc::{ApiError, FieldViolation};

    use super::*;

    #[test]
    fn a_refusal_shows_code_and_every_violation() {
        let status: tonic::Status = ApiError::InvalidArgument(vec![
            FieldViolation::new("lines[0].quantity", "must be between 1 and 100000, got 0"),
            FieldViolation::new("order.channel_id", "must not be empty"),
        ])
        .into();
        let text = CliError::from(status).to_string();
        assert!(text.starts_with("INVALID_ARGUMENT: "), "{text}");
        assert!(text.contains("\n  field lines[0].quantity: must be between 1 and 100000, got 0"));
        assert!(text.contains("\n  field order.channel_id: must not be empty"));
    }

    #[test]
    fn a_precondition_shows_its_reason() {
        let status: tonic::Status =
            ApiError::precondition("INVALID_TRANSITION", "order is CANCELLED").into();
        let text = describe_status(&status);
        assert_eq!(
            text,
            "FAILED_PRECONDITION: order is CANCELLED\n  reason: INVALID_TRANSITION"
        );
    }
}
