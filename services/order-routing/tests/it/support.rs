//! A running order-routing service on a fresh PostgreSQL database (or a SQLite file, the
//! embedded mode's store), with fake peers, the in-process bus (these tests are not about the
//! broker) and a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeZone;
use omni_order_routing::app::{Application, ConsumerQueues, Infra, Peers};
use omni_order_routing::config::OrdersConfig;
use omni_order_routing::domain::planner::LocationKind;
use omni_order_routing::service::SagaProbe;
use omni_platform::clock::ManualClock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::{
    ConsumerHandle, Envelope, EventBus, EventHandler, HandlerError, Subscription,
};
use omni_platform::testkit::{TestDatabase, unique_name};
use omni_proto::common::v1 as common;
use omni_proto::orders::v1 as pb;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use omni_proto::orders::v1::store_service_client::StoreServiceClient;
use omni_types::OrderId;
use tonic::transport::Channel;

use crate::fakes::{FakeInventory, FakeMember};

/// Makes the saga "crash" before persisting while armed.
#[derive(Default)]
pub struct CrashSwitch(pub std::sync::atomic::AtomicBool);

#[async_trait]
impl SagaProbe for CrashSwitch {
    fn before_persist(&self, _order: OrderId) -> Result<(), String> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            Err("simulated crash before the order commit".into())
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
pub struct Collector(pub Mutex<Vec<Envelope>>);

#[async_trait]
impl EventHandler for Collector {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Where the service under test keeps its data.
pub enum HarnessDb {
    Postgres(TestDatabase),
    Sqlite(std::path::PathBuf),
}

impl HarnessDb {
    fn url(&self) -> String {
        match self {
            Self::Postgres(db) => db.url().to_owned(),
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
        }
    }

    async fn remove(self) {
        match self {
            Self::Postgres(db) => db.drop_database().await,
            Self::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}

pub struct Harness {
    pub app: Option<Application>,
    db: Option<HarnessDb>,
    pub clock: ManualClock,
    pub bus: Arc<InProcessBus>,
    pub inventory: Arc<FakeInventory>,
    pub member: Arc<FakeMember>,
    pub crash: Arc<CrashSwitch>,
    pub events: Arc<Collector>,
    collector: Option<ConsumerHandle>,
    pub orders: OrderServiceClient<Channel>,
    pub stores: StoreServiceClient<Channel>,
}

impl Harness {
    /// A warehouse `w1` in Shanghai and two stores `s1` (near) and `s2` (farther).
    pub async fn start() -> Self {
        Self::start_on(HarnessDb::Postgres(TestDatabase::postgres().await)).await
    }

    /// The same on a SQLite file of its own.
    pub async fn start_on_sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("orders")));
        Self::start_on(HarnessDb::Sqlite(path)).await
    }

    async fn start_on(db: HarnessDb) -> Self {
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap());
        let inventory = Arc::new(FakeInventory::new(clock.clone()));
        inventory.add_location("w1", LocationKind::Warehouse, 31.0, 121.0);
        inventory.add_location("s1", LocationKind::Store, 31.23, 121.47);
        inventory.add_location("s2", LocationKind::Store, 31.5, 120.3);
        let member = Arc::new(FakeMember::default());
        let crash = Arc::new(CrashSwitch::default());
        let bus = Arc::new(InProcessBus::new());
        let events = Arc::new(Collector::default());
        let mut sub = Subscription::new("test.collector", ["order.#", "fulfilment.#"]);
        sub.retry_backoff = Duration::from_millis(20);
        let collector = bus.subscribe(sub, events.clone()).await.unwrap();
        let app = build_app(&db, &clock, &bus, &inventory, &member, &crash).await;
        let (orders, stores) = clients(&app).await;
        Self {
            app: Some(app),
            db: Some(db),
            clock,
            bus,
            inventory,
            member,
            crash,
            events,
            collector: Some(collector),
            orders,
            stores,
        }
    }

