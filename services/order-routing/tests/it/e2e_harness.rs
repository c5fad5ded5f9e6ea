//! Order-routing against the REAL inventory service: each its own fresh PostgreSQL database,
//! inventory on Redis under a key prefix of its own, both on RabbitMQ with a topology and queue
//! names of their own. Member is a fake (points are not what these journeys are about).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use omni_inventory::app::{Application as InventoryApp, Infra as InventoryInfra};
use omni_inventory::config::InventoryConfig;
use omni_order_routing::app::{Application, ConsumerQueues, Infra, Peers};
use omni_order_routing::clients::{
    Availability, GrpcInventory, InventoryPort, LocationInfo, PortError, ReservationView,
    ReserveError, ReserveLine,
};
use omni_order_routing::config::OrdersConfig;
use omni_order_routing::service::{NoProbe, SagaProbe};
use omni_platform::clock::{ManualClock, system_clock};
use omni_platform::config::Env;
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{ConsumerHandle, Envelope, EventBus, Subscription};
use omni_platform::grpc::client::CallContext;
use omni_platform::testkit::{TestDatabase, TestRedisPrefix, amqp_url, redis_url, unique_name};
use omni_proto::common::v1 as common;
use omni_proto::inventory::v1 as inv;
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_proto::orders::v1 as pb;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use omni_proto::orders::v1::store_service_client::StoreServiceClient;
use omni_types::{ChannelId, LocationId, ReservationId, Sku};
use tonic::transport::Channel;

use crate::fakes::FakeMember;
use crate::support::Collector;

const DEADLINE: Duration = Duration::from_secs(20);

pub struct E2e {
    orders_app: Option<Application>,
    inventory_app: Option<InventoryApp>,
    orders_db: Option<TestDatabase>,
    inventory_db: Option<TestDatabase>,
    prefix: TestRedisPrefix,
    orders_bus: RabbitMqBus,
    inventory_bus: RabbitMqBus,
    queues: Vec<String>,
    collector: Option<ConsumerHandle>,
    pub clock: ManualClock,
    pub events: Arc<Collector>,
    pub peer: Arc<LossyInventory>,
    _member: Arc<FakeMember>,
    pub inventory: InventoryServiceClient<Channel>,
    pub orders: OrderServiceClient<Channel>,
    pub stores: StoreServiceClient<Channel>,
}

/// `w1` a warehouse, `s1` a store near the delivery point that ships from store, `s2` a store
/// farther away; all in the `web` channel's pool.
pub const LOCATIONS: [(&str, inv::LocationKind, f64, f64); 3] = [
    ("w1", inv::LocationKind::Warehouse, 31.0, 121.0),
    ("s1", inv::LocationKind::Store, 31.23, 121.47),
    ("s2", inv::LocationKind::Store, 31.5, 120.3),
];

impl E2e {
    pub async fn start() -> Self {
        Self::start_with(Arc::new(NoProbe)).await
    }

