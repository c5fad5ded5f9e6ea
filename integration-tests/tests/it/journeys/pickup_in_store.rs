//! Journey 2: an app order picked up in store; a wrong pickup code is refused, the right one
//! hands the goods over, and the member earns points at handover.

use omni_proto::orders::v1::{self as ord, OrderStatus};

use crate::support::*;

pub async fn app_order_is_picked_up_with_its_code(system: &System) {
    system.store("s-jingan", (31.2230, 121.4450)).await;
    system.pool("app", &["s-jingan"]).await;
    system.receive("mug-blue", "s-jingan", 3).await;
    let member = system.enroll("app", "+8613900000002").await;

    let order = system
        .place(draft(
            "app",
            Some(&member),
            vec![line("mug-blue", 1, 8_800)],
            pickup_at("s-jingan"),
        ))
        .await
        .expect("the order is placed");
    assert_eq!(status(&order), OrderStatus::Allocated);
    assert!(
        order
            .allocations
            .iter()
            .all(|a| a.location_id == "s-jingan")
    );

    let mut staff = system.stores_as("store:s-jingan");
    let ready = staff
        .mark_ready(ord::MarkReadyRequest {
            store_id: "s-jingan".to_owned(),
            order_id: order.id.clone(),
        })
        .await
        .expect("staff mark the order ready")
        .into_inner();
    assert_eq!(
        status(ready.order.as_ref().unwrap()),
        OrderStatus::ReadyForPickup
    );
    let code = ready.pickup_code;
    assert!(!code.is_empty(), "the customer gets a pickup code");

    let confirm = |pickup_code: String| ord::ConfirmPickupRequest {
        store_id: "s-jingan".to_owned(),
        order_id: order.id.clone(),
        pickup_code,
        lines_taken: vec![],
        idempotency_key: new_key(),
    };
    let wrong = format!("{code}0");
    let refused = staff
        .confirm_pickup(confirm(wrong))
        .await
        .expect_err("a wrong code is refused");
    assert!(
        matches!(
            refused.code(),
            tonic::Code::PermissionDenied
                | tonic::Code::FailedPrecondition
                | tonic::Code::InvalidArgument
        ),
        "a wrong code is the caller's problem, not a server fault: {refused:?}"
    );
    assert_eq!(
        status(&system.order(&order.id).await),
        OrderStatus::ReadyForPickup
    );
    assert_eq!(system.balance(&member).await, 0);

    let handed = staff
        .confirm_pickup(confirm(code))
        .await
        .expect("the right code hands the order over")
        .into_inner();
    assert_eq!(
        status(handed.order.as_ref().unwrap()),
        OrderStatus::PickedUp
    );
    system
        .wait_level("stock committed at handover", "mug-blue", "s-jingan", |l| {
            l.on_hand == 2 && l.reserved == 0
        })
        .await;
    let balance = system
        .wait_balance("points earned at handover", &member, |b| b > 0)
        .await;
    assert_eq!(balance, 88, "1 point per 1 CNY on 88.00 CNY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_order_pickup_wrong_then_right_code_points_at_handover() {
    let system = System::start().await;
    app_order_is_picked_up_with_its_code(&system).await;
    system.shutdown().await;
}
