use std::sync::Arc;

use omni_platform::events::in_process::InProcessBus;

use super::contract;

#[tokio::test]
async fn in_process_bus_honours_the_contract() {
    let bus = Arc::new(InProcessBus::new());
    contract::run_all(
        bus.clone(),
        ["inventory.a", "inventory.b", "member.c", "orders.d"],
    )
    .await;
    // `member.tier.changed` had no queue bound: kept, like the alternate exchange does.
    assert_eq!(bus.unrouted().len(), 1);
}