    pub async fn start_with(probe: Arc<dyn SagaProbe>) -> Self {
        let topology = Topology::unique("orders-e2e");
        let inventory_bus = RabbitMqBus::connect(&amqp_url(), topology.clone(), "inventory")
            .await
            .expect("RabbitMQ must be running (scripts/infra.sh)");
        let orders_bus = RabbitMqBus::connect(&amqp_url(), topology, "orders")
            .await
            .expect("RabbitMQ must be running (scripts/infra.sh)");
        let stock_queue = unique_name("inventory.stock-effects");
        let queues = ConsumerQueues {
            warehouse: unique_name("orders.warehouse"),
            inventory: unique_name("orders.inventory"),
        };
        let collector_queue = unique_name("test.collector");

        let inventory_db = TestDatabase::postgres().await;
        let prefix = TestRedisPrefix::new();
        let config = InventoryConfig::from_env(&Env::from_pairs([
            ("DATABASE_URL", inventory_db.url().to_owned()),
            ("REDIS_URL", redis_url()),
            ("REDIS_KEY_PREFIX", prefix.prefix.clone()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("HOLD_GRACE", "2s".to_owned()),
            ("REAPER_INTERVAL", "100ms".to_owned()),
            ("STOCK_EFFECTS_QUEUE", stock_queue.clone()),
        ]))
        .unwrap();
        let inventory_app = InventoryApp::build(
            config,
            InventoryInfra {
                bus: Arc::new(inventory_bus.clone()),
                parked: None,
                clock: system_clock(),
            },
        )
        .await
        .unwrap();
        let inventory_url = format!("http://{}", inventory_app.grpc_addr());

        let events = Arc::new(Collector::default());
        let mut sub = Subscription::new(
            collector_queue.clone(),
            ["order.#", "fulfilment.#", "inventory.#"],
        );
        sub.retry_backoff = Duration::from_millis(20);
        let collector = orders_bus.subscribe(sub, events.clone()).await.unwrap();

        let orders_db = TestDatabase::postgres().await;
        let clock = ManualClock::new(Utc::now());
        let config = OrdersConfig::from_env(&Env::from_pairs([
            ("DATABASE_URL", orders_db.url().to_owned()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("INVENTORY_ADDR", inventory_url.clone()),
            // Tests drive the jobs with `run_once`; the background runners stay out of the way.
            ("PICKUP_EXPIRY_INTERVAL", "24h".to_owned()),
            ("CONFIRMATION_SWEEP_INTERVAL", "24h".to_owned()),
        ]))
        .unwrap();
        let member = Arc::new(FakeMember::default());
        let peer = Arc::new(LossyInventory {
            inner: GrpcInventory::new(
                &inventory_url,
                CallContext::with_token(None).unwrap(),
                Duration::from_secs(5),
                None,
            )
            .unwrap(),
            lose_confirms: std::sync::atomic::AtomicBool::new(false),
        });
        let peers = Peers {
            inventory: peer.clone(),
            member: member.clone(),
            probe,
        };
        let orders_app = Application::build_with(
            config,
            Infra {
                bus: Arc::new(orders_bus.clone()),
                parked: None,
                clock: Arc::new(clock.clone()),
                queues: queues.clone(),
            },
            peers,
        )
        .await
        .unwrap();
        let orders_url = format!("http://{}", orders_app.grpc_addr());
        let inventory = InventoryServiceClient::connect(inventory_url)
            .await
            .unwrap();
        let orders = OrderServiceClient::connect(orders_url.clone())
            .await
            .unwrap();
        let stores = StoreServiceClient::connect(orders_url).await.unwrap();
        let h = Self {
            orders_app: Some(orders_app),
            inventory_app: Some(inventory_app),
            orders_db: Some(orders_db),
            inventory_db: Some(inventory_db),
            prefix,
            orders_bus,
            inventory_bus,
            queues: vec![
                stock_queue,
                queues.warehouse,
                queues.inventory,
                collector_queue,
            ],
            collector: Some(collector),
            clock,
            events,
            peer,
            _member: member,
            inventory,
            orders,
            stores,
        };
        for (id, kind, lat, lon) in LOCATIONS {
            h.location(id, kind, lat, lon).await;
        }
        h.inventory
            .clone()
            .set_channel_pool(inv::SetChannelPoolRequest {
                channel_id: "web".into(),
                location_ids: LOCATIONS.iter().map(|l| l.0.to_owned()).collect(),
            })
            .await
            .unwrap();
        h
    }

    async fn location(&self, id: &str, kind: inv::LocationKind, lat: f64, lon: f64) {
        let store = kind == inv::LocationKind::Store;
        self.inventory
            .clone()
            .upsert_location(inv::UpsertLocationRequest {
                location: Some(inv::Location {
                    id: id.into(),
                    kind: kind as i32,
                    name: format!("Location {id}"),
                    position: Some(common::GeoPoint { lat, lon }),
                    capabilities: Some(inv::LocationCapabilities {
                        ships: !store,
                        pickup: store,
                        ship_from_store: store,
                    }),
                    daily_capacity: 0,
                    time_zone: "Asia/Shanghai".into(),
                    pickup_hold: Some(omni_proto::pbjson_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    active: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(collector) = self.collector.take() {
            collector.shutdown().await;
        }
        if let Some(app) = self.orders_app.take() {
            app.shutdown().await;
        }
        if let Some(app) = self.inventory_app.take() {
            app.shutdown().await;
        }
        let queues: Vec<&str> = self.queues.iter().map(String::as_str).collect();
        self.orders_bus.delete_topology(&queues).await.unwrap();
        self.orders_bus.close();
        self.inventory_bus.close();
        self.prefix.cleanup().await;
        if let Some(db) = self.orders_db.take() {
            db.drop_database().await;
        }
        if let Some(db) = self.inventory_db.take() {
            db.drop_database().await;
        }
    }

    pub fn app(&self) -> &Application {
        self.orders_app.as_ref().unwrap()
    }

    pub async fn receive(&self, sku: &str, location: &str, qty: i64) {
        self.inventory
            .clone()
            .adjust_stock(inv::AdjustStockRequest {
                adjustments: vec![inv::StockAdjustment {
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                    sku: sku.into(),
                    location_id: location.into(),
                    kind: inv::MovementKind::Receipt as i32,
                    quantity: qty,
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
    }

    /// A till sale or a count that finds less: physical truth, may leave a shortage.
    pub async fn sell_at_till(&self, sku: &str, location: &str, qty: i64) {
        self.inventory
            .clone()
            .adjust_stock(inv::AdjustStockRequest {
                adjustments: vec![inv::StockAdjustment {
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                    sku: sku.into(),
                    location_id: location.into(),
                    kind: inv::MovementKind::Sale as i32,
                    quantity: qty,
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
    }

    pub async fn level(&self, sku: &str, location: &str) -> inv::StockLevel {
        self.inventory
            .clone()
            .get_availability(inv::GetAvailabilityRequest {
                skus: vec![sku.into()],
                location_ids: vec![location.into()],
                channel_id: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .levels
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// Waits until the (on_hand, reserved) of `sku` at `location` are as expected.
    pub async fn wait_level(&self, sku: &str, location: &str, on_hand: i64, reserved: i64) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let l = self.level(sku, location).await;
            if (l.on_hand, l.reserved) == (on_hand, reserved) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sku}@{location}: wanted on_hand {on_hand} reserved {reserved}, have {l:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn reservation(&self, id: &str) -> inv::Reservation {
        self.inventory
            .clone()
            .get_reservation(inv::GetReservationRequest {
                reservation_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap()
    }

    pub async fn wait_events(
        &self,
        what: &str,
        pred: impl Fn(&[Envelope]) -> bool,
    ) -> Vec<Envelope> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
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
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn order(&self, id: &str) -> pb::Order {
        self.orders
            .clone()
            .get_order(pb::GetOrderRequest {
                order_id: id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    pub async fn wait_order(&self, id: &str, pred: impl Fn(&pb::Order) -> bool) -> pb::Order {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let order = self.order(id).await;
            if pred(&order) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order never matched: {order:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Publishes as the WMS would.
    pub async fn publish(&self, event: Envelope) {
        self.inventory_bus.publish(&[event]).await.unwrap();
    }
}

pub fn status_is(s: pb::OrderStatus) -> impl Fn(&pb::Order) -> bool {
    move |o| o.status == s as i32
}

/// The real gRPC adapter, except that ConfirmReservation can be "lost" on the way (the answer
/// never arrives), as a crash or a network cut would.
pub struct LossyInventory {
    inner: GrpcInventory,
    pub lose_confirms: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl InventoryPort for LossyInventory {
    async fn locations(&self) -> Result<std::sync::Arc<[LocationInfo]>, PortError> {
        self.inner.locations().await
    }
    async fn pool(
        &self,
        channel: &ChannelId,
    ) -> Result<std::sync::Arc<std::collections::BTreeSet<LocationId>>, PortError> {
        self.inner.pool(channel).await
    }
    async fn availability(
        &self,
        channel: &ChannelId,
        skus: &[Sku],
    ) -> Result<Availability, PortError> {
        self.inner.availability(channel, skus).await
    }
    async fn reserve(
        &self,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError> {
        self.inner.reserve(id, lines, ttl).await
    }
    async fn convert_hold(
        &self,
        hold: &ReservationId,
        id: &ReservationId,
        lines: &[ReserveLine],
        ttl: Duration,
    ) -> Result<ReservationView, ReserveError> {
        self.inner.convert_hold(hold, id, lines, ttl).await
    }
    async fn confirm(&self, id: &ReservationId) -> Result<(), PortError> {
        if self.lose_confirms.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Unavailable {
                peer: "inventory",
                detail: "confirmation lost (injected)".into(),
            });
        }
        self.inner.confirm(id).await
    }
    async fn release(&self, id: &ReservationId, reason: &str) -> Result<(), PortError> {
        self.inner.release(id, reason).await
    }
    async fn get_reservation(
        &self,
        id: &ReservationId,
    ) -> Result<Option<ReservationView>, PortError> {
        self.inner.get_reservation(id).await
    }
}
