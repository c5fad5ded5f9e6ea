//! The admin endpoint an operator scrapes: after a few calls, `/metrics` shows them counted.
//!
//! The registry is per process and tests run in parallel, so counters are compared before and
//! after this test's own calls rather than against fixed values.

use std::net::SocketAddr;
use std::sync::Arc;

use omni_inventory::app::{Application, Infra};
use omni_inventory::config::InventoryConfig;
use omni_platform::clock::system_clock;
use omni_platform::config::Env;
use omni_platform::events::in_process::InProcessBus;
use omni_platform::metrics::scrape;
use omni_platform::testkit::TestDatabase;
use omni_proto::inventory::v1 as pb;
use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::Code;

use crate::service::{order_id, reserve};

const HELD: &str = r#"inventory_reservations_total{outcome="held"}"#;
const REFUSED_STOCK: &str = r#"inventory_reservations_refused_total{reason="INSUFFICIENT_STOCK"}"#;
const OVERSELL: &str = "inventory_oversell_refused_total";
const RESERVE_OK: &str = r#"grpc_server_requests_total{code="OK",method="Reserve",service="omni.inventory.v1.InventoryService"}"#;
const RESERVE_REFUSED: &str = r#"grpc_server_requests_total{code="FAILED_PRECONDITION",method="Reserve",service="omni.inventory.v1.InventoryService"}"#;

/// The value of the series whose rendered name and labels are exactly `series` (0 if absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scraped(addr: SocketAddr) -> String {
    scrape(addr).await.unwrap()
}

#[tokio::test]
async fn metrics_show_grpc_calls_and_reservation_outcomes() {
    let db = TestDatabase::postgres().await;
    let env = Env::from_pairs([
        ("DATABASE_URL", db.url().to_owned()),
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ]);
    let config = InventoryConfig::from_env(&env).unwrap();
    let bus = Arc::new(InProcessBus::new());
    let infra = Infra {
        bus: bus.clone(),
        parked: Some(bus),
        clock: system_clock(),
    };
    let app = Application::build(config, infra).await.unwrap();
    let metrics = app.metrics_addr().expect("METRICS_ADDR was set");
    assert_ne!(metrics.port(), 0);
    let mut client = InventoryServiceClient::connect(format!("http://{}", app.grpc_addr()))
        .await
        .unwrap();
    client
        .upsert_location(pb::UpsertLocationRequest {
            location: Some(pb::Location {
                id: "wh-metrics".into(),
                kind: pb::LocationKind::Warehouse as i32,
                name: "Metrics warehouse".into(),
                capabilities: Some(pb::LocationCapabilities {
                    ships: true,
                    ..Default::default()
                }),
                time_zone: "Asia/Shanghai".into(),
                active: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    client
        .adjust_stock(pb::AdjustStockRequest {
            adjustments: vec![pb::StockAdjustment {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                sku: "SKU-M".into(),
                location_id: "wh-metrics".into(),
                kind: pb::MovementKind::Receipt as i32,
                quantity: 3,
                ..Default::default()
            }],
        })
        .await
        .unwrap();

    let before = scraped(metrics).await;
    client
        .reserve(reserve(&order_id(), &[("SKU-M", "wh-metrics", 2)]))
        .await
        .unwrap();
    let refused = client
        .reserve(reserve(&order_id(), &[("SKU-M", "wh-metrics", 2)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let after = scraped(metrics).await;

    for (series, moved_by) in [
        (HELD, 1.0),
        (REFUSED_STOCK, 1.0),
        (OVERSELL, 1.0),
        (RESERVE_OK, 1.0),
        (RESERVE_REFUSED, 1.0),
    ] {
        assert!(
            value(&after, series) - value(&before, series) >= moved_by,
            "{series} did not move by {moved_by}:\nbefore\n{before}\nafter\n{after}"
        );
    }
    assert!(after.contains("grpc_server_request_duration_seconds_bucket{method=\"Reserve\""));

    app.shutdown().await;
}
