//! The rules table of `src/grpc/auth_rules.rs`, enforced over the wire: every RPC of
//! OrderService and StoreService, called by every kind of caller, against the real application
//! with authentication on (peers are the in-memory fakes: this is about order-routing's rules).
//!
//! Missing, expired and foreign-signed tokens are UNAUTHENTICATED; a caller the table does not
//! list is PERMISSION_DENIED with the scope it lacks named; a listed caller gets past
//! authorization (any other answer). Denied calls leave every table's row count unchanged.
//! Expectations are written from the doc table, not from the rules code.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use omni_order_routing::app::{Application, ConsumerQueues, Infra, Peers};
use omni_order_routing::config::OrdersConfig;
use omni_order_routing::domain::planner::LocationKind;
use omni_order_routing::service::NoProbe;
use omni_platform::auth::{Claims, LEEWAY_SECS, TokenIssuer};
use omni_platform::clock::ManualClock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::grpc::client::CallContext;
use omni_platform::testkit::TestDatabase;
use omni_platform::testkit::row_counts;
use omni_proto::orders::v1 as pb;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;
use omni_proto::orders::v1::store_service_client::StoreServiceClient;
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::fakes::{FakeInventory, FakeMember};
use crate::support::{pickup_draft, place};

const SECRET: &str = "orders-auth-tests-secret-0123456789abc";
const WRONG_SECRET: &str = "not-the-orders-secret-0123456789abcdef";

const ROLES: [&str; 7] = [
    "admin",
    "channel:web",
    "channel:other",
    "store:store-1",
    "store:store-2",
    "warehouse:wh-1",
    "service:orders",
];

type Orders = OrderServiceClient<InterceptedService<Channel, CallContext>>;
type Stores = StoreServiceClient<InterceptedService<Channel, CallContext>>;

/// One row of the table: an RPC with a concrete request, who may make it, and the scope a
/// refusal must name.
struct Row {
    rpc: &'static str,
    allowed: &'static [&'static str],
    needs: &'static str,
}

const WEB: &[&str] = &["admin", "channel:web"];
const STORE_1: &[&str] = &["admin", "store:store-1"];
const ADMIN: &[&str] = &["admin"];
const BY_WEB: &str = "requires channel:web or admin";
const AT_STORE_1: &str = "requires store:store-1 or admin";
const BY_ADMIN: &str = "requires admin";

fn table() -> Vec<Row> {
    let row = |rpc, allowed, needs| Row {
        rpc,
        allowed,
        needs,
    };
    vec![
        row("PlaceOrder(web)", WEB, BY_WEB),
        row("PlanOrder(web)", WEB, BY_WEB),
        row("GetOrder(web's)", WEB, BY_WEB),
        row("ListOrders(web)", WEB, BY_WEB),
        row("ListOrders(every channel)", ADMIN, BY_ADMIN),
        row("CancelOrder(web's)", WEB, BY_WEB),
        row("ExplainRouting(web's)", WEB, BY_WEB),
        row("GetRoutingProfile", ADMIN, BY_ADMIN),
        row("UpdateRoutingProfile", ADMIN, BY_ADMIN),
        row("SimulatePolicy", ADMIN, BY_ADMIN),
        row("ListPickups(store-1)", STORE_1, AT_STORE_1),
        row("MarkReady(store-1)", STORE_1, AT_STORE_1),
        row("ConfirmPickup(store-1)", STORE_1, AT_STORE_1),
        row("RejectLine(store-1)", STORE_1, AT_STORE_1),
        row("AcceptReturn(store-1)", STORE_1, AT_STORE_1),
    ]
}

