//! A tower layer on every server: calls by service, method and status code, and their latency.
//!
//! The status is read from the response headers: an error from a unary handler, an interceptor
//! or an unknown route is a trailers-only response carrying `grpc-status` there; a response
//! without it is a success whose status follows in the trailers. For server streams this is
//! the time to the first headers, and an error after the stream started counts as `OK`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::Code;
use tower::{Layer, Service};

use crate::metrics::{Counter, Histogram, LATENCY_BUCKETS};

static REQUESTS: Counter = Counter::new(
    "grpc_server_requests_total",
    "gRPC calls answered, by service, method and status code.",
);
static LATENCY: Histogram = Histogram::new(
    "grpc_server_request_duration_seconds",
    "Time from receiving a gRPC call to sending its response headers, by service and method.",
    LATENCY_BUCKETS,
);

#[derive(Debug, Clone, Copy, Default)]
pub struct CallMetricsLayer;

impl<S> Layer<S> for CallMetricsLayer {
    type Service = CallMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CallMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> Service<http::Request<B>> for CallMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => status_of(response.headers()),
                // The transport failed the call before any gRPC status was written.
                Err(_) => Code::Unknown,
            };
            record(&path, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

fn status_of(headers: &http::HeaderMap) -> Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

fn record(path: &str, code: Code, seconds: f64) {
    let (service, method) = route_labels(path, code);
    REQUESTS.inc(&[
        ("service", service),
        ("method", method),
        ("code", code_name(code)),
    ]);
    LATENCY.observe(seconds, &[("service", service), ("method", method)]);
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`). Paths that no route served (answered
/// UNIMPLEMENTED) are folded into `unknown`: they are chosen by the caller, and a scanner must
/// not be able to create series at will.
fn route_labels(path: &str, code: Code) -> (&str, &str) {
    const UNKNOWN: (&str, &str) = ("unknown", "unknown");
    if code == Code::Unimplemented {
        return UNKNOWN;
    }
    path.strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'))
        .unwrap_or(UNKNOWN)
}

/// The canonical names (`INVALID_ARGUMENT`), as dashboards and the gRPC docs spell them.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_split_and_unserved_paths_folded() {
        assert_eq!(
            route_labels("/omni.inventory.v1.InventoryService/Reserve", Code::Ok),
            ("omni.inventory.v1.InventoryService", "Reserve")
        );
        assert_eq!(
            route_labels("/omni.inventory.v1.InventoryService/Reserve", Code::Aborted),
            ("omni.inventory.v1.InventoryService", "Reserve")
        );
        for (path, code) in [
            ("/random.Scanner/Probe", Code::Unimplemented),
            ("/", Code::Ok),
            ("/a/b/c", Code::Ok),
            ("nothing", Code::Ok),
        ] {
            assert_eq!(route_labels(path, code), ("unknown", "unknown"), "{path}");
        }
    }

    #[test]
    fn status_comes_from_the_header_and_defaults_to_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_of(&headers), Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("10"));
        assert_eq!(status_of(&headers), Code::Aborted);
        assert_eq!(code_name(status_of(&headers)), "ABORTED");
    }
}
