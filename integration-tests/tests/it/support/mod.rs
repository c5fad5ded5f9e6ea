//! The whole system in one test process: inventory, order-routing and member, each on its own
//! database, talking over real gRPC ports and one event bus — plus seeding, a warehouse
//! simulator, polling with deadlines, and a tear-down that leaves nothing behind.
//!
//! Two shapes share one API: [`System::start`] (PostgreSQL, Redis, RabbitMQ — the production
//! path) and [`System::embedded`] (SQLite files, one in-process bus, the in-process gate).

mod bus;
mod seed;
mod wait;
mod wms;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use omni_platform::auth::TokenIssuer;
use omni_platform::clock::system_clock;
use omni_platform::config::Env;
use omni_platform::events::EventBus;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::grpc::client::{CallContext, lazy_channel};
use omni_platform::testkit::{TestDatabase, TestRedisPrefix, amqp_url, redis_url};
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_proto::member::v1::member_service_client::MemberServiceClient;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use omni_proto::orders::v1::store_service_client::StoreServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use bus::NamespacedBus;
pub use seed::*;
pub use wait::eventually;
pub use wms::Wms;

/// Shared by the issuer below and the three verifiers; only ever used in tests.
const TEST_SECRET: &str = "integration-tests-hs256-secret-0123456789abcdef";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub type Authed = InterceptedService<Channel, CallContext>;

/// The broker objects and data a RabbitMQ-backed system owns, deleted at tear-down.
struct Broker {
    admin: RabbitMqBus,
    buses: Vec<RabbitMqBus>,
    queues: bus::QueueLog,
}

pub struct System {
    inventory: Option<omni_inventory::app::Application>,
    orders: Option<omni_order_routing::app::Application>,
    member: Option<omni_member::app::Application>,
    issuer: TokenIssuer,
    /// What the warehouse simulator and contract consumers publish and subscribe through.
    pub bus: Arc<dyn EventBus>,
    broker: Option<Broker>,
    /// The exchange RabbitMQ-backed tests bind their own raw queues to.
    pub exchange: Option<String>,
    databases: Vec<TestDatabase>,
    redis: Option<TestRedisPrefix>,
    sqlite_dir: Option<PathBuf>,
    /// One connection per (server, caller), as a storefront keeps: a new TCP connection per call
    /// is not how channels talk to us, and 500 of them at once only measure the kernel.
    channels: std::sync::Mutex<
        std::collections::HashMap<(std::net::SocketAddr, String), (Channel, CallContext)>,
    >,
}

/// Settings that differ between the two shapes; everything else is the same env.
struct Backends {
    inventory_db: String,
    orders_db: String,
    member_db: String,
    redis: Option<(String, String)>,
}

impl System {
    /// The production path: a fresh PostgreSQL database per service, Redis under a fresh key
    /// prefix, one RabbitMQ with a fresh topology and per-test queue names.
    pub async fn start() -> Self {
        let databases = vec![
            TestDatabase::postgres().await,
            TestDatabase::postgres().await,
            TestDatabase::postgres().await,
        ];
        let redis = TestRedisPrefix::new();
        let topology = Topology::unique("it");
        let queues = bus::QueueLog::default();
        // Queue names are broker-wide and inventory hard-codes its own, so every subscription
        // goes through a bus that prefixes it with this test's tag.
        let tag = topology
            .exchange
            .trim_end_matches(".events")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
        let mut buses = Vec::new();
        let mut wrapped = Vec::new();
        for source in ["inventory", "orders", "member", "wms"] {
            let raw = RabbitMqBus::connect(&amqp_url(), topology.clone(), source)
                .await
                .unwrap_or_else(|e| panic!("RabbitMQ must be running: {e}"));
            buses.push(raw.clone());
            let bus: Arc<dyn EventBus> =
                Arc::new(NamespacedBus::new(Arc::new(raw), &tag, queues.clone()));
            wrapped.push(bus);
        }
        let admin = RabbitMqBus::connect(&amqp_url(), topology.clone(), "it-admin")
            .await
            .expect("RabbitMQ admin connection");
        let backends = Backends {
            inventory_db: databases[0].url().to_owned(),
            orders_db: databases[1].url().to_owned(),
            member_db: databases[2].url().to_owned(),
            redis: Some((redis_url(), redis.prefix.clone())),
        };
        let mut system = Self::boot(backends, [&wrapped[0], &wrapped[1], &wrapped[2]]).await;
        system.bus = wrapped[3].clone();
        system.exchange = Some(topology.exchange.clone());
        system.broker = Some(Broker {
            admin,
            buses,
            queues,
        });
        system.databases = databases;
        system.redis = Some(redis);
        system
    }

