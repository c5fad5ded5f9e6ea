//! Stored planner inputs over shared location catalogues: one catalogue while the locations
//! stay as they are, a new one when one moves or opens, and replays that see each location
//! where it was when the order was placed.

use omni_order_routing::domain::planner::LocationKind;
use omni_proto::orders::v1 as pb;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::{Harness, place, ship_draft};

async fn catalogues_stored(h: &Harness) -> i64 {
    let db = h.app().orders().db();
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT count(*) AS n FROM location_catalogues",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

/// Places a one-line ship order and returns how far its one shipment travels.
async fn shipped_km(h: &Harness, key: &str, sku: &str) -> f64 {
    let order = h
        .orders
        .clone()
        .place_order(place(key, ship_draft(&[(sku, 1)])))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.allocations.len(), 1, "{key}: {order:?}");
    order.allocations[0].distance_km
}

#[tokio::test]
async fn orders_share_a_catalogue_until_a_location_moves_and_replay_where_it_was() {
    catalogues_follow_the_locations(Harness::start().await).await;
}

#[tokio::test]
async fn the_same_holds_on_sqlite_the_embedded_store() {
    catalogues_follow_the_locations(Harness::start_on_sqlite().await).await;
}

async fn catalogues_follow_the_locations(mut h: Harness) {
    h.inventory.set_stock("A", "w1", 100);
    let mut placed = vec![
        shipped_km(&h, "before-1", "A").await,
        shipped_km(&h, "before-2", "A").await,
    ];
    assert_eq!(
        catalogues_stored(&h).await,
        1,
        "same locations, one catalogue"
    );

    h.inventory.move_location("w1", 30.6, 120.5);
    placed.push(shipped_km(&h, "moved", "A").await);
    assert_eq!(
        catalogues_stored(&h).await,
        2,
        "a moved location, a new one"
    );
    assert!(
        placed[2] > placed[0] + 10.0,
        "the move changed the distance"
    );

    h.restart().await;
    placed.push(shipped_km(&h, "after-restart", "A").await);
    assert_eq!(
        catalogues_stored(&h).await,
        2,
        "a restarted service starts from the newest catalogue"
    );

    h.inventory
        .add_location("w2", LocationKind::Warehouse, 30.0, 120.0);
    h.inventory.set_stock("B", "w2", 100);
    placed.push(shipped_km(&h, "new-location", "B").await);
    assert_eq!(catalogues_stored(&h).await, 3, "a new location, a new one");

    // The live profile replays every order to the plan it was placed with: each location
    // where it was when the order saw it.
    let report = h
        .orders
        .clone()
        .simulate_policy(pb::SimulatePolicyRequest {
            channel_id: "web".into(),
            candidate: Some(pb::RoutingProfile {
                channel_id: "web".into(),
                max_splits: 1,
                ..Default::default()
            }),
            last_n_orders: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let live = report.live.unwrap();
    assert_eq!(live.orders_replayed, 5);
    assert_eq!(live.unroutable_orders, 0);
    let mean = placed.iter().sum::<f64>() / placed.len() as f64;
    assert!(
        (live.mean_distance_km - mean).abs() < 1e-9,
        "replayed {} km against {mean} km placed",
        live.mean_distance_km
    );
    h.stop().await;
}
