//! Bad input is refused naming the field or the balance, and writes nothing.

use omni_platform::grpc::status::{reason_of, violations_of};
use omni_proto::common::v1 as common;
use omni_proto::member::v1 as pb;
use tonic::Code;

use crate::support::*;

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.db.as_ref().unwrap().connect().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn enroll_with(identity: common::Identity) -> pb::EnrollMemberRequest {
    pb::EnrollMemberRequest {
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        name: "Ana".to_owned(),
        identities: vec![phone("+8613800138000"), identity],
        channel_id: "web".to_owned(),
    }
}

#[tokio::test]
async fn malformed_identities_name_the_field_and_write_nothing() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let cases = [
        (phone("138 0013 8000"), "identities[1].value", "phone"),
        (email("ana@@example.com"), "identities[1].value", "email"),
        (
            common::Identity {
                r#type: 42,
                value: "x".to_owned(),
            },
            "identities[1].type",
            "identity type",
        ),
        (
            common::Identity {
                r#type: 0,
                value: "x".to_owned(),
            },
            "identities[1].type",
            "identity type",
        ),
    ];
    for (identity, field, mention) in cases {
        let status = client
            .enroll_member(enroll_with(identity))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let violations = violations_of(&status);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, field);
        assert!(
            violations[0].description.contains(mention),
            "{violations:?}"
        );
    }
    assert_eq!(count(&app, "members").await, 0);
    assert_eq!(count(&app, "member_identities").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn bad_points_and_overspending_are_refused_and_write_nothing() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 5_000, None).await;
    let entries_before = count(&app, "ledger_entries").await;
    for points in [0, -5] {
        let status = client
            .redeem_points(pb::RedeemPointsRequest {
                member_id: member.id.clone(),
                order_id: uuid::Uuid::new_v4().to_string(),
                points,
                ttl: None,
                channel_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations_of(&status)[0].field, "points");
    }
    let status = client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: uuid::Uuid::new_v4().to_string(),
            points: 51,
            ttl: None,
            channel_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status).as_deref(), Some("INSUFFICIENT_POINTS"));
    assert!(
        status.message().contains("balance 50"),
        "{}",
        status.message()
    );
    assert_eq!(count(&app, "ledger_entries").await, entries_before);
    assert_eq!(count(&app, "redemptions").await, 0);
    assert_eq!(balance(&mut client, &member.id).await, 50);

    let status = client
        .record_purchase(pb::RecordPurchaseRequest {
            member: Some(pb::record_purchase_request::Member::MemberId(
                member.id.clone(),
            )),
            store_id: "store-1".to_owned(),
            channel_id: "pos".to_owned(),
            receipt_id: "r-1".to_owned(),
            amount: Some(cny(0)),
            occurred_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations_of(&status)[0].field, "amount.minor_units");
    app.stop().await;
}

#[tokio::test]
async fn an_identity_has_one_owner() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let ana = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    let bob = enroll(&mut client, "Bob", vec![phone("+8613800138001")]).await;
    // Another spelling of Ana's number.
    let status = client
        .link_identity(pb::LinkIdentityRequest {
            member_id: bob.id.clone(),
            identity: Some(phone("+86 138 0013 8000")),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains(&ana.id));
    let status = client
        .enroll_member(pb::EnrollMemberRequest {
            idempotency_key: "k-2".to_owned(),
            name: "Eve".to_owned(),
            identities: vec![phone("+86-138-0013-8000")],
            channel_id: "web".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(count(&app, "members").await, 2);
    app.stop().await;
}
