//! Returns at a till (RecordReturn): points come back pro rata, and a reversal larger than the
//! balance stops at zero and records the shortfall.

use omni_platform::events::names;
use omni_platform::grpc::status::reason_of;
use omni_platform::testkit::unique_name;
use omni_proto::events::v1 as ev;
use omni_proto::member::v1 as pb;
use tonic::Code;

use crate::support::*;

fn till_purchase(member: &str, receipt: &str, amount: i64) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        member: Some(pb::record_purchase_request::Member::MemberId(
            member.to_owned(),
        )),
        store_id: "store-1".to_owned(),
        channel_id: "pos".to_owned(),
        receipt_id: receipt.to_owned(),
        amount: Some(cny(amount)),
        occurred_at: None,
    }
}

fn till_return(receipt: &str, return_id: &str, amount: i64) -> pb::RecordReturnRequest {
    pb::RecordReturnRequest {
        channel_id: "pos".to_owned(),
        receipt_id: receipt.to_owned(),
        return_id: return_id.to_owned(),
        amount: Some(cny(amount)),
        occurred_at: None,
    }
}

#[tokio::test]
async fn a_till_return_after_the_points_were_spent_stops_at_zero_and_records_the_shortfall() {
    let mut app = TestApp::start_with(Broker::InProcess, true).await;
    let observed = app.observe(&[names::MEMBER_POINTS_CHANGED]).await;
    let mut till = app.client_as(Some("store:store-1")).await;
    let mut orders = app.client_as(Some("service:orders")).await;
    let member = enroll(&mut till, "Ana", vec![phone("+8613800138000")]).await;
    let receipt = unique_name("receipt");
    let bought = till
        .record_purchase(till_purchase(&member.id, &receipt, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bought.points_earned, 100);
    // 80 of them are spent on an online order.
    let order = uuid::Uuid::new_v4().to_string();
    orders
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: order.clone(),
            points: 80,
            ttl: None,
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap();
    orders
        .confirm_redemption(pb::ConfirmRedemptionRequest { order_id: order })
        .await
        .unwrap();
    assert_eq!(balance(&mut till, &member.id).await, 20);

    // The whole purchase comes back to the till: 100 points to reverse, 20 left to take.
    let return_id = unique_name("return");
    let returned = till
        .record_return(till_return(&receipt, &return_id, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((returned.points_reversed, returned.shortfall), (20, 80));
    let entry = returned.entry.unwrap();
    assert_eq!(entry.kind(), pb::LedgerEntryKind::Reversal);
    assert_eq!(
        (entry.points, entry.balance_after, entry.shortfall),
        (-20, 0, 80)
    );
    assert_eq!(entry.receipt_id, receipt);
    assert_eq!(balance(&mut till, &member.id).await, 0);
    let statement = ledger(&mut till, &member.id).await;
    assert_eq!(statement[0].id, entry.id);
    assert_eq!(statement[0].shortfall, 80);
    assert!(
        statement.iter().all(|e| e.balance_after >= 0),
        "{statement:?}"
    );

    // The till retries (lost answer): the first outcome, nothing written twice.
    let again = till
        .record_return(till_return(&receipt, &return_id, 10_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.points_reversed, again.shortfall), (20, 80));
    assert!(again.entry.is_none());
    assert_eq!(ledger(&mut till, &member.id).await.len(), statement.len());

    eventually("the reversal on the bus", || {
        let seen = observed.received::<ev::PointsChanged>(names::MEMBER_POINTS_CHANGED, &member.id);
        async move {
            seen.iter()
                .any(|p| p.kind() == ev::PointsChangeKind::Reversal)
        }
    })
    .await;
    let seen = observed.received::<ev::PointsChanged>(names::MEMBER_POINTS_CHANGED, &member.id);
    let reversals: Vec<_> = seen
        .iter()
        .filter(|p| p.kind() == ev::PointsChangeKind::Reversal)
        .collect();
    assert_eq!(reversals.len(), 1, "{seen:?}");
    assert_eq!((reversals[0].points, reversals[0].balance_after), (-20, 0));
    assert_eq!(reversals[0].reason, format!("return {return_id}"));
    assert_eq!(reversals[0].ledger_entry_id, entry.id);
    app.stop().await;
}

#[tokio::test]
async fn partial_till_returns_reverse_their_share_and_add_up_to_what_was_earned() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    // Another purchase's lot, which the returns below must not touch.
    buy(&mut client, &member.id, 5_000, None).await;
    let receipt = unique_name("receipt");
    let bought = client
        .record_purchase(till_purchase(&member.id, &receipt, 10_001))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bought.points_earned, 100);
    // Three parts, each rounded down on its own would reverse 33 + 33 + 33; counted on the
    // running total they reverse exactly the 100 earned.
    let mut left = 150;
    for (amount, points) in [(3_333, 33), (3_334, 33), (3_334, 34)] {
        let returned = client
            .record_return(till_return(&receipt, &unique_name("return"), amount))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (returned.points_reversed, returned.shortfall),
            (points, 0),
            "return of {amount}"
        );
        left -= points;
        assert_eq!(returned.entry.unwrap().balance_after, left);
        assert_eq!(balance(&mut client, &member.id).await, left);
    }
    assert_eq!(left, 50);
    let status = client
        .record_return(till_return(&receipt, &unique_name("return"), 1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        reason_of(&status).as_deref(),
        Some("AMOUNT_EXCEEDS_PURCHASE")
    );
    assert_eq!(balance(&mut client, &member.id).await, 50);
    app.stop().await;
}
