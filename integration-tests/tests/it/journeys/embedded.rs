//! Journeys 1, 2 and 4 on the embedded shape: SQLite files, one in-process bus, the
//! in-process reservation gate — the same stories, the same assertions.

use std::sync::Arc;

use super::{flash_sale, pickup_in_store, ship_from_store};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_web_order_ships_from_store() {
    let system = System::embedded().await;
    ship_from_store::web_order_ships_from_store_and_earns_points(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_app_order_pickup() {
    let system = System::embedded().await;
    pickup_in_store::app_order_is_picked_up_with_its_code(&system).await;
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_flash_sale() {
    let system = Arc::new(System::embedded().await);
    flash_sale::flash_sale_sells_exactly_the_stock(system.clone()).await;
    Arc::into_inner(system)
        .expect("every buyer finished")
        .shutdown()
        .await;
}
