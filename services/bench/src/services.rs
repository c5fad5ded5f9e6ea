//! The three services as child processes of the harness, so each one's peak RSS is its own and
//! the figures include the real binaries' start-up, relays and consumers.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::rss::peak_rss_kib;

/// A service did not come up; its log file says why.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{service} exited during start-up ({status}); see {log}")]
    Exited {
        service: String,
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("{service} was not SERVING within {waited:?}; see {log}")]
    NotReady {
        service: String,
        waited: Duration,
        log: PathBuf,
    },
    #[error("no free port: {0}")]
    Port(std::io::Error),
    #[error("cannot open log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How long a service may take to migrate its database and report SERVING.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// One running service. Killed when dropped, so a failed run leaves no process behind.
pub struct Service {
    pub name: String,
    pub addr: SocketAddr,
    log: PathBuf,
    child: Child,
}

impl Service {
    /// `http://<addr>`, for clients and peers.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak RSS so far in KiB (`VmHWM`), `None` once the process is gone.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.pid()?)
    }

    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(self.url())?
            .tcp_nodelay(true)
            .connect()
            .await
    }

    /// Stops the process and waits for it; the kernel then frees its memory and ports.
    pub async fn stop(mut self) {
        // SIGKILL: the databases are dropped right after, so a graceful drain buys nothing.
        let _ = self.child.kill().await;
    }
}

/// A port the OS just handed out. Another process could take it before the service binds it;
/// on a bench machine that is rare enough, and the start-up check reports it if it happens.
pub fn free_port() -> Result<SocketAddr, StartError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(StartError::Port)?;
    listener.local_addr().map_err(StartError::Port)
}

/// What to start: `bin_dir/<binary>` with `env` (plus `LISTEN_ADDR`/`METRICS_ADDR` on free ports).
pub struct ServiceSpec<'a> {
    pub name: &'a str,
    pub binary: &'a str,
    pub env: BTreeMap<String, String>,
}

/// Starts the service and waits until its gRPC health check answers SERVING.
pub async fn start(
    bin_dir: &Path,
    log_dir: &Path,
    spec: ServiceSpec<'_>,
) -> Result<Service, StartError> {
    let addr = free_port()?;
    let metrics = free_port()?;
    let binary = bin_dir.join(spec.binary);
    let log = log_dir.join(format!("{}.log", spec.name));
    let out = std::fs::File::create(&log).map_err(|source| StartError::Log {
        path: log.clone(),
        source,
    })?;
    let err = out.try_clone().map_err(|source| StartError::Log {
        path: log.clone(),
        source,
    })?;
    let child = Command::new(&binary)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", addr.to_string())
        .env("METRICS_ADDR", metrics.to_string())
        .env("RUST_LOG", "warn")
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StartError::Spawn { binary, source })?;
    let mut service = Service {
        name: spec.name.to_owned(),
        addr,
        log,
        child,
    };
    wait_serving(&mut service).await?;
    Ok(service)
}

async fn wait_serving(service: &mut Service) -> Result<(), StartError> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = service.child.try_wait() {
            return Err(StartError::Exited {
                service: service.name.clone(),
                status,
                log: service.log.clone(),
            });
        }
        if is_serving(&service.url()).await {
            return Ok(());
        }
        if started.elapsed() > START_DEADLINE {
            return Err(StartError::NotReady {
                service: service.name.clone(),
                waited: START_DEADLINE,
                log: service.log.clone(),
            });
        }
        // Polling interval while the service migrates; not a synchronisation by sleep, the
        // condition is re-checked and bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn is_serving(url: &str) -> bool {
    let Ok(endpoint) = Endpoint::from_shared(url.to_owned()) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
    else {
        return false;
    };
    let mut health = HealthClient::new(channel);
    matches!(
        health.check(HealthCheckRequest { service: String::new() }).await,
        Ok(r) if r.get_ref().status == ServingStatus::Serving as i32
    )
}
