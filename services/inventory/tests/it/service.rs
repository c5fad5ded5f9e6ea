//! The inventory service end to end: real gRPC, real PostgreSQL, real Redis (a key prefix of its
//! own per test), the in-process bus so tests can watch the events it publishes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use omni_inventory::app::{Application, Infra};
use omni_inventory::config::InventoryConfig;
use omni_platform::clock::system_clock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::events::{
    ConsumerHandle, Envelope, EventBus, EventHandler, HandlerError, Subscription,
};
use omni_platform::grpc::status::{precondition_failures_of, reason_of};
use omni_platform::testkit::{TestDatabase, TestRedisPrefix, redis_url};
use omni_proto::common::v1 as common;
use omni_proto::inventory::v1 as pb;
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tokio::sync::Mutex;
use tonic::Code;
use tonic::transport::Channel;

pub struct Service {
    pub app: Option<Application>,
    pub client: InventoryServiceClient<Channel>,
    pub events: Arc<Recorder>,
    pub prefix: TestRedisPrefix,
    _recorder: ConsumerHandle,
    _db: TestDatabase,
}

/// Records every event the service publishes.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Envelope>>);

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.0.lock().await.push(event.clone());
        Ok(())
    }
}

impl Recorder {
    pub async fn named(&self, name: &str) -> Vec<Envelope> {
        self.0
            .lock()
            .await
            .iter()
            .filter(|e| e.event_name() == name)
            .cloned()
            .collect()
    }
}

