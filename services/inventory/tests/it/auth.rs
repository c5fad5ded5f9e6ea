//! The rules table of `src/grpc/auth_rules.rs`, enforced over the wire: every RPC, called by
//! every kind of caller, against the real application with authentication on.
//!
//! Missing, expired and foreign-signed tokens are UNAUTHENTICATED; a caller the table does not
//! list is PERMISSION_DENIED with the scope it lacks named; a listed caller gets past
//! authorization (any other answer). Denied calls leave every table's row count unchanged.
//!
//! The expected outcomes below are written from the doc table, not from the rules code, so a
//! rule that drifts from its documentation fails here.

use std::sync::Arc;
use std::time::Duration;

use omni_inventory::app::{Application, Infra};
use omni_inventory::config::InventoryConfig;
use omni_platform::auth::{Claims, LEEWAY_SECS, TokenIssuer};
use omni_platform::clock::system_clock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::grpc::client::CallContext;
use omni_platform::testkit::TestDatabase;
use omni_platform::testkit::row_counts;
use omni_proto::common::v1 as common;
use omni_proto::inventory::v1 as pb;
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use sea_orm::DatabaseConnection;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const SECRET: &str = "inventory-auth-tests-secret-0123456789";
const WRONG_SECRET: &str = "not-the-inventory-secret-0123456789abc";

/// Every role the table distinguishes, with a same-kind outsider for each scoped rule.
const ROLES: [&str; 7] = [
    "admin",
    "channel:web",
    "channel:other",
    "store:store-1",
    "store:store-2",
    "warehouse:wh-1",
    "service:orders",
];

const SKU: &str = "sku-1";
const HOLD: &str = "hold:web:cart-auth";

type Client = InventoryServiceClient<InterceptedService<Channel, CallContext>>;

/// One row of the table: an RPC with a concrete request, who may make it, and what a refusal
/// must name.
struct Row {
    rpc: &'static str,
    allowed: &'static [&'static str],
    /// The scope a refused role lacks, as the refusal states it.
    needs: fn(&str) -> String,
}

/// For rows every role may call: never asked.
fn never_refused(_: &str) -> String {
    String::new()
}

fn admin(_: &str) -> String {
    "requires admin".into()
}

fn own_hold(_: &str) -> String {
    "requires channel:web (its own checkout hold) or service:orders".into()
}

fn orders(_: &str) -> String {
    "requires service:orders or admin".into()
}

fn at_location(_: &str) -> String {
    "requires the store or warehouse of every location named, or admin".into()
}

fn availability(role: &str) -> String {
    match role.strip_prefix("channel:") {
        Some(own) => format!("requires channel_id = {own} (its own pool)"),
        None => "requires a channel, a store, service:orders or admin".into(),
    }
}

const EVERYONE: &[&str] = &ROLES;
const ADMIN: &[&str] = &["admin"];
const ORDERS: &[&str] = &["admin", "service:orders"];
const WEB_HOLD: &[&str] = &["admin", "service:orders", "channel:web"];

fn table() -> Vec<Row> {
    let row = |rpc, allowed, needs| Row {
        rpc,
        allowed,
        needs,
    };
    vec![
        row("UpsertLocation", ADMIN, admin),
        row("GetLocation", EVERYONE, never_refused),
        row("ListLocations", EVERYONE, never_refused),
        row("SetChannelPool", ADMIN, admin),
        row(
            "GetChannelPool(web)",
            &["admin", "service:orders", "channel:web"],
            |_| "requires channel:web, service:orders or admin".into(),
        ),
        row(
            "AdjustStock(store-1)",
            &["admin", "store:store-1"],
            at_location,
        ),
        row(
            "AdjustStock(wh-1)",
            &["admin", "warehouse:wh-1"],
            at_location,
        ),
        row("SetSafetyStock", ADMIN, admin),
        row(
            "ListMovements(store-1)",
            &["admin", "store:store-1"],
            at_location,
        ),
        row(
            "GetAvailability(web)",
            &[
                "admin",
                "service:orders",
                "store:store-1",
                "store:store-2",
                "channel:web",
            ],
            availability,
        ),
        row(
            "WatchAvailability(web)",
            &[
                "admin",
                "service:orders",
                "store:store-1",
                "store:store-2",
                "channel:web",
            ],
            availability,
        ),
        row("Reserve(order)", ORDERS, |_| {
            "requires service:orders (order reservations) or admin".into()
        }),
        row("Reserve(hold:web)", WEB_HOLD, own_hold),
        row("ConfirmReservation", ORDERS, orders),
        row("Commit", ORDERS, orders),
        row("Release(hold:web)", WEB_HOLD, own_hold),
        row("ExtendHold(hold:web)", WEB_HOLD, own_hold),
        row("ConvertHold(hold:web)", WEB_HOLD, own_hold),
        row("GetReservation(hold:web)", WEB_HOLD, own_hold),
        row("CheckInvariants", ADMIN, admin),
    ]
}

