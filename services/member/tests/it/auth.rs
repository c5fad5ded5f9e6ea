//! The rules table of `src/grpc/auth_rules.rs`, enforced over the wire: every RPC, called by
//! every kind of caller, against the real application with authentication on.
//!
//! Missing, expired and foreign-signed tokens are UNAUTHENTICATED; a caller the table does not
//! list is PERMISSION_DENIED with the scope it lacks named; a listed caller gets past
//! authorization (any other answer). Denied calls write nothing. Expectations are written from
//! the doc table, not from the rules code, so a rule that drifts from its documentation fails.

use std::time::Duration;

use omni_platform::auth::{Claims, LEEWAY_SECS, TokenIssuer};
use omni_platform::grpc::client::CallContext;
use omni_platform::testkit::row_counts;
use omni_platform::testkit::unique_name;
use omni_proto::member::v1 as pb;
use omni_proto::member::v1::member_service_client::MemberServiceClient;
use tonic::Code;
use tonic::transport::Channel;

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

const WRONG_SECRET: &str = "not-the-member-secret-0123456789abcdef";

const ROLES: [&str; 7] = [
    "admin",
    "channel:web",
    "channel:other",
    "store:store-1",
    "store:store-2",
    "warehouse:wh-1",
    "service:orders",
];

/// One row of the table: an RPC with a concrete request, who may make it, and the scope a
/// refusal must name.
struct Row {
    rpc: &'static str,
    allowed: &'static [&'static str],
    needs: &'static str,
}

const CHANNELS_STORES: &[&str] = &[
    "admin",
    "channel:web",
    "channel:other",
    "store:store-1",
    "store:store-2",
];
const READERS: &[&str] = &[
    "admin",
    "channel:web",
    "channel:other",
    "store:store-1",
    "store:store-2",
    "service:orders",
];
const ORDERS: &[&str] = &["admin", "service:orders"];
const ADMIN: &[&str] = &["admin"];

