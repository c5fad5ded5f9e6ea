//! The admin HTTP listener (`METRICS_ADDR`): `GET /metrics` in the Prometheus text format and
//! `GET /healthz` for a liveness probe that does not need a gRPC client.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// What Prometheus expects for the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is taken or not ours: fix `METRICS_ADDR`.
    #[error("METRICS_ADDR: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The endpoint did not answer as expected (scrape only).
    #[error("scraping {addr}: {reason}")]
    Scrape { addr: SocketAddr, reason: String },
}

/// A running admin listener. Dropping it stops it; [`MetricsServer::shutdown`] also waits.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
    stop: DropGuard,
}

impl MetricsServer {
    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn shutdown(self) {
        let Self { task, stop, .. } = self;
        drop(stop);
        if let Err(error) = task.await {
            tracing::warn!(%error, "metrics endpoint task failed");
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the process registry until shut down.
pub async fn serve_metrics(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }));
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    tracing::info!(%local_addr, "metrics endpoint listening");
    Ok(MetricsServer {
        local_addr,
        task,
        stop: stop.drop_guard(),
    })
}

async fn metrics() -> impl IntoResponse {
    ([(CONTENT_TYPE, TEXT_FORMAT)], super::global().render())
}

/// `GET /metrics` from `addr`, returning the body: for tests, and for probes in environments
/// without an HTTP client. Plain HTTP/1.1 with `Connection: close`, as the endpoint serves it.
pub async fn scrape(addr: SocketAddr) -> Result<String, MetricsError> {
    let fail = |reason: String| MetricsError::Scrape { addr, reason };
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(raw).map_err(|e| fail(e.to_string()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("no end of headers".to_owned()))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("answered {status:?}")));
    }
    Ok(body.to_owned())
}