    /// Stops the service and starts a new one on the same database, bus and peers: what a
    /// process keeps in memory is gone.
    pub async fn restart(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        let db = self.db.as_ref().unwrap();
        let app = build_app(
            db,
            &self.clock,
            &self.bus,
            &self.inventory,
            &self.member,
            &self.crash,
        )
        .await;
        (self.orders, self.stores) = clients(&app).await;
        self.app = Some(app);
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        if let Some(collector) = self.collector.take() {
            collector.shutdown().await;
        }
        if let Some(db) = self.db.take() {
            db.remove().await;
        }
    }

    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use omni_platform::clock::Clock;
        self.clock.now()
    }

    pub fn app(&self) -> &Application {
        self.app.as_ref().unwrap()
    }

    /// Waits until `pred` holds on the published events, failing after a deadline.
    pub async fn wait_events(
        &self,
        what: &str,
        pred: impl Fn(&[Envelope]) -> bool,
    ) -> Vec<Envelope> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.events.0.lock().unwrap().clone();
            if pred(&seen) {
                return seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; saw {:?}",
                seen.iter()
                    .map(|e| e.routing_key().to_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_order(&self, id: &str, pred: impl Fn(&pb::Order) -> bool) -> pb::Order {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let order = self
                .orders
                .clone()
                .get_order(pb::GetOrderRequest {
                    order_id: id.to_owned(),
                })
                .await
                .unwrap()
                .into_inner()
                .order
                .unwrap();
            if pred(&order) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order never matched: {order:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the stored confirmation flags are `expected` (in any order): PlaceOrder
    /// answers before it stores them. Fails after 10 s naming what was stored.
    pub async fn confirmations_become(&self, mut expected: Vec<(String, bool)>) {
        expected.sort();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut stored = self.stored_confirmations().await;
            stored.sort();
            if stored == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stored confirmation flags {stored:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The stored orders' ids and whether each still owes a confirmation, oldest first.
    pub async fn stored_confirmations(&self) -> Vec<(String, bool)> {
        use sea_orm::{ConnectionTrait, Statement};
        let db = self.app().orders().db();
        db.query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, confirmations_pending FROM orders ORDER BY created_at",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "id").unwrap(),
                row.try_get::<bool>("", "confirmations_pending").unwrap(),
            )
        })
        .collect()
    }

    pub async fn publish(&self, event: Envelope) {
        self.bus.publish(&[event]).await.unwrap();
    }
}

async fn build_app(
    db: &HarnessDb,
    clock: &ManualClock,
    bus: &Arc<InProcessBus>,
    inventory: &Arc<FakeInventory>,
    member: &Arc<FakeMember>,
    crash: &Arc<CrashSwitch>,
) -> Application {
    let config = OrdersConfig::from_env(&Env::from_pairs([
        ("DATABASE_URL", db.url().as_str()),
        ("LISTEN_ADDR", "127.0.0.1:0"),
    ]))
    .unwrap();
    Application::build_with(
        config,
        Infra {
            bus: bus.clone(),
            parked: Some(bus.clone()),
            clock: Arc::new(clock.clone()),
            queues: ConsumerQueues::default(),
        },
        Peers {
            inventory: inventory.clone(),
            member: member.clone(),
            probe: crash.clone(),
        },
    )
    .await
    .unwrap()
}

async fn clients(app: &Application) -> (OrderServiceClient<Channel>, StoreServiceClient<Channel>) {
    let url = format!("http://{}", app.grpc_addr());
    let orders = OrderServiceClient::connect(url.clone()).await.unwrap();
    let stores = StoreServiceClient::connect(url).await.unwrap();
    (orders, stores)
}

pub fn count(events: &[Envelope], key: &str) -> usize {
    events.iter().filter(|e| e.routing_key() == key).count()
}

pub fn ship_draft(lines: &[(&str, i32)]) -> pb::OrderDraft {
    pb::OrderDraft {
        channel_id: "web".into(),
        member: None,
        lines: lines
            .iter()
            .map(|(sku, qty)| pb::OrderLineInput {
                sku: (*sku).into(),
                quantity: *qty,
                unit_price: Some(common::Money {
                    minor_units: 1_000,
                    currency: "CNY".into(),
                }),
            })
            .collect(),
        fulfilment: Some(pb::Fulfilment {
            method: Some(pb::fulfilment::Method::Ship(pb::ShipFulfilment {
                address: Some(common::Address {
                    recipient: "Li Lei".into(),
                    lines: vec!["1 Nanjing Rd".into()],
                    city: "Shanghai".into(),
                    region: String::new(),
                    postal_code: "200001".into(),
                    country_code: "CN".into(),
                    phone: String::new(),
                }),
                delivery_point: Some(common::GeoPoint {
                    lat: 31.2,
                    lon: 121.4,
                }),
            })),
        }),
        points_to_redeem: 0,
        checkout_hold_id: String::new(),
    }
}

pub fn pickup_draft(store: &str, lines: &[(&str, i32)]) -> pb::OrderDraft {
    let mut d = ship_draft(lines);
    d.fulfilment = Some(pb::Fulfilment {
        method: Some(pb::fulfilment::Method::Pickup(pb::PickupFulfilment {
            store_id: store.into(),
        })),
    });
    d
}

pub fn place(key: &str, draft: pb::OrderDraft) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        idempotency_key: key.into(),
        order: Some(draft),
    }
}

pub fn reason(status: &tonic::Status) -> Option<String> {
    omni_platform::grpc::status::reason_of(status)
}

pub fn metadata(status: &tonic::Status, key: &str) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}