fn table() -> Vec<Row> {
    let row = |rpc, allowed, needs| Row {
        rpc,
        allowed,
        needs,
    };
    let by_readers = "requires a channel, a store, service:orders or admin";
    vec![
        row(
            "EnrollMember",
            CHANNELS_STORES,
            "requires a channel, a store or admin",
        ),
        row("GetMember", READERS, by_readers),
        row(
            "LinkIdentity",
            CHANNELS_STORES,
            "requires a channel, a store or admin",
        ),
        row("ResolveMember", READERS, by_readers),
        row("GetBalance", READERS, by_readers),
        row("ListLedger", READERS, by_readers),
        row("RedeemPoints", ORDERS, "requires service:orders or admin"),
        row(
            "ConfirmRedemption",
            ORDERS,
            "requires service:orders or admin",
        ),
        row(
            "RecordPurchase(store-1)",
            &["admin", "store:store-1"],
            "requires store:store-1 or admin",
        ),
        row(
            "RecordReturn",
            &["admin", "store:store-1", "store:store-2"],
            "requires a store or admin",
        ),
        row(
            "GetMemberProfile",
            &["admin", "channel:web", "channel:other"],
            "requires a channel or admin",
        ),
        row("ListMembers", ADMIN, "requires admin"),
        row("GetChannelReport", ADMIN, "requires admin"),
        row("ExportMember", ADMIN, "requires admin"),
        row("MergeMembers", ADMIN, "requires admin"),
        // Last: once allowed, it erases the member the other rows read.
        row("EraseMember", ADMIN, "requires admin"),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Caller {
    NoToken,
    Expired,
    WrongKey,
    Role(&'static str),
}

fn token(caller: Caller) -> Option<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let issuer = TokenIssuer::hs256(SECRET.as_bytes());
    match caller {
        Caller::NoToken => None,
        Caller::Expired => Some(
            issuer
                .mint_claims(&Claims {
                    sub: "admin".into(),
                    exp: now - LEEWAY_SECS - 60,
                    nbf: None,
                    iat: Some(now - 3600),
                    iss: None,
                })
                .unwrap(),
        ),
        Caller::WrongKey => Some(
            TokenIssuer::hs256(WRONG_SECRET.as_bytes())
                .mint("admin", Duration::from_secs(600))
                .unwrap(),
        ),
        Caller::Role(subject) => Some(issuer.mint(subject, Duration::from_secs(600)).unwrap()),
    }
}

/// What the calls are about: made by admin before the table runs.
struct Fixture {
    channel: Channel,
    member: String,
    merged: String,
    phone: String,
    receipt: String,
    redeemed_order: String,
}

impl Fixture {
    async fn seed(app: &TestApp) -> Self {
        let mut admin = app.client().await;
        let phone_number = "+8613800138001".to_owned();
        let member = enroll(&mut admin, "Ana", vec![phone(&phone_number)]).await;
        let merged = enroll(&mut admin, "Ana (app)", vec![email("ana@example.com")]).await;
        let receipt = unique_name("receipt");
        admin
            .record_purchase(pb::RecordPurchaseRequest {
                member: Some(pb::record_purchase_request::Member::MemberId(
                    member.id.clone(),
                )),
                store_id: "store-1".to_owned(),
                channel_id: "pos".to_owned(),
                receipt_id: receipt.clone(),
                amount: Some(cny(10_000)),
                occurred_at: None,
            })
            .await
            .unwrap();
        let redeemed_order = uuid::Uuid::new_v4().to_string();
        admin
            .redeem_points(redeem(&member.id, &redeemed_order))
            .await
            .unwrap();
        let addr = app.app.as_ref().unwrap().grpc_addr();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            channel,
            member: member.id,
            merged: merged.id,
            phone: phone_number,
            receipt,
            redeemed_order,
        }
    }

    fn client(&self, caller: Caller) -> Client {
        MemberServiceClient::with_interceptor(
            self.channel.clone(),
            CallContext::with_token(token(caller).as_deref()).unwrap(),
        )
    }

    /// Makes `rpc`'s call as `caller`; `Ok` whatever the answer, unless it is one of the two
    /// authorization codes.
    async fn call(&self, caller: Caller, rpc: &str) -> Result<(), tonic::Status> {
        let mut c = self.client(caller);
        let member = self.member.clone();
        let result = match rpc {
            "EnrollMember" => c
                .enroll_member(pb::EnrollMemberRequest {
                    idempotency_key: unique_name("enroll"),
                    name: "Bo".to_owned(),
                    identities: vec![email(&format!("{}@example.com", unique_name("bo")))],
                    channel_id: "web".to_owned(),
                })
                .await
                .map(drop),
            "GetMember" => c
                .get_member(pb::GetMemberRequest { member_id: member })
                .await
                .map(drop),
            "LinkIdentity" => c
                .link_identity(pb::LinkIdentityRequest {
                    member_id: member,
                    identity: Some(email(&format!("{}@example.com", unique_name("ana")))),
                })
                .await
                .map(drop),
            "ResolveMember" => c
                .resolve_member(pb::ResolveMemberRequest {
                    identity: Some(phone(&self.phone)),
                })
                .await
                .map(drop),
            "GetBalance" => c
                .get_balance(pb::GetBalanceRequest { member_id: member })
                .await
                .map(drop),
            "ListLedger" => c
                .list_ledger(pb::ListLedgerRequest {
                    member_id: member,
                    ..Default::default()
                })
                .await
                .map(drop),
            "RedeemPoints" => c
                .redeem_points(redeem(&member, &uuid::Uuid::new_v4().to_string()))
                .await
                .map(drop),
            "ConfirmRedemption" => c
                .confirm_redemption(pb::ConfirmRedemptionRequest {
                    order_id: self.redeemed_order.clone(),
                })
                .await
                .map(drop),
            "RecordPurchase(store-1)" => c
                .record_purchase(pb::RecordPurchaseRequest {
                    member: Some(pb::record_purchase_request::Member::MemberId(member)),
                    store_id: "store-1".to_owned(),
                    channel_id: "pos".to_owned(),
                    receipt_id: unique_name("receipt"),
                    amount: Some(cny(1_000)),
                    occurred_at: None,
                })
                .await
                .map(drop),
            "RecordReturn" => c
                .record_return(pb::RecordReturnRequest {
                    channel_id: "pos".to_owned(),
                    receipt_id: self.receipt.clone(),
                    return_id: unique_name("return"),
                    amount: Some(cny(100)),
                    occurred_at: None,
                })
                .await
                .map(drop),
            "GetMemberProfile" => c
                .get_member_profile(pb::GetMemberProfileRequest { member_id: member })
                .await
                .map(drop),
            "ListMembers" => c
                .list_members(pb::ListMembersRequest::default())
                .await
                .map(drop),
            "GetChannelReport" => c
                .get_channel_report(pb::GetChannelReportRequest {
                    from: Some(ts(t0() - chrono::Duration::days(30))),
                    to: Some(ts(t0())),
                })
                .await
                .map(drop),
            "ExportMember" => c
                .export_member(pb::ExportMemberRequest { member_id: member })
                .await
                .map(drop),
            "MergeMembers" => c
                .merge_members(pb::MergeMembersRequest {
                    survivor_id: member,
                    merged_id: self.merged.clone(),
                    reason: "same person".to_owned(),
                })
                .await
                .map(drop),
            "EraseMember" => c
                .erase_member(pb::EraseMemberRequest {
                    member_id: member,
                    request_reference: "auth-test".to_owned(),
                })
                .await
                .map(drop),
            other => panic!("no call written for {other}"),
        };
        match result {
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unauthenticated | Code::PermissionDenied
                ) =>
            {
                Err(status)
            }
            _ => Ok(()),
        }
    }
}