    /// The embedded shape: SQLite files in a fresh directory, one shared in-process bus and
    /// the in-process reservation gate.
    pub async fn embedded() -> Self {
        let dir = std::env::temp_dir().join(format!("omni-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sqlite = |name: &str| format!("sqlite://{}?mode=rwc", dir.join(name).display());
        let backends = Backends {
            inventory_db: sqlite("inventory.db"),
            orders_db: sqlite("orders.db"),
            member_db: sqlite("member.db"),
            redis: None,
        };
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
        let mut system = Self::boot(backends, [&bus, &bus, &bus]).await;
        system.sqlite_dir = Some(dir);
        system
    }

    async fn boot(backends: Backends, buses: [&Arc<dyn EventBus>; 3]) -> Self {
        omni_platform::testkit::init_test_logging();
        let issuer = TokenIssuer::hs256(TEST_SECRET.as_bytes());
        let common = |db: &str| {
            vec![
                ("DATABASE_URL".to_owned(), db.to_owned()),
                ("LISTEN_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
                ("METRICS_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
                ("JWT_HS256_SECRET".to_owned(), TEST_SECRET.to_owned()),
            ]
        };

        let mut env = common(&backends.inventory_db);
        // A start rebuilds the empty gate after one grace period; 2 s keeps the statement
        // timeout (under half of it) comfortable on a loaded machine without slowing every test.
        env.push(("HOLD_GRACE".to_owned(), "2s".to_owned()));
        if let Some((url, prefix)) = &backends.redis {
            env.push(("REDIS_URL".to_owned(), url.clone()));
            env.push(("REDIS_KEY_PREFIX".to_owned(), prefix.clone()));
        }
        let config = omni_inventory::config::InventoryConfig::from_env(&Env::from_pairs(env))
            .expect("inventory config");
        let inventory = omni_inventory::app::Application::build(
            config,
            omni_inventory::app::Infra {
                bus: buses[0].clone(),
                parked: None,
                clock: system_clock(),
            },
        )
        .await
        .expect("inventory starts");

        let config = omni_member::config::MemberConfig::from_env(&Env::from_pairs(common(
            &backends.member_db,
        )))
        .expect("member config");
        let member = omni_member::app::Application::build(
            config,
            omni_member::app::Infra {
                bus: buses[2].clone(),
                parked: None,
                clock: system_clock(),
                orders_queue: omni_member::ops::ORDERS_CONSUMER.to_owned(),
            },
        )
        .await
        .expect("member starts");

        let service_token = issuer
            .mint("service:orders", Duration::from_secs(3600))
            .expect("service token");
        let mut env = common(&backends.orders_db);
        env.push((
            "INVENTORY_ADDR".to_owned(),
            format!("http://{}", inventory.grpc_addr()),
        ));
        env.push((
            "MEMBER_ADDR".to_owned(),
            format!("http://{}", member.grpc_addr()),
        ));
        env.push(("SERVICE_TOKEN".to_owned(), service_token));
        // The whole suite shares two cores with these journeys; a storefront's budget per call,
        // not the 3 s default, is what a 500-buyer storm on a loaded CI machine needs.
        env.push(("PEER_DEADLINE".to_owned(), "10s".to_owned()));
        let config = omni_order_routing::config::OrdersConfig::from_env(&Env::from_pairs(env))
            .expect("orders config");
        let orders = omni_order_routing::app::Application::build(
            config,
            omni_order_routing::app::Infra {
                bus: buses[1].clone(),
                parked: None,
                clock: system_clock(),
                // Left at the production names: the namespacing bus makes them unique.
                queues: omni_order_routing::app::ConsumerQueues::default(),
            },
        )
        .await
        .expect("order-routing starts");

        Self {
            inventory: Some(inventory),
            orders: Some(orders),
            member: Some(member),
            issuer,
            bus: buses[0].clone(),
            broker: None,
            exchange: None,
            databases: Vec::new(),
            redis: None,
            sqlite_dir: None,
            channels: std::sync::Mutex::default(),
        }
    }

    pub fn token(&self, subject: &str) -> String {
        self.issuer
            .mint(subject, Duration::from_secs(3600))
            .expect("token")
    }

    fn channel(&self, addr: std::net::SocketAddr, subject: &str) -> (Channel, CallContext) {
        let mut channels = self.channels.lock().expect("channel cache");
        channels
            .entry((addr, subject.to_owned()))
            .or_insert_with(|| {
                let channel =
                    lazy_channel(&format!("http://{addr}"), CALL_TIMEOUT).expect("channel");
                let context = CallContext::with_token(Some(&self.token(subject))).expect("context");
                (channel, context)
            })
            .clone()
    }

    fn orders_addr(&self) -> std::net::SocketAddr {
        self.orders.as_ref().expect("running").grpc_addr()
    }

    /// `subject` is a token subject: `channel:web`, `store:s1`, `admin` …
    pub fn orders_as(&self, subject: &str) -> OrderServiceClient<Authed> {
        let (channel, context) = self.channel(self.orders_addr(), subject);
        OrderServiceClient::with_interceptor(channel, context)
    }

    pub fn stores_as(&self, subject: &str) -> StoreServiceClient<Authed> {
        let (channel, context) = self.channel(self.orders_addr(), subject);
        StoreServiceClient::with_interceptor(channel, context)
    }

    pub fn inventory_as(&self, subject: &str) -> InventoryServiceClient<Authed> {
        let addr = self.inventory.as_ref().expect("running").grpc_addr();
        let (channel, context) = self.channel(addr, subject);
        InventoryServiceClient::with_interceptor(channel, context)
    }

    pub fn member_as(&self, subject: &str) -> MemberServiceClient<Authed> {
        let addr = self.member.as_ref().expect("running").grpc_addr();
        let (channel, context) = self.channel(addr, subject);
        MemberServiceClient::with_interceptor(channel, context)
    }

    pub fn wms(&self) -> Wms {
        Wms::new(self.bus.clone())
    }

    /// Stops the services (callers first, so nothing calls a stopped peer), then deletes the
    /// broker objects, the databases, the Redis keys and the SQLite files.
    pub async fn shutdown(mut self) {
        if let Some(app) = self.orders.take() {
            app.shutdown().await;
        }
        if let Some(app) = self.member.take() {
            app.shutdown().await;
        }
        if let Some(app) = self.inventory.take() {
            app.shutdown().await;
        }
        if let Some(broker) = self.broker.take() {
            let queues = broker.queues.names();
            let names: Vec<&str> = queues.iter().map(String::as_str).collect();
            broker
                .admin
                .delete_topology(&names)
                .await
                .expect("delete the test topology");
            broker.admin.close();
            for bus in broker.buses {
                bus.close();
            }
        }
        for db in self.databases.drain(..) {
            db.drop_database().await;
        }
        if let Some(redis) = self.redis.take() {
            redis.cleanup().await;
        }
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
