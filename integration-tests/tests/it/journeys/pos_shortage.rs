//! Journey 5: the till sells the last unit that an app pickup had reserved. Inventory reports
//! the shortage, order-routing cancels the pickup line, and the points the member redeemed for
//! it come back.

use omni_proto::orders::v1::OrderStatus;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn till_sells_the_last_reserved_unit_and_the_pickup_is_cancelled() {
    let system = System::start().await;
    system.store("s-xintiandi", (31.2200, 121.4750)).await;
    system.pool("app", &["s-xintiandi"]).await;
    system.receive("scarf-silk", "s-xintiandi", 1).await;
    let member = system.enroll("app", "+8613900000005").await;
    let before = system.earn_at_till(&member, "s-xintiandi", 30_000).await;
    assert_eq!(before, 300);

    let mut redeeming = draft(
        "app",
        Some(&member),
        vec![line("scarf-silk", 1, 39_900)],
        pickup_at("s-xintiandi"),
    );
    redeeming.points_to_redeem = 100;
    let order = system.place(redeeming).await.expect("the pickup is placed");
    assert_eq!(status(&order), OrderStatus::Allocated);
    system
        .wait_balance("the redemption to be taken", &member, |b| b == before - 100)
        .await;

    system.pos_sale("scarf-silk", "s-xintiandi", 1).await;

    let cancelled = system
        .wait_order("the pickup to be cancelled", &order.id, |o| {
            status(o) == OrderStatus::Cancelled
        })
        .await;
    assert!(
        cancelled
            .allocations
            .iter()
            .all(|a| a.location_id == "s-xintiandi")
    );
    system
        .wait_level(
            "the reservation released",
            "scarf-silk",
            "s-xintiandi",
            |l| l.reserved == 0,
        )
        .await;
    let after = system
        .wait_balance("redeemed points refunded", &member, |b| b == before)
        .await;
    assert_eq!(
        after, before,
        "the member is not charged for a cancelled pickup"
    );
    system.shutdown().await;
}
