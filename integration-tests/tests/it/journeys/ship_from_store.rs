//! Journey 1: a web order ships from the store nearest the customer; the warehouse system
//! reports dispatch and delivery; the member earns points on delivery.

use omni_proto::orders::v1::{AllocationKind, OrderStatus};

use crate::support::*;

/// The shared story, run on both shapes of the system.
pub async fn web_order_ships_from_store_and_earns_points(system: &System) {
    system.warehouse("wh-beijing", (39.9042, 116.4074)).await;
    system.store("s-nanjing-road", (31.2350, 121.4750)).await;
    system.pool("web", &["wh-beijing", "s-nanjing-road"]).await;
    system.receive("tee-red-m", "s-nanjing-road", 5).await;
    let member = system.enroll("web", "+8613900000001").await;
    assert_eq!(system.balance(&member).await, 0);

    let order = system
        .place(draft(
            "web",
            Some(&member),
            vec![line("tee-red-m", 2, 5_000)],
            ship_to(CUSTOMER),
        ))
        .await
        .expect("the order is placed");
    assert_eq!(status(&order), OrderStatus::Allocated);
    let [allocation] = order.allocations.as_slice() else {
        panic!("one shipment expected: {:?}", order.allocations);
    };
    assert_eq!(allocation.location_id, "s-nanjing-road");
    assert_eq!(allocation.kind, AllocationKind::Ship as i32);
    let held = system.level("tee-red-m", "s-nanjing-road").await;
    assert_eq!((held.on_hand, held.reserved), (5, 2));

    let wms = system.wms();
    wms.dispatched(&order.id, &allocation.allocation_id, "s-nanjing-road")
        .await;
    system
        .wait_order("the order to ship", &order.id, |o| {
            status(o) == OrderStatus::Shipped
        })
        .await;
    system
        .wait_level(
            "stock committed at the store",
            "tee-red-m",
            "s-nanjing-road",
            |l| l.on_hand == 3 && l.reserved == 0,
        )
        .await;

    wms.delivered(&order.id, &allocation.allocation_id).await;
    system
        .wait_order("the order to be delivered", &order.id, |o| {
            status(o) == OrderStatus::Delivered
        })
        .await;
    let balance = system
        .wait_balance("points for the delivered order", &member, |b| b > 0)
        .await;
    assert_eq!(balance, 100, "1 point per 1 CNY on 100.00 CNY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_order_ships_from_store_dispatched_delivered_points_earned() {
    let system = System::start().await;
    web_order_ships_from_store_and_earns_points(&system).await;
    system.shutdown().await;
}
