//! Wiring: migrations, the pool, the gRPC server, the outbox relay, the consumer and the jobs.

use std::net::SocketAddr;
use std::sync::Arc;

use omni_platform::clock::{SharedClock, system_clock};
use omni_platform::db::{self, DbOptions};
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::outbox::{OutboxRelay, RelayConfig};
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{BusError, ConsumerHandle, EventBus, ParkedMessages, Subscription};
use omni_platform::grpc::{GrpcServices, RunningServer, ServerError, serve};
use omni_platform::metrics::{MetricsError, MetricsServer, serve_metrics};
use omni_platform::paging::{self, KeySource, PageTokens};
use omni_proto::member::v1::member_service_server::MemberServiceServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::config::MemberConfig;
use crate::events::{OrdersConsumer, subscription};
use crate::grpc::MemberGrpc;
use crate::jobs::Jobs;
use crate::ops::{MemberOps, ORDERS_CONSUMER};

/// The service's short name: source of its events, its migration lock, its queues' prefix.
pub const SHORT_NAME: &str = "member";

/// What the host provides, so `omni up` can share one in-process bus between services.
#[derive(Clone)]
pub struct Infra {
    pub bus: Arc<dyn EventBus>,
    pub parked: Option<Arc<dyn ParkedMessages>>,
    pub clock: SharedClock,
    /// The consumer queue; `member.orders` in production. Queue names are broker-wide, so
    /// tests sharing one broker give each application its own.
    pub orders_queue: String,
}

impl Infra {
    /// RabbitMQ when `AMQP_URL` is set, otherwise an in-process bus; the system clock.
    pub async fn from_config(config: &MemberConfig) -> Result<Self, StartError> {
        match &config.amqp_url {
            Some(url) => {
                let bus = RabbitMqBus::connect(url.expose(), Topology::default(), SHORT_NAME)
                    .await
                    .map_err(StartError::Bus)?;
                Ok(Self {
                    bus: Arc::new(bus.clone()),
                    parked: Some(Arc::new(bus)),
                    clock: system_clock(),
                    orders_queue: ORDERS_CONSUMER.to_owned(),
                })
            }
            None => {
                let bus = InProcessBus::new();
                Ok(Self {
                    bus: Arc::new(bus.clone()),
                    parked: Some(Arc::new(bus)),
                    clock: system_clock(),
                    orders_queue: ORDERS_CONSUMER.to_owned(),
                })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("event bus: {0}")]
    Bus(BusError),
    #[error("gRPC server: {0}")]
    Server(#[from] ServerError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

pub struct Application {
    server: RunningServer,
    consumer: ConsumerHandle,
    jobs: JoinHandle<()>,
    relay: JoinHandle<()>,
    stop_jobs: CancellationToken,
    stop_relay: CancellationToken,
    ops: MemberOps,
    metrics: Option<MetricsServer>,
}

impl Application {
    pub async fn build(config: MemberConfig, infra: Infra) -> Result<Self, StartError> {
        let url = config.database_url.expose();
        db::migrate::<omni_member_migration::Migrator>(url, SHORT_NAME).await?;
        let pool = db::connect(
            url,
            &DbOptions {
                application_name: SHORT_NAME.to_owned(),
                ..DbOptions::default()
            },
        )
        .await?;

        let relay = OutboxRelay::connect(
            url,
            &pool,
            infra.bus.clone(),
            RelayConfig {
                clock: infra.clock.clone(),
                service: SHORT_NAME,
                ..RelayConfig::default()
            },
        )
        .await?;
        let ops = MemberOps::new(
            pool,
            infra.clock.clone(),
            config.policy.clone(),
            Some(relay.notifier()),
        );

        // A per-process key is fine for one process; behind a load balancer the next page may
        // land on a replica that cannot open the token. Verifying tokens with a public key is
        // how production runs, so there it is worth a warning.
        match (config.page_token_key_source, config.auth.is_some()) {
            (KeySource::Random, true) => tracing::warn!(
                "PAGE_TOKEN_SECRET is unset: page tokens are signed with a per-process key and a next page served by another replica is refused; give every replica the same PAGE_TOKEN_SECRET"
            ),
            (KeySource::Random, false) => tracing::info!(
                "page tokens are signed with a per-process key; set PAGE_TOKEN_SECRET when running several replicas"
            ),
            _ => {}
        }
        let tokens = PageTokens::new(&config.page_token_key, paging::DEFAULT_TTL);
        let grpc = MemberGrpc::new(ops.clone(), config.auth.is_some(), tokens);
        let services = match &config.auth {
            Some(verifier) => GrpcServices::new().with_service(InterceptedService::new(
                MemberServiceServer::new(grpc),
                verifier.interceptor(),
            )),
            None => GrpcServices::new().with_service(MemberServiceServer::new(grpc)),
        }
        .reflect(omni_proto::FILE_DESCRIPTOR_SET)
        .tls(config.tls.clone());
        let server = serve(config.listen_addr, services, std::future::pending()).await?;

        let stop_relay = CancellationToken::new();
        let relay = relay.spawn(stop_relay.clone());
        let consumer = infra
            .bus
            .subscribe(
                Subscription {
                    queue: infra.orders_queue.clone(),
                    ..subscription()
                },
                Arc::new(OrdersConsumer::new(ops.clone())),
            )
            .await
            .map_err(StartError::Bus)?;
        let stop_jobs = CancellationToken::new();
        let jobs = Jobs::new(ops.clone()).spawn(
            infra.clock.clone(),
            config.job_interval,
            stop_jobs.clone(),
        );
        let metrics = match config.metrics_addr {
            Some(addr) => Some(serve_metrics(addr).await?),
            None => None,
        };
        Ok(Self {
            server,
            consumer,
            jobs,
            relay,
            stop_jobs,
            stop_relay,
            ops,
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

    /// The operations behind the API (tests and `omni` admin commands use them directly).
    pub fn ops(&self) -> &MemberOps {
        &self.ops
    }

    /// Stops taking calls, then the consumer, the jobs and last the relay, so events written
    /// by the work that was still finishing get published.
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "gRPC server stopped with an error");
        }
        self.consumer.shutdown().await;
        self.stop_jobs.cancel();
        if let Err(e) = self.jobs.await {
            tracing::error!(error = %e, "job runner failed");
        }
        self.stop_relay.cancel();
        if let Err(e) = self.relay.await {
            tracing::error!(error = %e, "outbox relay failed");
        }
        if let Some(metrics) = self.metrics {
            metrics.shutdown().await;
        }
    }
}
