//! Redemptions: concurrency, idempotency, expiry of unconfirmed holds.

use chrono::TimeDelta;
use omni_platform::grpc::status::reason_of;
use omni_proto::member::v1 as pb;
use tonic::Code;

use crate::support::*;

fn redeem(member: &str, order: &str, points: i64) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        member_id: member.to_owned(),
        order_id: order.to_owned(),
        points,
        ttl: None,
        channel_id: "web".to_owned(),
    }
}

#[tokio::test]
async fn fifty_concurrent_redemptions_against_a_balance_for_twenty() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    assert_eq!(
        buy(&mut client, &member.id, 20_000, None)
            .await
            .points_earned,
        200
    );

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let mut client = client.clone();
            let request = redeem(&member.id, &uuid::Uuid::new_v4().to_string(), 10);
            tokio::spawn(async move { client.redeem_points(request).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(reason_of(&status).as_deref(), Some("INSUFFICIENT_POINTS"));
            }
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(balance(&mut client, &member.id).await, 0);
    let entries = ledger(&mut client, &member.id).await;
    assert!(entries.iter().all(|e| e.balance_after >= 0));
    assert_eq!(entries.iter().filter(|e| e.points == -10).count(), 20);
    app.stop().await;
}

#[tokio::test]
async fn redeeming_is_idempotent_on_the_order() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 10_000, None).await;
    let order = uuid::Uuid::new_v4().to_string();
    let first = client
        .redeem_points(redeem(&member.id, &order, 40))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .redeem_points(redeem(&member.id, &order, 40))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    let other = client
        .redeem_points(redeem(&member.id, &order, 41))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    assert_eq!(balance(&mut client, &member.id).await, 60);
    app.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_redemption_expires_and_the_points_come_back() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 10_000, None).await;
    let order = uuid::Uuid::new_v4().to_string();
    let mut request = redeem(&member.id, &order, 70);
    request.ttl = Some(omni_proto::pbjson_types::Duration {
        seconds: 60,
        nanos: 0,
    });
    let redemption = client
        .redeem_points(request)
        .await
        .unwrap()
        .into_inner()
        .redemption
        .unwrap();
    assert_eq!(redemption.status(), pb::RedemptionStatus::Pending);
    assert_eq!(balance(&mut client, &member.id).await, 30);

    // Not yet due: nothing moves.
    app.clock.advance(TimeDelta::seconds(59));
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .holds_released,
        0
    );
    assert_eq!(balance(&mut client, &member.id).await, 30);

    app.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .holds_released,
        1
    );
    assert_eq!(balance(&mut client, &member.id).await, 100);
    let late = client
        .confirm_redemption(pb::ConfirmRedemptionRequest { order_id: order })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&late).as_deref(), Some("REDEMPTION_EXPIRED"));
    app.stop().await;
}

#[tokio::test]
async fn a_confirmed_redemption_survives_the_sweep() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 10_000, None).await;
    let order = uuid::Uuid::new_v4().to_string();
    client
        .redeem_points(redeem(&member.id, &order, 70))
        .await
        .unwrap();
    let confirmed = client
        .confirm_redemption(pb::ConfirmRedemptionRequest { order_id: order })
        .await
        .unwrap()
        .into_inner()
        .redemption
        .unwrap();
    assert_eq!(confirmed.status(), pb::RedemptionStatus::Confirmed);
    app.clock.advance(TimeDelta::hours(2));
    app.jobs().run_once(app.clock_now()).await.unwrap();
    assert_eq!(balance(&mut client, &member.id).await, 30);
    app.stop().await;
}