impl Service {
    pub async fn start() -> Self {
        let db = TestDatabase::postgres().await;
        let prefix = TestRedisPrefix::new();
        let env = Env::from_pairs([
            ("DATABASE_URL", db.url().to_owned()),
            ("REDIS_URL", redis_url()),
            ("REDIS_KEY_PREFIX", prefix.prefix.clone()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("HOLD_GRACE", "2s".to_owned()),
            ("REAPER_INTERVAL", "100ms".to_owned()),
        ]);
        let config = InventoryConfig::from_env(&env).unwrap();
        let bus = Arc::new(InProcessBus::new());
        let events = Arc::new(Recorder::default());
        let recorder = bus
            .subscribe(
                Subscription::new("test.recorder", ["inventory.#"]),
                events.clone(),
            )
            .await
            .unwrap();
        let infra = Infra {
            bus: bus.clone(),
            parked: Some(bus),
            clock: system_clock(),
        };
        let app = Application::build(config, infra).await.unwrap();
        let client = InventoryServiceClient::connect(format!("http://{}", app.grpc_addr()))
            .await
            .unwrap();
        let service = Self {
            app: Some(app),
            client,
            events,
            prefix,
            _recorder: recorder,
            _db: db,
        };
        service
            .location("wh-1", pb::LocationKind::Warehouse, 0)
            .await;
        service
            .location("store-1", pb::LocationKind::Store, 0)
            .await;
        service
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        self.prefix.cleanup().await;
    }

    pub async fn location(&self, id: &str, kind: pb::LocationKind, capacity: u32) {
        self.client
            .clone()
            .upsert_location(pb::UpsertLocationRequest {
                location: Some(pb::Location {
                    id: id.into(),
                    kind: kind as i32,
                    name: format!("Location {id}"),
                    position: Some(common::GeoPoint {
                        lat: 31.23,
                        lon: 121.47,
                    }),
                    capabilities: Some(pb::LocationCapabilities {
                        ships: kind == pb::LocationKind::Warehouse,
                        pickup: kind == pb::LocationKind::Store,
                        ship_from_store: kind == pb::LocationKind::Store,
                    }),
                    daily_capacity: capacity,
                    time_zone: "Asia/Shanghai".into(),
                    active: true,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }

    pub async fn receive(&self, sku: &str, location: &str, qty: i64) {
        self.adjust(sku, location, pb::MovementKind::Receipt, qty)
            .await;
    }

    pub async fn adjust(&self, sku: &str, location: &str, kind: pb::MovementKind, qty: i64) {
        self.client
            .clone()
            .adjust_stock(pb::AdjustStockRequest {
                adjustments: vec![pb::StockAdjustment {
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                    sku: sku.into(),
                    location_id: location.into(),
                    kind: kind as i32,
                    quantity: qty,
                    ..Default::default()
                }],
            })
            .await
            .unwrap();
    }

    pub async fn level(&self, sku: &str, location: &str) -> pb::StockLevel {
        self.client
            .clone()
            .get_availability(pb::GetAvailabilityRequest {
                skus: vec![sku.into()],
                location_ids: vec![location.into()],
                channel_id: None,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .levels
            .remove(0)
    }

    pub async fn invariants(&self) -> Vec<pb::DriftFinding> {
        self.client
            .clone()
            .check_invariants(pb::CheckInvariantsRequest { repair: false })
            .await
            .unwrap()
            .into_inner()
            .findings
    }
}

pub fn reserve(id: &str, lines: &[(&str, &str, i32)]) -> pb::ReserveRequest {
    pb::ReserveRequest {
        reservation_id: id.into(),
        lines: lines
            .iter()
            .map(|(sku, loc, qty)| pb::ReserveLine {
                sku: (*sku).into(),
                location_id: (*loc).into(),
                quantity: *qty,
            })
            .collect(),
        ttl: Some(omni_proto::pbjson_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        count_capacity: false,
    }
}

pub fn order_id() -> String {
    format!("order:{}", uuid::Uuid::now_v7())
}

/// Waits for `check` to hold, polling, failing after `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_oversell_under_contention() {
    let svc = Service::start().await;
    svc.receive("HOT-1", "wh-1", 50).await;
    svc.receive("COLD-1", "wh-1", 1000).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut client = svc.client.clone();
        tasks.push(tokio::spawn(async move {
            let lines: Vec<(&str, &str, i32)> = if i % 4 == 0 {
                vec![("HOT-1", "wh-1", 1), ("COLD-1", "wh-1", 2)]
            } else {
                vec![("HOT-1", "wh-1", 1)]
            };
            client.reserve(reserve(&order_id(), &lines)).await
        }));
    }
    let (mut held, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => held += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason_of(&status).as_deref(), Some("INSUFFICIENT_STOCK"));
                let failures = precondition_failures_of(&status);
                assert_eq!(failures[0].subject, "sku/HOT-1/location/wh-1");
                refused += 1;
            }
        }
    }
    assert_eq!((held, refused), (50, 150));
    let level = svc.level("HOT-1", "wh-1").await;
    assert_eq!(
        (level.on_hand, level.reserved, level.available),
        (50, 50, 0)
    );
    assert!(
        svc.invariants().await.is_empty(),
        "Redis and PostgreSQL agree"
    );
    svc.stop().await;
}

#[tokio::test]
async fn all_or_nothing_and_idempotent() {
    let svc = Service::start().await;
    svc.receive("A", "wh-1", 5).await;
    svc.receive("B", "wh-1", 5).await;
    svc.receive("C", "wh-1", 1).await;
    let mut client = svc.client.clone();
    let err = client
        .reserve(reserve(
            &order_id(),
            &[("A", "wh-1", 2), ("B", "wh-1", 2), ("C", "wh-1", 2)],
        ))
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).as_deref(), Some("INSUFFICIENT_STOCK"));
    for sku in ["A", "B", "C"] {
        assert_eq!(
            svc.level(sku, "wh-1").await.reserved,
            0,
            "{sku} held nothing"
        );
    }

    let id = order_id();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut client = svc.client.clone();
        let request = reserve(&id, &[("A", "wh-1", 3)]);
        tasks.push(tokio::spawn(async move { client.reserve(request).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::Aborted, "in flight → retry: {s:?}"),
        }
    }
    assert!(ok >= 1);
    assert_eq!(svc.level("A", "wh-1").await.reserved, 3, "held once");
    let replay = client
        .reserve(reserve(&id, &[("A", "wh-1", 3)]))
        .await
        .unwrap();
    assert_eq!(replay.into_inner().reservation.unwrap().id, id);
    let other = client
        .reserve(reserve(&id, &[("A", "wh-1", 1)]))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);

