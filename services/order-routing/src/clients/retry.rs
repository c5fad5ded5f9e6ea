//! Bounded retries of idempotent peer calls on UNAVAILABLE, and the one mapping of a peer's
//! `tonic::Status` into [`PortError`].

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::PortError;

/// Tries per call: one try and two retries keeps a PlaceOrder well within a client's deadline.
const ATTEMPTS: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Runs `call` until it succeeds, fails with something other than UNAVAILABLE, or the tries
/// are used up. Only for calls that are idempotent on the peer (all of ours are, by id).
pub async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(status) if status.code() == Code::Unavailable && attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

pub fn to_port_error(peer: &'static str, what: impl Into<String>, status: Status) -> PortError {
    let detail = status.message().to_owned();
    match status.code() {
        Code::NotFound => PortError::NotFound { what: what.into() },
        Code::FailedPrecondition => PortError::Refused {
            reason: reason(&status),
            detail,
        },
        Code::Aborted => PortError::InProgress(detail),
        Code::AlreadyExists => PortError::Conflict(detail),
        Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated => {
            PortError::Invalid(format!("{peer}: {detail}"))
        }
        _ => PortError::Unavailable { peer, detail },
    }
}
