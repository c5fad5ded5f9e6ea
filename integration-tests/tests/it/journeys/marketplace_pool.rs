//! Journey 3: a marketplace sells warehouse stock only; the plan never uses a store, even one
//! next door to the customer with plenty of stock.

use omni_proto::orders::v1::OrderStatus;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketplace_order_stays_in_its_warehouse_pool() {
    let system = System::start().await;
    system.warehouse("wh-kunshan", (31.3850, 120.9800)).await;
    system.warehouse("wh-hangzhou", (30.2741, 120.1551)).await;
    system.store("s-next-door", (31.2305, 121.4738)).await;
    system.pool("tmall", &["wh-kunshan", "wh-hangzhou"]).await;
    system
        .pool("web", &["wh-kunshan", "wh-hangzhou", "s-next-door"])
        .await;
    for location in ["wh-kunshan", "wh-hangzhou", "s-next-door"] {
        system.receive("kettle", location, 10).await;
    }
    system.receive("toaster", "wh-hangzhou", 10).await;
    system.receive("toaster", "s-next-door", 10).await;

    let order = system
        .place(draft(
            "tmall",
            None,
            vec![line("kettle", 2, 19_900), line("toaster", 1, 29_900)],
            ship_to(CUSTOMER),
        ))
        .await
        .expect("the marketplace order is placed");
    assert_eq!(status(&order), OrderStatus::Allocated);
    assert!(!order.allocations.is_empty());
    for allocation in &order.allocations {
        assert!(
            allocation.location_id.starts_with("wh-"),
            "a marketplace order was routed to {}",
            allocation.location_id
        );
    }
    for sku in ["kettle", "toaster"] {
        let store = system.level(sku, "s-next-door").await;
        assert_eq!(store.reserved, 0, "{sku} was reserved at the store");
    }
    system.shutdown().await;
}
