//! The gRPC server every service runs: its own services plus the standard health service and
//! reflection, a span per call continuing the caller's trace, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use super::call_metrics::CallMetricsLayer;
use crate::telemetry;
use crate::tls::ServerTls;

/// The services a server will host, collected before binding.
pub struct GrpcServices {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    tls: Option<ServerTls>,
}

impl Default for GrpcServices {
    fn default() -> Self {
        Self::new()
    }
}

impl GrpcServices {
    pub fn new() -> Self {
        Self {
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            descriptor_sets: Vec::new(),
            tls: None,
        }
    }

    /// Serves over TLS (mutual when `tls` requires client certificates); `None` = plaintext.
    pub fn tls(mut self, tls: Option<ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Adds a service; its name is reported `SERVING` by the health service while the server runs.
    pub fn with_service<S>(mut self, svc: S) -> Self
    where
        S: Service<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(svc);
        self
    }

    /// Registers an encoded `FileDescriptorSet` for reflection.
    pub fn reflect(mut self, descriptor_set: &'static [u8]) -> Self {
        self.descriptor_sets.push(descriptor_set);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("TLS settings: {0}")]
    Tls(String),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server that is listening. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reports `NOT_SERVING`, stops accepting calls, lets in-flight calls finish, then returns.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(ServerError::Reflection(format!(
                "server task failed: {join}"
            ))),
        }
    }

    /// Waits until the server stops by itself (after `stop_on` resolved).
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(ServerError::Reflection(format!(
                "server task failed: {join}"
            ))),
        }
    }
}

/// How long in-flight calls get after a shutdown signal; Kubernetes' grace period is set above it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Binds `addr` (port 0 picks a free port) and serves `services` until `stop_on` resolves or
/// [`RunningServer::shutdown`] is called.
pub async fn serve(
    addr: SocketAddr,
    services: GrpcServices,
    stop_on: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in &services.names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in &services.descriptor_sets {
        reflection = reflection.register_encoded_file_descriptor_set(set);
    }
    let reflection = reflection
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;

    let mut routes = services.routes;
    routes.add_service(health_service).add_service(reflection);
    let routes: Routes = routes.routes();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &services.tls {
        builder = builder
            .tls_config(tls.tonic_config())
            .map_err(|e| ServerError::Tls(e.to_string()))?;
    }

    let (stop, mut stopped) = watch::channel(false);
    let names = services.names.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            tokio::select! {
                _ = stop_on => {},
                _ = stopped.wait_for(|s| *s) => {},
            }
            mark_not_serving(&reporter, &names).await;
            tracing::info!(%local_addr, "gRPC server draining");
        };
        builder
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .trace_fn(call_span)
            .layer(CallMetricsLayer)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                // `tcp_nodelay` above applies only to sockets tonic binds itself; accepted
                // sockets need it here, or small answers wait out Nagle's 40 ms.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            )
            .await
            .map_err(ServerError::from)
    });
    tracing::info!(%local_addr, "gRPC server listening");
    Ok(RunningServer {
        local_addr,
        stop,
        task,
    })
}

async fn mark_not_serving(reporter: &HealthReporter, names: &[&'static str]) {
    for name in names {
        reporter
            .set_service_status(*name, ServingStatus::NotServing)
            .await;
    }
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
}

/// One span per call, named by the method, continuing the trace in the caller's metadata.
fn call_span(request: &Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %request.uri().path(),
    );
    telemetry::set_parent_from(&span, &telemetry::HeaderExtractor(request.headers()));
    span
}

/// Resolves on ctrl-c or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
