//! The running service: migrations, pool, peers, gRPC server, outbox relay, consumers, jobs.

use std::net::SocketAddr;
use std::sync::Arc;

use omni_platform::clock::{SharedClock, system_clock};
use omni_platform::db::{DbOptions, connect, is_sqlite, migrate};
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::outbox::{OutboxRelay, RelayConfig};
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{ConsumerHandle, EventBus, ParkedMessages};
use omni_platform::grpc::client::CallContext;
use omni_platform::grpc::{GrpcServices, RunningServer, serve};
use omni_platform::metrics::{MetricsError, MetricsServer, serve_metrics};
use omni_proto::orders::v1::order_service_server::OrderServiceServer;
use omni_proto::orders::v1::store_service_server::StoreServiceServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clients::{GrpcInventory, GrpcMember, InventoryPort, MemberPort};
use crate::config::OrdersConfig;
use crate::events::consumers::{
    INVENTORY_QUEUE, InventoryEvents, WAREHOUSE_QUEUE, WarehouseEvents, inventory_subscription,
    warehouse_subscription,
};
use crate::grpc::{OrderApi, StoreApi};
use crate::jobs::{ConfirmationSweeper, PickupExpiry, spawn_every};
use crate::service::{DURABLE_CONNECTIONS, NoProbe, Orders, SagaProbe};

/// What `omni up` shares between services in one process.
pub struct Infra {
    pub bus: Arc<dyn EventBus>,
    pub parked: Option<Arc<dyn ParkedMessages>>,
    pub clock: SharedClock,
    /// The consumers' queue names; tests sharing one broker give each run its own.
    pub queues: ConsumerQueues,
}

/// Queue names of the two consumers (`<short name>.<purpose>` in production).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerQueues {
    pub warehouse: String,
    pub inventory: String,
}

impl Default for ConsumerQueues {
    fn default() -> Self {
        Self {
            warehouse: WAREHOUSE_QUEUE.to_owned(),
            inventory: INVENTORY_QUEUE.to_owned(),
        }
    }
}

impl Infra {
    /// RabbitMQ when `AMQP_URL` is set, otherwise an in-process bus of its own.
    pub async fn from_config(config: &OrdersConfig) -> Result<Self, StartError> {
        match &config.amqp_url {
            Some(url) => {
                let bus = Arc::new(
                    RabbitMqBus::connect(url.expose(), Topology::default(), crate::events::SOURCE)
                        .await
                        .map_err(|e| StartError::Bus(e.to_string()))?,
                );
                Ok(Self {
                    bus: bus.clone(),
                    parked: Some(bus),
                    clock: system_clock(),
                    queues: ConsumerQueues::default(),
                })
            }
            None => {
                let bus = Arc::new(InProcessBus::new());
                Ok(Self {
                    bus: bus.clone(),
                    parked: Some(bus),
                    clock: system_clock(),
                    queues: ConsumerQueues::default(),
                })
            }
        }
    }
}

/// The services order-routing calls. [`Peers::from_config`] in production; tests pass fakes.
pub struct Peers {
    pub inventory: Arc<dyn InventoryPort>,
    pub member: Arc<dyn MemberPort>,
    pub probe: Arc<dyn SagaProbe>,
}