    let bad = client
        .reserve(reserve("order:not-a-uuid", &[("A", "nowhere", 0)]))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = omni_platform::grpc::status::violations_of(&bad)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert!(fields.contains(&"reservation_id".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"lines[0].quantity".to_owned()),
        "{fields:?}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn capacity_is_counted_atomically() {
    let svc = Service::start().await;
    svc.location("store-cap", pb::LocationKind::Store, 3).await;
    svc.receive("CAP", "store-cap", 100).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut client = svc.client.clone();
        let mut request = reserve(&order_id(), &[("CAP", "store-cap", 1)]);
        request.count_capacity = true;
        tasks.push(tokio::spawn(async move { client.reserve(request).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(reason_of(&s).as_deref(), Some("CAPACITY_EXHAUSTED")),
        }
    }
    assert_eq!(ok, 3);
    svc.stop().await;
}

#[tokio::test]
async fn unconfirmed_holds_expire_and_confirmed_ones_do_not() {
    let svc = Service::start().await;
    svc.receive("EXP", "wh-1", 10).await;
    let mut client = svc.client.clone();
    let mut short = reserve(&order_id(), &[("EXP", "wh-1", 2)]);
    short.ttl = Some(omni_proto::pbjson_types::Duration {
        seconds: 1,
        nanos: 0,
    });
    let kept = order_id();
    let mut confirmed = reserve(&kept, &[("EXP", "wh-1", 3)]);
    confirmed.ttl = short.ttl;
    client.reserve(short).await.unwrap();
    client.reserve(confirmed).await.unwrap();
    client
        .confirm_reservation(pb::ConfirmReservationRequest {
            reservation_id: kept.clone(),
        })
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        svc.level("EXP", "wh-1").await.reserved == 3
    })
    .await;
    // The event leaves with the relay's next batch, after the expiry committed.
    eventually(Duration::from_secs(5), || async {
        !svc.events
            .named("inventory.reservation.expired")
            .await
            .is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        svc.level("EXP", "wh-1").await.reserved,
        3,
        "the confirmed hold stays"
    );
    assert!(svc.invariants().await.is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn a_crash_between_the_redis_hold_and_postgres_leaves_no_permanent_hold() {
    let svc = Service::start().await;
    svc.receive("ORPH", "wh-1", 10).await;
    // The hold reaches the gate, the process "dies" before writing PostgreSQL.
    let inventory = svc.app.as_ref().unwrap().inventory().clone();
    let epoch = match inventory.gate().status().await.unwrap() {
        omni_inventory::reservations::GateStatus::Ready { epoch } => epoch,
        other => panic!("gate not ready: {other:?}"),
    };
    let id = omni_types::ReservationId::parse(&order_id()).unwrap();
    let outcome = inventory
        .gate()
        .reserve(omni_inventory::reservations::HoldRequest {
            id,
            lines: vec![omni_inventory::domain::ReservationLine::new(
                omni_types::Sku::parse("ORPH").unwrap(),
                omni_types::LocationId::parse("wh-1").unwrap(),
                omni_types::Quantity::parse(4).unwrap(),
            )],
            expires_at: Some(chrono::Utc::now() + chrono::Duration::minutes(5)),
            capacity: vec![],
            epoch,
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        omni_inventory::reservations::HoldOutcome::Held { .. }
    ));
    assert_eq!(svc.level("ORPH", "wh-1").await.reserved, 4);
    eventually(Duration::from_secs(10), || async {
        svc.level("ORPH", "wh-1").await.reserved == 0
    })
    .await;
    svc.stop().await;
}

#[tokio::test]
async fn an_ambiguous_commit_error_does_not_undo_a_reservation_that_committed() {
    let svc = Service::start().await;
    svc.receive("AMB", "wh-1", 10).await;
    let inventory = svc.app.as_ref().unwrap().inventory().clone();
    inventory
        .faults()
        .lose_commit_acknowledgement
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let id = order_id();
    let mut client = svc.client.clone();
    let err = client
        .reserve(reserve(&id, &[("AMB", "wh-1", 4)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        svc.invariants().await.is_empty(),
        "a PENDING hold whose row committed is counted once, not as drift"
    );
    // The row is in PostgreSQL: after the grace period the reaper marks the hold durable
    // instead of undoing it, and a retry gets the first answer.
    let parsed = omni_types::ReservationId::parse(&id).unwrap();
    eventually(Duration::from_secs(10), || async {
        matches!(
            inventory
                .gate()
                .get(&parsed)
                .await
                .unwrap()
                .map(|r| r.state),
            Some(omni_inventory::reservations::HoldState::Durable)
        )
    })
    .await;
    assert_eq!(svc.level("AMB", "wh-1").await.reserved, 4);
    let replay = client
        .reserve(reserve(&id, &[("AMB", "wh-1", 4)]))
        .await
        .unwrap();
    assert_eq!(replay.into_inner().reservation.unwrap().id, id);
    assert_eq!(svc.level("AMB", "wh-1").await.reserved, 4, "not held twice");
    assert!(svc.invariants().await.is_empty());
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_in_a_reservation_storm_never_oversells() {
    let svc = Service::start().await;
    svc.receive("STORM", "wh-1", 40).await;
    let buyers: Vec<_> = (0..8)
        .map(|_| {
            let mut client = svc.client.clone();
            tokio::spawn(async move {
                let (mut held, mut unavailable) = (0i64, 0);
                let until = tokio::time::Instant::now() + Duration::from_secs(3);
                while tokio::time::Instant::now() < until {
                    match client
                        .reserve(reserve(&order_id(), &[("STORM", "wh-1", 1)]))
                        .await
                    {
                        Ok(_) => held += 1,
                        Err(s) if s.code() == Code::Unavailable => unavailable += 1,
                        Err(s) if reason_of(&s).as_deref() == Some("INSUFFICIENT_STOCK") => {}
                        Err(s) => panic!("unexpected {s:?}"),
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (held, unavailable)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Only this test's keys and epoch: parallel tests keep theirs.
    svc.prefix.cleanup().await;
    let mut held = 0;
    let mut unavailable = 0;
    for b in buyers {
        let (h, u) = b.await.unwrap();
        held += h;
        unavailable += u;
    }
    assert!(
        unavailable > 0,
        "reservations are refused while the gate is rebuilt"
    );
    assert!(held <= 40, "never more than the stock: {held}");
    let level = svc.level("STORM", "wh-1").await;
    assert_eq!(level.on_hand, 40);
    assert_eq!(level.reserved, held, "every success is held, nothing else");
    assert!(svc.invariants().await.is_empty(), "Redis equals PostgreSQL");
    svc.stop().await;
}

#[tokio::test]
async fn losing_redis_rebuilds_from_postgres() {
    let svc = Service::start().await;
    svc.receive("LOST", "wh-1", 20).await;
    let mut client = svc.client.clone();
    client
        .reserve(reserve(&order_id(), &[("LOST", "wh-1", 5)]))
        .await
        .unwrap();
    // Only this test's keys: parallel tests keep theirs.
    svc.prefix.cleanup().await;
    let mut refused = 0;
    let mut held = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while held == 0 && tokio::time::Instant::now() < until {
        match client
            .reserve(reserve(&order_id(), &[("LOST", "wh-1", 1)]))
            .await
        {
            Ok(_) => held += 1,
            Err(s) if s.code() == Code::Unavailable => refused += 1,
            Err(s) if reason_of(&s).as_deref() == Some("INSUFFICIENT_STOCK") => {}
            Err(s) => panic!("unexpected {s:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused > 0, "reservations are refused while rebuilding");
    assert!(
        held > 0 && held <= 15,
        "then served again, never oversold: {held}"
    );
    let level = svc.level("LOST", "wh-1").await;
    assert_eq!(level.on_hand, 20);
    assert_eq!(level.reserved, 5 + held);
    assert!(svc.invariants().await.is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn a_pos_sale_below_reserved_names_the_unservable_reservations() {
    let svc = Service::start().await;
    svc.receive("POS", "store-1", 3).await;
    let mut client = svc.client.clone();
    let older = order_id();
    client
        .reserve(reserve(&older, &[("POS", "store-1", 2)]))
        .await
        .unwrap();
    let cart = "hold:web:cart-1".to_owned();
    client
        .reserve(reserve(&cart, &[("POS", "store-1", 1)]))
        .await
        .unwrap();
    // The till sells two units: one left on the shelf, three reserved.
    svc.adjust("POS", "store-1", pb::MovementKind::Sale, 2)
        .await;
    eventually(Duration::from_secs(5), || async {
        !svc.events
            .named("inventory.stock.shortage")
            .await
            .is_empty()
    })
    .await;
    let event = svc.events.named("inventory.stock.shortage").await.remove(0);
    let data: omni_proto::events::v1::StockShortage = event.data_as().unwrap();
    let ids: Vec<String> = data
        .reservations
        .iter()
        .map(|r| r.reservation_id.clone())
        .collect();
    // Checkout holds go first, then the newest orders, until reserved ≤ on_hand.
    assert_eq!(ids, vec![cart, older]);
    svc.stop().await;
}

#[tokio::test]
async fn an_answer_in_grid_layout_holds_what_the_rows_hold() {
    let svc = Service::start().await;
    svc.location("store-2", pb::LocationKind::Store, 5).await;
    svc.receive("GRID-B", "wh-1", 7).await;
    svc.receive("GRID-A", "store-2", 3).await;
    svc.client
        .clone()
        .reserve(reserve(&order_id(), &[("GRID-A", "store-2", 2)]))
        .await
        .unwrap();
    let ask = |layout: pb::AvailabilityLayout| {
        let mut client = svc.client.clone();
        async move {
            client
                .get_availability(pb::GetAvailabilityRequest {
                    skus: vec!["GRID-B".into(), "GRID-A".into(), "GRID-NONE".into()],
                    layout: layout.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let rows = ask(pb::AvailabilityLayout::Rows).await;
    let grid = ask(pb::AvailabilityLayout::Grid).await;
    assert!(rows.grid.is_none());
    assert!(grid.levels.is_empty());
    let cells = grid.grid.as_ref().expect("a grid in layout GRID");
    assert_eq!(cells.check_shape(), Ok(()));
    assert_eq!(cells.skus, ["GRID-A", "GRID-B", "GRID-NONE"]);
    assert_eq!(cells.location_ids, ["store-1", "store-2", "wh-1"]);
    // GRID-A at store-2: 3 on hand, 2 reserved, 1 left.
    assert_eq!(
        (cells.on_hand[1], cells.reserved[1], cells.available[1]),
        (3, 2, 1)
    );
    assert_eq!(grid.all_levels().collect::<Vec<_>>(), rows.levels);
    assert_eq!(grid.capacities, rows.capacities);
    assert_eq!(grid.capacities[1].capacity_left_today, 5);
    svc.stop().await;
}

#[tokio::test]
async fn watch_availability_sees_an_adjustment() {
    let svc = Service::start().await;
    svc.receive("WATCH", "wh-1", 1).await;
    let mut stream = svc
        .client
        .clone()
        .watch_availability(pb::WatchAvailabilityRequest {
            skus: vec!["WATCH".into()],
            location_ids: vec!["wh-1".into()],
            channel_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.kind, pb::AvailabilityUpdateKind::Snapshot as i32);
    assert_eq!(first.levels[0].on_hand, 1);
    svc.receive("WATCH", "wh-1", 4).await;
    let change = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let update = stream.next().await.unwrap().unwrap();
            if update.levels.iter().any(|l| l.on_hand == 5) {
                return update;
            }
        }
    })
    .await
    .expect("a change within the deadline");
    assert_eq!(change.levels[0].available, 5);
    drop(stream);
    svc.stop().await;
}

#[tokio::test]
async fn the_background_pass_repairs_the_gate_like_check_invariants() {
    let svc = Service::start().await;
    svc.receive("PACED-A", "wh-1", 10).await;
    svc.receive("PACED-B", "wh-1", 4).await;
    let inventory = svc.app.as_ref().unwrap().inventory().clone();
    let sku = omni_types::Sku::parse("PACED-A").unwrap();
    let wh1 = omni_types::LocationId::parse("wh-1").unwrap();
    inventory
        .gate()
        .set_counters(&sku, &wh1, 3, 0)
        .await
        .unwrap();
    assert_eq!(svc.invariants().await.len(), 1, "the lost write is seen");

    let report = inventory.reconcile().await.unwrap();

    assert_eq!(report.pairs_checked, 2);
    assert_eq!(report.drifts.len(), 1);
    assert!(report.drifts[0].repaired, "the background pass repairs");
    assert!(svc.invariants().await.is_empty());
    assert_eq!(svc.level("PACED-A", "wh-1").await.on_hand, 10);
    assert_eq!(svc.level("PACED-B", "wh-1").await.on_hand, 4);
    svc.stop().await;
}

#[tokio::test]
async fn the_reconciler_finds_and_repairs_drift_in_both_stores() {
    let svc = Service::start().await;
    svc.receive("DRIFT-A", "wh-1", 10).await;
    svc.receive("DRIFT-B", "wh-1", 10).await;
    svc.receive("DRIFT-C", "wh-1", 10).await;
    let mut client = svc.client.clone();
    client
        .reserve(reserve(&order_id(), &[("DRIFT-C", "wh-1", 3)]))
        .await
        .unwrap();
    assert!(svc.invariants().await.is_empty());

    let inventory = svc.app.as_ref().unwrap().inventory().clone();
    let sku = |s: &str| omni_types::Sku::parse(s).unwrap();
    let wh1 = omni_types::LocationId::parse("wh-1").unwrap();
    // Redis shows 7 on hand for A (a lost write); PostgreSQL says 12 for B while its ledger
    // sums to 10; Redis holds 2 more of C than the reservations do.
    inventory
        .gate()
        .set_counters(&sku("DRIFT-A"), &wh1, 7, 0)
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        inventory.store().connection(),
        "UPDATE stock_levels SET on_hand = 12 WHERE sku = 'DRIFT-B'",
    )
    .await
    .unwrap();
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("HINCRBY")
        .arg(format!("{}:stock:{{DRIFT-C}}:wh-1", svc.prefix.prefix))
        .arg("reserved")
        .arg(2)
        .query_async(&mut redis)
        .await
        .unwrap();

    let mut found: Vec<_> = svc
        .invariants()
        .await
        .into_iter()
        .map(|d| (d.sku, d.field, d.redis_value, d.expected_value, d.repaired))
        .collect();
    found.sort();
    let on_hand = pb::DriftField::OnHand as i32;
    let reserved = pb::DriftField::Reserved as i32;
    assert_eq!(
        found,
        vec![
            ("DRIFT-A".to_owned(), on_hand, 7, 10, false),
            // PostgreSQL against its ledger, then the gate against PostgreSQL as recorded.
            ("DRIFT-B".to_owned(), on_hand, 10, 12, false),
            ("DRIFT-B".to_owned(), on_hand, 12, 10, false),
            ("DRIFT-C".to_owned(), reserved, 5, 3, false),
        ]
    );

    let repaired = client
        .check_invariants(pb::CheckInvariantsRequest { repair: true })
        .await
        .unwrap()
        .into_inner();
    // B's gate value already equals the ledger, so the repair finds three.
    assert_eq!(repaired.findings.len(), 3);
    assert!(repaired.findings.iter().all(|d| d.repaired));
    assert_eq!(repaired.pairs_checked, 3);
    assert!(
        svc.invariants().await.is_empty(),
        "nothing left after the repair"
    );
    let c = svc.level("DRIFT-C", "wh-1").await;
    assert_eq!(
        (c.on_hand, c.reserved),
        (10, 3),
        "rebuilt from the reservations"
    );
    assert_eq!(
        svc.level("DRIFT-B", "wh-1").await.on_hand,
        10,
        "the ledger wins"
    );
    svc.stop().await;
}
