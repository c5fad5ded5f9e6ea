use std::time::Duration;

use omni::error::CliError;

use crate::support::{Stack, eventually, field};

const PHONE: &str = "+8613800138000";
const STORE: &str = "store-sh-jingan";

#[tokio::test]
async fn a_pickup_order_is_made_ready_and_handed_over_with_its_code() {
    let stack = Stack::start().await;
    let app = stack.token("channel:app");
    let staff = stack.token(&format!("store:{STORE}"));
    let before: i64 = field(&stack.admin(&["member", "balance", PHONE]).await, "balance")
        .parse()
        .unwrap();

    let placed = stack
        .omni(
            Some(&app),
            &[
                "order",
                "place",
                "--channel",
                "app",
                "--sku",
                "MUG-CLASSIC:2:4900",
                "--pickup",
                STORE,
                "--member",
                PHONE,
            ],
        )
        .await
        .expect("order placed");
    let order = field(&placed, "order");
    assert_eq!(field(&placed, "status"), "ALLOCATED");

    let queue = stack
        .omni(Some(&staff), &["store", "queue", STORE])
        .await
        .unwrap();
    assert!(queue.contains(&order), "{queue}");

    let ready = stack
        .omni(Some(&staff), &["store", "ready", STORE, &order])
        .await
        .unwrap();
    assert_eq!(field(&ready, "status"), "READY_FOR_PICKUP");
    let code = field(&ready, "pickup code");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = stack
        .omni(Some(&staff), &["store", "confirm", STORE, &order, wrong])
        .await
        .expect_err("a wrong code is refused");
    assert!(
        matches!(&refused, CliError::Refused(s) if s.code() == tonic::Code::FailedPrecondition),
        "{refused}"
    );

    let done = stack
        .omni(Some(&staff), &["store", "confirm", STORE, &order, &code])
        .await
        .expect("the right code hands the order over");
    assert_eq!(field(&done, "status"), "PICKED_UP");

    let shown = stack
        .omni(Some(&app), &["order", "show", &order])
        .await
        .unwrap();
    assert_eq!(field(&shown, "status"), "PICKED_UP");
    assert!(shown.contains("PLACE_ORDER"), "routing explained:\n{shown}");

    // Points are earned from order.completed, asynchronously.
    eventually(
        Duration::from_secs(15),
        "points earned at handover",
        || async {
            let text = stack.admin(&["member", "balance", PHONE]).await;
            let now: i64 = field(&text, "balance").parse().ok()?;
            (now > before).then_some(())
        },
    )
    .await;
    stack.stop_and_clean().await;
}