impl Peers {
    pub fn from_config(config: &OrdersConfig) -> Result<Self, StartError> {
        let token = config.service_token.as_ref().map(|t| t.expose().to_owned());
        let context = CallContext::with_token(token.as_deref()).map_err(StartError::Peer)?;
        Ok(Self {
            inventory: Arc::new(
                GrpcInventory::new(
                    &config.inventory_addr,
                    context.clone(),
                    config.peer_deadline,
                    config.peer_tls.as_ref(),
                )
                .map_err(StartError::Peer)?,
            ),
            member: Arc::new(
                GrpcMember::new(
                    &config.member_addr,
                    context,
                    config.peer_deadline,
                    config.peer_tls.as_ref(),
                )
                .map_err(StartError::Peer)?,
            ),
            probe: Arc::new(NoProbe),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DATABASE_URL: {0}")]
    Database(String),
    #[error("AMQP_URL: {0}")]
    Bus(String),
    #[error("LISTEN_ADDR: {0}")]
    Server(String),
    #[error("INVENTORY_ADDR / MEMBER_ADDR / SERVICE_TOKEN: {0}")]
    Peer(String),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

pub struct Application {
    server: RunningServer,
    orders: Orders,
    stop: CancellationToken,
    jobs: Vec<JoinHandle<()>>,
    relay: Option<JoinHandle<()>>,
    relay_stop: CancellationToken,
    consumers: Vec<ConsumerHandle>,
    metrics: Option<MetricsServer>,
}

impl Application {
    pub async fn build(config: OrdersConfig, infra: Infra) -> Result<Self, StartError> {
        let peers = Peers::from_config(&config)?;
        Self::build_with(config, infra, peers).await
    }

    pub async fn build_with(
        config: OrdersConfig,
        infra: Infra,
        peers: Peers,
    ) -> Result<Self, StartError> {
        let url = config.database_url.expose().to_owned();
        if let Some(dir) = sqlite_dir(&url) {
            std::fs::create_dir_all(dir).map_err(|e| StartError::Database(e.to_string()))?;
        }
        migrate::<omni_orders_migration::Migrator>(&url, "omni_orders")
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        // The default 16 connections, split: 12 for durable work, 4 for the writes that skip
        // the flush wait, so a replica asks no more of the server's `max_connections` than
        // another service does.
        let db = connect(
            &url,
            &DbOptions {
                application_name: "orders".to_owned(),
                max_connections: DURABLE_CONNECTIONS,
                ..DbOptions::default()
            },
        )
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
        // SQLite has a single writer: a second pool would only wait for the first.
        let unflushed = if is_sqlite(&url) {
            db.clone()
        } else {
            connect(
                &url,
                &DbOptions {
                    max_connections: UNFLUSHED_CONNECTIONS,
                    application_name: "orders-unflushed".to_owned(),
                    wait_for_flush: false,
                    // The confirmation flags' recordset join is planned from the size of
                    // `orders`; a generic plan cached while the table was young keeps scanning
                    // all of it after it grew, until autovacuum's ANALYZE. A plan per
                    // execution costs ~0.1 ms of planning and follows the table.
                    session_settings: vec![("plan_cache_mode", "force_custom_plan")],
                    ..DbOptions::default()
                },
            )
            .await
            .map_err(|e| StartError::Database(e.to_string()))?
        };
        let relay = OutboxRelay::connect(
            &url,
            &db,
            infra.bus.clone(),
            RelayConfig {
                clock: infra.clock.clone(),
                service: "orders",
                ..RelayConfig::default()
            },
        )
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
        let orders = Orders::new(
            db,
            peers.inventory,
            peers.member,
            infra.clock.clone(),
            relay.notifier(),
            config.settings.clone(),
            peers.probe,
        )
        .with_unflushed_writes(unflushed);
        let relay_stop = CancellationToken::new();
        let relay = relay.spawn(relay_stop.clone());

        let mut consumers = Vec::new();
        for (sub, handler) in [
            (
                warehouse_subscription(&infra.queues.warehouse),
                Arc::new(WarehouseEvents::new(orders.clone()))
                    as Arc<dyn omni_platform::events::EventHandler>,
            ),
            (
                inventory_subscription(&infra.queues.inventory),
                Arc::new(InventoryEvents::new(orders.clone())),
            ),
        ] {
            consumers.push(
                infra
                    .bus
                    .subscribe(sub, handler)
                    .await
                    .map_err(|e| StartError::Bus(e.to_string()))?,
            );
        }

        let stop = CancellationToken::new();
        let expiry = Arc::new(PickupExpiry {
            orders: orders.clone(),
        });
        let sweeper = Arc::new(ConfirmationSweeper {
            orders: orders.clone(),
        });
        let jobs = vec![
            spawn_every(
                "pickup-expiry",
                config.pickup_expiry_interval,
                infra.clock.clone(),
                stop.clone(),
                move |now| {
                    let job = expiry.clone();
                    async move { job.run_once(now).await }
                },
            ),
            spawn_every(
                "confirmation-sweeper",
                config.sweep_interval,
                infra.clock.clone(),
                stop.clone(),
                move |now| {
                    let job = sweeper.clone();
                    async move { job.run_once(now).await }
                },
            ),
        ];

        let order_api = OrderApi::new(orders.clone());
        let store_api = StoreApi::new(orders.clone());
        let services = match &config.verifier {
            Some(verifier) => GrpcServices::new()
                .with_service(tonic::service::interceptor::InterceptedService::new(
                    OrderServiceServer::new(order_api),
                    verifier.interceptor(),
                ))
                .with_service(tonic::service::interceptor::InterceptedService::new(
                    StoreServiceServer::new(store_api),
                    verifier.interceptor(),
                )),
            None => GrpcServices::new()
                .with_service(OrderServiceServer::new(order_api))
                .with_service(StoreServiceServer::new(store_api)),
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
            orders,
            stop,
            jobs,
            relay: Some(relay),
            relay_stop,
            consumers,
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

    /// The use cases, for jobs driven by tests (`PickupExpiry { orders }.run_once(now)`).
    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    /// Stops the server, then the consumers, the jobs and the relay, in that order, so every
    /// change made while stopping still has its events published.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown().await {
            tracing::warn!(%error, "gRPC server did not stop cleanly");
        }
        for consumer in self.consumers.drain(..) {
            consumer.shutdown().await;
        }
        self.stop.cancel();
        for job in self.jobs.drain(..) {
            let _ = job.await;
        }
        self.relay_stop.cancel();
        if let Some(relay) = self.relay.take() {
            let _ = relay.await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.shutdown().await;
        }
    }
}

const UNFLUSHED_CONNECTIONS: u32 = 4;

fn sqlite_dir(url: &str) -> Option<&std::path::Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
}