#[derive(Debug, Clone, Copy)]
pub enum Caller {
    NoToken,
    Expired,
    WrongKey,
    Role(&'static str),
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(caller: Caller) -> Option<String> {
    let now = unix_now();
    let issuer = TokenIssuer::hs256(SECRET.as_bytes());
    match caller {
        Caller::NoToken => None,
        Caller::Expired => Some(
            issuer
                .mint_claims(&Claims {
                    sub: "admin".into(),
                    exp: now - LEEWAY_SECS - 60,
                    nbf: None,
                    iat: Some(now - 3600),
                    iss: None,
                })
                .unwrap(),
        ),
        Caller::WrongKey => Some(
            TokenIssuer::hs256(WRONG_SECRET.as_bytes())
                .mint("admin", Duration::from_secs(600))
                .unwrap(),
        ),
        Caller::Role(subject) => Some(issuer.mint(subject, Duration::from_secs(600)).unwrap()),
    }
}

/// The real application with `JWT_HS256_SECRET` set, on a fresh database, with fake peers.
pub struct AuthApp {
    app: Option<Application>,
    db: Option<TestDatabase>,
    conn: DatabaseConnection,
    channel: Channel,
    pub inventory: Arc<FakeInventory>,
}

impl AuthApp {
    pub async fn start(stores: &[&str]) -> Self {
        let db = TestDatabase::postgres().await;
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap());
        let inventory = Arc::new(FakeInventory::new(clock.clone()));
        inventory.add_location("wh-1", LocationKind::Warehouse, 31.0, 121.0);
        for (i, store) in stores.iter().enumerate() {
            inventory.add_location(store, LocationKind::Store, 31.2 + i as f64 / 100.0, 121.4);
        }
        let bus = Arc::new(InProcessBus::new());
        let config = OrdersConfig::from_env(&Env::from_pairs([
            ("DATABASE_URL", db.url()),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("JWT_HS256_SECRET", SECRET),
        ]))
        .unwrap();
        let app = Application::build_with(
            config,
            Infra {
                bus: bus.clone(),
                parked: Some(bus),
                clock: Arc::new(clock),
                queues: ConsumerQueues::default(),
            },
            Peers {
                inventory: inventory.clone(),
                member: Arc::new(FakeMember::default()),
                probe: Arc::new(NoProbe),
            },
        )
        .await
        .unwrap();
        let channel = Channel::from_shared(format!("http://{}", app.grpc_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let conn = db.connect().await;
        Self {
            app: Some(app),
            db: Some(db),
            conn,
            channel,
            inventory,
        }
    }

    fn context(caller: Caller) -> CallContext {
        CallContext::with_token(token(caller).as_deref()).unwrap()
    }

    pub fn orders(&self, caller: Caller) -> Orders {
        OrderServiceClient::with_interceptor(self.channel.clone(), Self::context(caller))
    }

    pub fn stores(&self, caller: Caller) -> Stores {
        StoreServiceClient::with_interceptor(self.channel.clone(), Self::context(caller))
    }

    /// A pickup order of channel `web` at `store`, placed by admin.
    pub async fn pickup_order(&self, store: &str) -> pb::Order {
        self.inventory.set_stock("A", store, 10);
        self.orders(Caller::Role("admin"))
            .place_order(place(
                &uuid::Uuid::new_v4().to_string(),
                pickup_draft(store, &[("A", 1)]),
            ))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    pub async fn get(&self, id: &str) -> pb::Order {
        self.orders(Caller::Role("admin"))
            .get_order(pb::GetOrderRequest {
                order_id: id.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        let _ = self.conn.clone().close().await;
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

fn profile() -> pb::RoutingProfile {
    pb::RoutingProfile {
        channel_id: "web".into(),
        max_splits: 2,
        allow_ship_from_store: true,
        ..Default::default()
    }
}

/// Makes `rpc`'s call as `caller` about `order` (web's pickup at store-1); `Ok` whatever the
/// answer, unless it is one of the two authorization codes.
async fn call(
    app: &AuthApp,
    caller: Caller,
    rpc: &str,
    order: &pb::Order,
) -> Result<(), tonic::Status> {
    let (mut o, mut s) = (app.orders(caller), app.stores(caller));
    let id = order.id.clone();
    let line = order
        .lines
        .first()
        .map(|l| l.line_id.clone())
        .unwrap_or_default();
    let key = uuid::Uuid::new_v4().to_string();
    let result = match rpc {
        "PlaceOrder(web)" => o
            .place_order(place(&key, pickup_draft("store-1", &[("A", 1)])))
            .await
            .map(drop),
        "PlanOrder(web)" => o
            .plan_order(pb::PlanOrderRequest {
                order: Some(pickup_draft("store-1", &[("A", 1)])),
            })
            .await
            .map(drop),
        "GetOrder(web's)" => o
            .get_order(pb::GetOrderRequest { order_id: id })
            .await
            .map(drop),
        "ListOrders(web)" => o
            .list_orders(pb::ListOrdersRequest {
                channel_id: "web".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "ListOrders(every channel)" => o
            .list_orders(pb::ListOrdersRequest::default())
            .await
            .map(drop),
        "CancelOrder(web's)" => o
            .cancel_order(pb::CancelOrderRequest {
                order_id: id,
                lines: vec![],
                reason: "auth test".into(),
                idempotency_key: key,
            })
            .await
            .map(drop),
        "ExplainRouting(web's)" => o
            .explain_routing(pb::ExplainRoutingRequest { order_id: id })
            .await
            .map(drop),
        "GetRoutingProfile" => o
            .get_routing_profile(pb::GetRoutingProfileRequest {
                channel_id: "web".into(),
                version: 0,
            })
            .await
            .map(drop),
        "UpdateRoutingProfile" => o
            .update_routing_profile(pb::UpdateRoutingProfileRequest {
                profile: Some(profile()),
                expected_version: 0,
            })
            .await
            .map(drop),
        "SimulatePolicy" => o
            .simulate_policy(pb::SimulatePolicyRequest {
                channel_id: "web".into(),
                candidate: Some(profile()),
                last_n_orders: 10,
            })
            .await
            .map(drop),
        "ListPickups(store-1)" => s
            .list_pickups(pb::ListPickupsRequest {
                store_id: "store-1".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "MarkReady(store-1)" => s
            .mark_ready(pb::MarkReadyRequest {
                store_id: "store-1".into(),
                order_id: id,
            })
            .await
            .map(drop),
        "ConfirmPickup(store-1)" => s
            .confirm_pickup(pb::ConfirmPickupRequest {
                store_id: "store-1".into(),
                order_id: id,
                pickup_code: "000000".into(),
                lines_taken: vec![],
                idempotency_key: key,
            })
            .await
            .map(drop),
        "RejectLine(store-1)" => s
            .reject_line(pb::RejectLineRequest {
                store_id: "store-1".into(),
                order_id: id,
                line_id: line,
                quantity: 1,
                reason: "not on the shelf".into(),
                action: pb::RejectAction::Cancel as i32,
                idempotency_key: key,
            })
            .await
            .map(drop),
        "AcceptReturn(store-1)" => s
            .accept_return(pb::AcceptReturnRequest {
                store_id: "store-1".into(),
                order_id: id,
                lines: vec![pb::LineQuantity {
                    line_id: line,
                    quantity: 1,
                }],
                reason: "too small".into(),
                idempotency_key: key,
            })
            .await
            .map(drop),
        other => panic!("no call written for {other}"),
    };
    match result {
        Err(status)
            if matches!(
                status.code(),
                Code::Unauthenticated | Code::PermissionDenied
            ) =>
        {
            Err(status)
        }
        _ => Ok(()),
    }
}

#[tokio::test]
async fn every_rpc_answers_every_caller_as_the_rules_table_says() {
    let app = AuthApp::start(&["store-1", "store-2"]).await;
    let order = app.pickup_order("store-1").await;
    let table = table();
    let mut failures = Vec::new();

    // Refusals first, so their row counts compare against a quiet database.
    let before = row_counts(&app.conn).await;
    for row in &table {
        for caller in [Caller::NoToken, Caller::Expired, Caller::WrongKey] {
            match call(&app, caller, row.rpc, &order).await {
                Err(s) if s.code() == Code::Unauthenticated => {}
                other => failures.push(format!(
                    "{} with {caller:?}: expected UNAUTHENTICATED, got {other:?}",
                    row.rpc
                )),
            }
        }
        for role in ROLES.iter().filter(|r| !row.allowed.contains(r)) {
            match call(&app, Caller::Role(role), row.rpc, &order).await {
                Err(s) if s.code() == Code::PermissionDenied && s.message().contains(row.needs) => {
                }
                other => failures.push(format!(
                    "{} as {role}: expected PERMISSION_DENIED naming {:?}, got {other:?}",
                    row.rpc, row.needs
                )),
            }
        }
    }
    let after = row_counts(&app.conn).await;
    assert_eq!(before, after, "a refused call changed the database");
    assert_eq!(
        app.get(&order.id).await,
        order,
        "a refused call changed the order"
    );

    for row in &table {
        for role in row.allowed {
            if let Err(status) = call(&app, Caller::Role(role), row.rpc, &order).await {
                failures.push(format!(
                    "{} as {role}: expected to pass authorization, got {status:?}",
                    row.rpc
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells disagree with the rules table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}

/// Store staff act on their own store only: store-17's token neither sees nor changes a pickup
/// waiting at store-18, whether it names store-18 (refused by the rule) or its own store with
/// store-18's order (that order does not exist for store-17).
#[tokio::test]
async fn a_store_cannot_list_ready_or_confirm_another_stores_pickups() {
    let app = AuthApp::start(&["store-17", "store-18"]).await;
    let theirs = app.pickup_order("store-18").await;
    let mut store_17 = app.stores(Caller::Role("store:store-17"));
    let before = row_counts(&app.conn).await;

    let status = store_17
        .list_pickups(pb::ListPickupsRequest {
            store_id: "store-18".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("store:store-18"), "{status:?}");
    let own_queue = store_17
        .list_pickups(pb::ListPickupsRequest {
            store_id: "store-17".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        own_queue.pickups.is_empty(),
        "store-18's pickup leaked into store-17's queue: {own_queue:?}"
    );

    for store_id in ["store-18", "store-17"] {
        let expected = if store_id == "store-18" {
            Code::PermissionDenied
        } else {
            Code::NotFound
        };
        let status = store_17
            .mark_ready(pb::MarkReadyRequest {
                store_id: store_id.into(),
                order_id: theirs.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            expected,
            "MarkReady naming {store_id}: {status:?}"
        );
        let status = store_17
            .confirm_pickup(pb::ConfirmPickupRequest {
                store_id: store_id.into(),
                order_id: theirs.id.clone(),
                pickup_code: "000000".into(),
                lines_taken: vec![],
                idempotency_key: uuid::Uuid::new_v4().to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            expected,
            "ConfirmPickup naming {store_id}: {status:?}"
        );
    }
    assert_eq!(row_counts(&app.conn).await, before);
    assert_eq!(
        app.get(&theirs.id).await,
        theirs,
        "store-18's order changed"
    );

    // The owner still can: the refusals were about who asked, not about the order.
    let ready = app
        .stores(Caller::Role("store:store-18"))
        .mark_ready(pb::MarkReadyRequest {
            store_id: "store-18".into(),
            order_id: theirs.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ready.pickup_code.is_empty());
    app.stop().await;
}
