//! Journey 6: a delivered web order is returned in a store; the goods go back on that store's
//! shelf and the points earned for them are reversed.

use omni_proto::orders::v1::{self as ord, OrderStatus};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_store_return_restocks_that_store_and_reverses_points() {
    let system = System::start().await;
    system.warehouse("wh-songjiang", (31.0300, 121.2200)).await;
    system.store("s-xujiahui", (31.1950, 121.4370)).await;
    system.pool("web", &["wh-songjiang"]).await;
    system.receive("jacket-down", "wh-songjiang", 4).await;
    let member = system.enroll("web", "+8613900000006").await;

    let order = system
        .place(draft(
            "web",
            Some(&member),
            vec![line("jacket-down", 2, 60_000)],
            ship_to(CUSTOMER),
        ))
        .await
        .expect("the order is placed");
    let [allocation] = order.allocations.as_slice() else {
        panic!("one shipment expected: {:?}", order.allocations);
    };
    let wms = system.wms();
    wms.dispatched(
        &order.id,
        &allocation.allocation_id,
        &allocation.location_id,
    )
    .await;
    wms.delivered(&order.id, &allocation.allocation_id).await;
    system
        .wait_order("delivery", &order.id, |o| {
            status(o) == OrderStatus::Delivered
        })
        .await;
    let earned = system
        .wait_balance("points for the delivery", &member, |b| b > 0)
        .await;
    assert_eq!(earned, 1_200);

    let line_id = order.lines[0].line_id.clone();
    let returned = system
        .stores_as("store:s-xujiahui")
        .accept_return(ord::AcceptReturnRequest {
            store_id: "s-xujiahui".to_owned(),
            order_id: order.id.clone(),
            lines: vec![ord::LineQuantity {
                line_id,
                quantity: 1,
            }],
            reason: "too small".to_owned(),
            idempotency_key: new_key(),
        })
        .await
        .expect("the store takes the return")
        .into_inner();
    assert_eq!(returned.refund.map(|m| m.minor_units), Some(60_000));

    system
        .wait_level(
            "the returned jacket on the store's shelf",
            "jacket-down",
            "s-xujiahui",
            |l| l.on_hand == 1,
        )
        .await;
    let warehouse = system.level("jacket-down", "wh-songjiang").await;
    assert_eq!((warehouse.on_hand, warehouse.reserved), (2, 0));
    system
        .wait_balance("half the points reversed", &member, |b| b == earned / 2)
        .await;
    system.shutdown().await;
}
