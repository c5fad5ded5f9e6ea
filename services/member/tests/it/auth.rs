//! The rules table, enforced over the wire: a denied call is PERMISSION_DENIED and writes
//! nothing.

use omni_proto::member::v1 as pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn denied_calls_write_nothing() {
    let app = TestApp::start_with(Broker::InProcess, true).await;
    let mut admin = app.client().await;
    let member = enroll(&mut admin, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut admin, &member.id, 10_000, None).await;

    // A channel may not redeem: only the orders service takes points.
    let mut web = app.client_as(Some("channel:web")).await;
    let status = web
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: uuid::Uuid::new_v4().to_string(),
            points: 10,
            ttl: None,
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(balance(&mut admin, &member.id).await, 100);

    // A store records purchases for itself only.
    let mut other_store = app.client_as(Some("store:store-2")).await;
    let status = other_store
        .record_purchase(pb::RecordPurchaseRequest {
            member: Some(pb::record_purchase_request::Member::MemberId(
                member.id.clone(),
            )),
            store_id: "store-1".to_owned(),
            channel_id: "pos".to_owned(),
            receipt_id: "r-9".to_owned(),
            amount: Some(cny(10_000)),
            occurred_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(balance(&mut admin, &member.id).await, 100);

    let status = web
        .erase_member(pb::EraseMemberRequest {
            member_id: member.id.clone(),
            request_reference: "x".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // The allowed callers get through.
    let mut orders = app.client_as(Some("service:orders")).await;
    orders
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: uuid::Uuid::new_v4().to_string(),
            points: 10,
            ttl: None,
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap();
    let mut store = app.client_as(Some("store:store-1")).await;
    buy(&mut store, &member.id, 1_000, None).await;
    assert_eq!(balance(&mut admin, &member.id).await, 100);
    let name = web
        .get_member(pb::GetMemberRequest {
            member_id: member.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap()
        .name;
    assert_eq!(name, "Ana");
    app.stop().await;
}