/// How a cell's caller presents itself.
#[derive(Debug, Clone, Copy)]
enum Caller {
    NoToken,
    Expired,
    WrongKey,
    Role(&'static str),
}

fn token(caller: Caller) -> Option<String> {
    let now = unix_now();
    match caller {
        Caller::NoToken => None,
        Caller::Expired => Some(
            TokenIssuer::hs256(SECRET.as_bytes())
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
        Caller::Role(subject) => Some(
            TokenIssuer::hs256(SECRET.as_bytes())
                .mint(subject, Duration::from_secs(600))
                .unwrap(),
        ),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct AuthApp {
    app: Option<Application>,
    db: Option<TestDatabase>,
    conn: DatabaseConnection,
    channel: Channel,
    order_reservation: String,
}

impl AuthApp {
    async fn start() -> Self {
        let db = TestDatabase::postgres().await;
        let env = Env::from_pairs([
            ("DATABASE_URL", db.url().to_owned()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("JWT_HS256_SECRET", SECRET.to_owned()),
        ]);
        let config = InventoryConfig::from_env(&env).unwrap();
        let bus = Arc::new(InProcessBus::new());
        let infra = Infra {
            bus: bus.clone(),
            parked: Some(bus),
            clock: system_clock(),
        };
        let app = Application::build(config, infra).await.unwrap();
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
            order_reservation: format!("order:{}", uuid::Uuid::new_v4()),
        }
    }

    fn client(&self, caller: Caller) -> Client {
        InventoryServiceClient::with_interceptor(
            self.channel.clone(),
            CallContext::with_token(token(caller).as_deref()).unwrap(),
        )
    }

    /// Locations, stock, the web pool, a checkout hold and an order reservation, made by admin.
    async fn seed(&self) {
        let mut admin = self.client(Caller::Role("admin"));
        for (id, kind) in [
            ("store-1", pb::LocationKind::Store),
            ("store-2", pb::LocationKind::Store),
            ("wh-1", pb::LocationKind::Warehouse),
        ] {
            admin
                .upsert_location(pb::UpsertLocationRequest {
                    location: Some(location(id, kind)),
                })
                .await
                .unwrap();
        }
        admin
            .adjust_stock(pb::AdjustStockRequest {
                adjustments: vec![adjustment("seed", "store-1", 100)],
            })
            .await
            .unwrap();
        admin
            .set_channel_pool(pb::SetChannelPoolRequest {
                channel_id: "web".into(),
                location_ids: vec!["store-1".into(), "wh-1".into()],
            })
            .await
            .unwrap();
        admin.reserve(reserve(HOLD)).await.unwrap();
        admin
            .reserve(reserve(&self.order_reservation))
            .await
            .unwrap();
    }

    /// Makes `rpc`'s call as `caller`; `Ok` whatever the answer, unless the answer is one of the
    /// two authorization codes.
    async fn call(&self, caller: Caller, rpc: &str) -> Result<(), tonic::Status> {
        let mut c = self.client(caller);
        let order = self.order_reservation.clone();
        let result = match rpc {
            "UpsertLocation" => c
                .upsert_location(pb::UpsertLocationRequest {
                    location: Some(location("store-1", pb::LocationKind::Store)),
                })
                .await
                .map(drop),
            "GetLocation" => c
                .get_location(pb::GetLocationRequest {
                    location_id: "store-1".into(),
                })
                .await
                .map(drop),
            "ListLocations" => c
                .list_locations(pb::ListLocationsRequest::default())
                .await
                .map(drop),
            "SetChannelPool" => c
                .set_channel_pool(pb::SetChannelPoolRequest {
                    channel_id: "web".into(),
                    location_ids: vec!["store-1".into(), "wh-1".into()],
                })
                .await
                .map(drop),
            "GetChannelPool(web)" => c
                .get_channel_pool(pb::GetChannelPoolRequest {
                    channel_id: "web".into(),
                })
                .await
                .map(drop),
            "AdjustStock(store-1)" => c
                .adjust_stock(pb::AdjustStockRequest {
                    adjustments: vec![adjustment(&unique_key(), "store-1", 1)],
                })
                .await
                .map(drop),
            "AdjustStock(wh-1)" => c
                .adjust_stock(pb::AdjustStockRequest {
                    adjustments: vec![adjustment(&unique_key(), "wh-1", 1)],
                })
                .await
                .map(drop),
            "SetSafetyStock" => c
                .set_safety_stock(pb::SetSafetyStockRequest {
                    sku: SKU.into(),
                    location_id: "store-1".into(),
                    safety_stock: 2,
                })
                .await
                .map(drop),
            "ListMovements(store-1)" => c
                .list_movements(pb::ListMovementsRequest {
                    location_id: "store-1".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "GetAvailability(web)" => c
                .get_availability(pb::GetAvailabilityRequest {
                    skus: vec![SKU.into()],
                    location_ids: vec![],
                    channel_id: Some("web".into()),
                    ..Default::default()
                })
                .await
                .map(drop),
            // The stream is opened and dropped: authorization happens before the first message.
            "WatchAvailability(web)" => c
                .watch_availability(pb::WatchAvailabilityRequest {
                    skus: vec![SKU.into()],
                    location_ids: vec![],
                    channel_id: Some("web".into()),
                })
                .await
                .map(drop),
            "Reserve(order)" => c.reserve(reserve(&order)).await.map(drop),
            "Reserve(hold:web)" => c.reserve(reserve(HOLD)).await.map(drop),
            "ConfirmReservation" => c
                .confirm_reservation(pb::ConfirmReservationRequest {
                    reservation_id: order,
                })
                .await
                .map(drop),
            "Commit" => c
                .commit(pb::CommitRequest {
                    reservation_id: order,
                    lines: vec![],
                    idempotency_key: unique_key(),
                })
                .await
                .map(drop),
            "Release(hold:web)" => c
                .release(pb::ReleaseRequest {
                    reservation_id: HOLD.into(),
                    lines: vec![],
                    reason: "auth test".into(),
                    idempotency_key: unique_key(),
                })
                .await
                .map(drop),
            "ExtendHold(hold:web)" => c
                .extend_hold(pb::ExtendHoldRequest {
                    reservation_id: HOLD.into(),
                    ttl: Some(seconds(600)),
                })
                .await
                .map(drop),
            "ConvertHold(hold:web)" => c
                .convert_hold(pb::ConvertHoldRequest {
                    hold_id: HOLD.into(),
                    reservation_id: format!("order:{}", uuid::Uuid::new_v4()),
                    lines: vec![],
                    ttl: Some(seconds(60)),
                    count_capacity: false,
                })
                .await
                .map(drop),
            "GetReservation(hold:web)" => c
                .get_reservation(pb::GetReservationRequest {
                    reservation_id: HOLD.into(),
                })
                .await
                .map(drop),
            "CheckInvariants" => c
                .check_invariants(pb::CheckInvariantsRequest { repair: false })
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

    async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        let _ = self.conn.clone().close().await;
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

fn location(id: &str, kind: pb::LocationKind) -> pb::Location {
    pb::Location {
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
        time_zone: "Asia/Shanghai".into(),
        active: true,
        ..Default::default()
    }
}

fn adjustment(key: &str, location: &str, qty: i64) -> pb::StockAdjustment {
    pb::StockAdjustment {
        idempotency_key: key.into(),
        sku: SKU.into(),
        location_id: location.into(),
        kind: pb::MovementKind::Receipt as i32,
        quantity: qty,
        ..Default::default()
    }
}

fn reserve(id: &str) -> pb::ReserveRequest {
    pb::ReserveRequest {
        reservation_id: id.into(),
        lines: vec![pb::ReserveLine {
            sku: SKU.into(),
            location_id: "store-1".into(),
            quantity: 1,
        }],
        ttl: Some(seconds(600)),
        count_capacity: false,
    }
}

fn seconds(seconds: i64) -> omni_proto::pbjson_types::Duration {
    omni_proto::pbjson_types::Duration { seconds, nanos: 0 }
}

fn unique_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn every_rpc_answers_every_caller_as_the_rules_table_says() {
    let app = AuthApp::start().await;
    app.seed().await;
    let table = table();
    let mut failures = Vec::new();

    // Refusals first, so their row counts compare against a quiet database.
    let before = row_counts(&app.conn).await;
    for row in &table {
        for caller in [Caller::NoToken, Caller::Expired, Caller::WrongKey] {
            match app.call(caller, row.rpc).await {
                Err(s) if s.code() == Code::Unauthenticated => {}
                other => failures.push(format!(
                    "{} with {caller:?}: expected UNAUTHENTICATED, got {other:?}",
                    row.rpc
                )),
            }
        }
        for role in ROLES.iter().filter(|r| !row.allowed.contains(r)) {
            let needs = (row.needs)(role);
            match app.call(Caller::Role(role), row.rpc).await {
                Err(s) if s.code() == Code::PermissionDenied && s.message().contains(&needs) => {}
                other => failures.push(format!(
                    "{} as {role}: expected PERMISSION_DENIED naming {needs:?}, got {other:?}",
                    row.rpc
                )),
            }
        }
    }
    let after = row_counts(&app.conn).await;
    assert_eq!(before, after, "a refused call changed the database");

    for row in &table {
        for role in row.allowed {
            if let Err(status) = app.call(Caller::Role(role), row.rpc).await {
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
