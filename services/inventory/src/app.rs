//! The inventory service as one value: built from its configuration, serving on a bound port,
//! with its relay, consumer and jobs running, and stopped in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use omni_platform::clock::{SharedClock, system_clock};
use omni_platform::db::{DbOptions, connect, migrate};
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::outbox::{OutboxRelay, RelayConfig};
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{ConsumerHandle, EventBus, ParkedMessages};
use omni_platform::grpc::{GrpcServices, RunningServer, serve};
use omni_platform::metrics::{MetricsError, MetricsServer, serve_metrics};
use omni_proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::InventoryConfig;
use crate::events::consumers::{StockEffects, subscription_on};
use crate::grpc::InventoryApi;
use crate::reservations::{MemoryGate, RedisGate, RedisGateConfig, ReservationGate};
use crate::service::{Inventory, Settings};
use crate::store::Store;

/// What the service shares with others in the same process (`omni up` hosts all three).
#[derive(Clone)]
pub struct Infra {
    pub bus: Arc<dyn EventBus>,
    pub parked: Option<Arc<dyn ParkedMessages>>,
    pub clock: SharedClock,
}

impl Infra {
    /// RabbitMQ when `AMQP_URL` is set, otherwise an in-process bus of its own.
    pub async fn from_config(config: &InventoryConfig) -> Result<Self, StartError> {
        match &config.amqp_url {
            Some(url) => {
                let bus = RabbitMqBus::connect(url.expose(), Topology::default(), "inventory")
                    .await
                    .map_err(|e| StartError::Bus(e.to_string()))?;
                let bus = Arc::new(bus);
                Ok(Self {
                    bus: bus.clone(),
                    parked: Some(bus),
                    clock: system_clock(),
                })
            }
            None => {
                let bus = Arc::new(InProcessBus::new());
                Ok(Self {
                    bus: bus.clone(),
                    parked: Some(bus),
                    clock: system_clock(),
                })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DATABASE_URL: {0}")]
    Database(String),
    #[error("REDIS_URL: {0}")]
    Redis(String),
    #[error("AMQP_URL: {0}")]
    Bus(String),
    #[error("LISTEN_ADDR: {0}")]
    Server(String),
    #[error("initial rebuild of the reservation gate failed: {0}")]
    Rebuild(String),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

pub struct Application {
    server: RunningServer,
    inventory: Arc<Inventory>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    consumer: Option<ConsumerHandle>,
    metrics: Option<MetricsServer>,
}

impl Application {
    pub async fn build(config: InventoryConfig, infra: Infra) -> Result<Self, StartError> {
        let url = config.database_url.expose().to_owned();
        if let Some(dir) = sqlite_dir(&url) {
            std::fs::create_dir_all(dir).map_err(|e| StartError::Database(e.to_string()))?;
        }
        migrate::<omni_inventory_migration::Migrator>(&url, "omni_inventory")
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        // Under half the hold grace: a slow transaction cannot commit a reservation row after
        // the reaper has given up on its hold (ARCHITECTURE §3). A batched hold may wait as long
        // again for its write to start.
        let statement_timeout = (config.hold_grace / 2).saturating_sub(Duration::from_millis(50));
        let options = DbOptions {
            statement_timeout,
            application_name: "inventory".to_owned(),
            ..DbOptions::default()
        };
        let db = connect(&url, &options)
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        let gate: Arc<dyn ReservationGate> = match &config.redis_url {
            Some(redis) => Arc::new(
                RedisGate::connect(RedisGateConfig {
                    level_cache_entries: config.level_cache_entries,
                    ..RedisGateConfig::new(redis.expose(), config.key_prefix.clone())
                })
                .await
                .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            None => Arc::new(MemoryGate::new()),
        };
        let stop = CancellationToken::new();
        let relay = OutboxRelay::connect(
            &url,
            &db,
            infra.bus.clone(),
            RelayConfig {
                clock: infra.clock.clone(),
                service: "inventory",
                ..RelayConfig::default()
            },
        )
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
        let notifier = relay.notifier();
        let inventory = Arc::new(Inventory::new(
            Store::new(db).with_max_hold_wait(statement_timeout),
            gate,
            infra.clock.clone(),
            Settings {
                hold_grace: config.hold_grace,
                ..Settings::default()
            },
            notifier,
        ));
        inventory
            .rebuild_if_needed()
            .await
            .map_err(|e| StartError::Rebuild(e.to_string()))?;

        let mut tasks = vec![relay.spawn(stop.clone())];
        tasks.push(spawn_reaper(
            inventory.clone(),
            config.reaper_interval,
            stop.clone(),
        ));
        tasks.push(spawn_rebuild_watch(inventory.clone(), stop.clone()));
        tasks.push(spawn_reconciler(
            inventory.clone(),
            config.reconcile_interval,
            stop.clone(),
        ));
        let consumer = infra
            .bus
            .subscribe(
                subscription_on(&config.stock_effects_queue),
                Arc::new(StockEffects::new(inventory.clone())),
            )
            .await
            .map_err(|e| StartError::Bus(e.to_string()))?;

        let api = InventoryApi::new(inventory.clone());
        let services = match &config.auth {
            Some(verifier) => GrpcServices::new().with_service(
                tonic::service::interceptor::InterceptedService::new(
                    InventoryServiceServer::new(api),
                    verifier.interceptor(),
                ),
            ),
            None => GrpcServices::new().with_service(InventoryServiceServer::new(api)),
        }
        .reflect(omni_proto::FILE_DESCRIPTOR_SET)
        .tls(config.tls.clone());
        let server = serve(config.listen_addr, services, std::future::pending())
            .await
            .map_err(|e| StartError::Server(e.to_string()))?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(serve_metrics(addr).await?),
            None => None,
        };
        Ok(Self {
            server,
            inventory,
            stop,
            tasks,
            consumer: Some(consumer),
            metrics,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where `/metrics` is served, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// Stops taking calls, then the consumer, then the jobs and the relay.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown().await {
            tracing::warn!(%error, "gRPC server did not stop cleanly");
        }
        if let Some(consumer) = self.consumer.take() {
            consumer.shutdown().await;
        }
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.shutdown().await;
        }
    }
}

fn sqlite_dir(url: &str) -> Option<&std::path::Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}

fn spawn_reaper(
    inventory: Arc<Inventory>,
    every: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(error) = inventory.reap(500).await {
                        tracing::warn!(%error, "reaper pass failed");
                    }
                }
            }
        }
    })
}

/// Notices a lost gate (restart, FLUSHALL, failover) within a second, or at once when a
/// reservation found the epoch missing, and rebuilds it.
fn spawn_rebuild_watch(inventory: Arc<Inventory>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let signal = inventory.rebuild_signal();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = signal.notified() => {},
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
            if let Err(error) = inventory.rebuild_if_needed().await {
                tracing::warn!(%error, "gate rebuild failed; retrying");
            }
        }
    })
}

fn spawn_reconciler(
    inventory: Arc<Inventory>,
    every: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    match inventory.reconcile().await {
                        Ok(report) => {
                            crate::metrics::reconciled(&report.drifts);
                            if !report.drifts.is_empty() {
                                tracing::warn!(drift = report.drifts.len(), "reconciler repaired drift");
                            }
                        }
                        Err(error) => tracing::warn!(%error, "reconciler pass failed"),
                    }
                }
            }
        }
    })
}
