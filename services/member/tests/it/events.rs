//! Order events: earning exactly once, refunds on cancel, pro-rata reversal on return.

use omni_platform::events::names;
use omni_proto::events::v1 as ev;
use omni_proto::member::v1 as pb;

use crate::support::*;

fn completed(order: &str, member: &str, amount: i64) -> ev::OrderCompleted {
    ev::OrderCompleted {
        order_id: order.to_owned(),
        member_id: member.to_owned(),
        channel_id: "web".to_owned(),
        amount: Some(cny(amount)),
        lines: Vec::new(),
        completed_at: Some(ts(t0())),
        sequence: 3,
    }
}

fn returned(order: &str, member: &str, refund: i64, completed: i64) -> ev::OrderReturned {
    ev::OrderReturned {
        order_id: order.to_owned(),
        return_id: uuid::Uuid::new_v4().to_string(),
        member_id: member.to_owned(),
        channel_id: "web".to_owned(),
        location_id: "store-1".to_owned(),
        lines: Vec::new(),
        refund_amount: Some(cny(refund)),
        completed_amount: Some(cny(completed)),
        reason: "changed mind".to_owned(),
        returned_at: Some(ts(t0())),
        sequence: 4,
    }
}

#[tokio::test]
async fn the_same_completion_delivered_five_times_earns_once() {
    let app = TestApp::start(Broker::RabbitMq).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    let order = uuid::Uuid::new_v4().to_string();
    let event = order_event(
        names::ORDER_COMPLETED,
        &order,
        completed(&order, &member.id, 12_345),
    );
    for _ in 0..5 {
        app.publish(event.clone()).await;
    }
    // A second order after the duplicates: once it is earned, the copies were delivered too
    // (or are still in flight; then they can only fail to add more, which the check below sees).
    let marker = uuid::Uuid::new_v4().to_string();
    app.publish(order_event(
        names::ORDER_COMPLETED,
        &marker,
        completed(&marker, &member.id, 100),
    ))
    .await;
    eventually("both orders earned", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move { balance(&mut client, &id).await >= 124 }
    })
    .await;
    let entries = ledger(&mut client, &member.id).await;
    let earned: Vec<_> = entries.iter().filter(|e| e.order_id == order).collect();
    assert_eq!(earned.len(), 1, "{entries:?}");
    assert_eq!(earned[0].points, 123);
    assert_eq!(balance(&mut client, &member.id).await, 124);
    app.stop().await;
}

#[tokio::test]
async fn cancelling_after_redeeming_gives_the_points_back() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 10_000, None).await;
    let order = uuid::Uuid::new_v4().to_string();
    client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: order.clone(),
            points: 60,
            ttl: None,
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap();
    client
        .confirm_redemption(pb::ConfirmRedemptionRequest {
            order_id: order.clone(),
        })
        .await
        .unwrap();
    assert_eq!(balance(&mut client, &member.id).await, 40);
    let cancelled = ev::OrderCancelled {
        order_id: order.clone(),
        member_id: member.id.clone(),
        channel_id: "web".to_owned(),
        lines: Vec::new(),
        refund_amount: Some(cny(6_000)),
        points_to_refund: 60,
        whole_order: true,
        reason: "customer".to_owned(),
        cancelled_at: Some(ts(t0())),
        sequence: 2,
    };
    app.publish(order_event(names::ORDER_CANCELLED, &order, cancelled))
        .await;
    eventually("points refunded", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move { balance(&mut client, &id).await == 100 }
    })
    .await;
    let entries = ledger(&mut client, &member.id).await;
    assert_eq!(entries[0].kind(), pb::LedgerEntryKind::RedemptionRefunded);
    assert_eq!(entries[0].points, 60);
    app.stop().await;
}

#[tokio::test]
async fn returning_one_of_three_lines_reverses_that_share() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    let order = uuid::Uuid::new_v4().to_string();
    app.publish(order_event(
        names::ORDER_COMPLETED,
        &order,
        completed(&order, &member.id, 30_000),
    ))
    .await;
    eventually("points earned", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move { balance(&mut client, &id).await == 300 }
    })
    .await;
    // Three lines of 100.00 each; one comes back.
    app.publish(order_event(
        names::ORDER_RETURNED,
        &order,
        returned(&order, &member.id, 10_000, 30_000),
    ))
    .await;
    eventually("one line's share reversed", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move { balance(&mut client, &id).await == 200 }
    })
    .await;
    let entries = ledger(&mut client, &member.id).await;
    assert_eq!(entries[0].kind(), pb::LedgerEntryKind::Reversal);
    assert_eq!(entries[0].points, -100);
    assert_eq!(entries[0].shortfall, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_return_before_its_completion_is_applied_once_the_completion_arrives() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    let order = uuid::Uuid::new_v4().to_string();
    app.publish(order_event(
        names::ORDER_RETURNED,
        &order,
        returned(&order, &member.id, 10_000, 30_000),
    ))
    .await;
    app.publish(order_event(
        names::ORDER_COMPLETED,
        &order,
        completed(&order, &member.id, 30_000),
    ))
    .await;
    eventually("earned, then the early return reversed", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move {
            let entries = ledger(&mut client, &id).await;
            entries
                .iter()
                .any(|e| e.kind() == pb::LedgerEntryKind::Reversal)
        }
    })
    .await;
    assert_eq!(balance(&mut client, &member.id).await, 200);
    app.stop().await;
}