fn redeem(member: &str, order: &str) -> pb::RedeemPointsRequest {
    pb::RedeemPointsRequest {
        member_id: member.to_owned(),
        order_id: order.to_owned(),
        points: 10,
        ttl: None,
        channel_id: "web".to_owned(),
    }
}

#[tokio::test]
async fn every_rpc_answers_every_caller_as_the_rules_table_says() {
    let app = TestApp::start_with(Broker::InProcess, true).await;
    let fixture = Fixture::seed(&app).await;
    let db = app.db.as_ref().unwrap().connect().await;
    let table = table();
    let mut failures = Vec::new();

    // Refusals first, so their row counts compare against a quiet database.
    let before = row_counts(&db).await;
    for row in &table {
        for caller in [Caller::NoToken, Caller::Expired, Caller::WrongKey] {
            match fixture.call(caller, row.rpc).await {
                Err(s) if s.code() == Code::Unauthenticated => {}
                other => failures.push(format!(
                    "{} with {caller:?}: expected UNAUTHENTICATED, got {other:?}",
                    row.rpc
                )),
            }
        }
        for role in ROLES.iter().filter(|r| !row.allowed.contains(r)) {
            match fixture.call(Caller::Role(role), row.rpc).await {
                Err(s) if s.code() == Code::PermissionDenied && s.message().contains(row.needs) => {
                }
                other => failures.push(format!(
                    "{} as {role}: expected PERMISSION_DENIED naming {:?}, got {other:?}",
                    row.rpc, row.needs
                )),
            }
        }
    }
    let after = row_counts(&db).await;
    assert_eq!(before, after, "a refused call changed the database");

    for row in &table {
        for role in row.allowed {
            if let Err(status) = fixture.call(Caller::Role(role), row.rpc).await {
                failures.push(format!(
                    "{} as {role}: expected to pass authorization, got {status:?}",
                    row.rpc
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells disagree with the rules table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = db.close().await;
    app.stop().await;
}
