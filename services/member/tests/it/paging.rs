//! Page tokens of ListLedger and ListMembers: opaque, bound to the listing that issued them,
//! valid for an hour.

use chrono::TimeDelta;
use omni_platform::grpc::status::violations_of;
use omni_proto::member::v1 as pb;
use tonic::{Code, Status};

use crate::support::*;

async fn ledger_page(
    client: &mut Client,
    member: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::ListLedgerResponse, Status> {
    client
        .list_ledger(pb::ListLedgerRequest {
            member_id: member.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn members_page(
    client: &mut Client,
    lifecycles: &[pb::LifecycleStage],
    page_token: &str,
) -> Result<pb::ListMembersResponse, Status> {
    client
        .list_members(pb::ListMembersRequest {
            filter: Some(pb::MemberFilter {
                lifecycles: lifecycles.iter().map(|&s| s.into()).collect(),
                ..Default::default()
            }),
            page_size: 1,
            page_token: page_token.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[track_caller]
fn assert_refused(result: Result<impl std::fmt::Debug, Status>, mention: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = violations_of(&status);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "page_token");
    assert!(
        violations[0].description.contains(mention),
        "{:?} should mention {mention:?}",
        violations[0].description
    );
}

/// A member with `n` EARN entries (10, 20, … points).
async fn member_with_entries(client: &mut Client, n: i64) -> String {
    let member = enroll(client, "Ana", vec![phone("+8613800138000")]).await;
    for i in 1..=n {
        buy(client, &member.id, i * 1_000, None).await;
    }
    member.id
}

#[tokio::test]
async fn a_ledger_of_several_pages_reads_back_whole_in_order_whatever_the_page_sizes() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = member_with_entries(&mut client, 7).await;
    let whole: Vec<String> = ledger(&mut client, &member)
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(whole.len(), 7);

    // The page size may change between pages; the filters may not.
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut token = String::new();
    for page_size in [3, 2, 5] {
        let page = ledger_page(&mut client, &member, page_size, &token)
            .await
            .unwrap();
        sizes.push(page.entries.len());
        paged.extend(page.entries.into_iter().map(|e| e.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(token.parse::<i64>().is_err(), "not a plain key: {token}");
    }
    assert_eq!(sizes, [3, 2, 2]);
    assert!(token.is_empty(), "the last page has no next token");
    assert_eq!(paged, whole);
    app.stop().await;
}

#[tokio::test]
async fn a_page_token_used_with_other_filters_is_refused() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let ana = member_with_entries(&mut client, 3).await;
    let other = enroll(&mut client, "Bo", vec![phone("+8613800138001")]).await;
    enroll(&mut client, "Cy", vec![phone("+8613800138002")]).await;
    let ledger_token = ledger_page(&mut client, &ana, 1, "")
        .await
        .unwrap()
        .next_page_token;
    assert_refused(
        ledger_page(&mut client, &other.id, 1, &ledger_token).await,
        "other filters",
    );

    use pb::LifecycleStage as S;
    // Bo and Cy never bought: prospects, one per page.
    let members_token = members_page(&mut client, &[S::Prospect], "")
        .await
        .unwrap()
        .next_page_token;
    assert!(!members_token.is_empty());
    assert_refused(
        members_page(&mut client, &[S::Prospect, S::Dormant], &members_token).await,
        "other filters",
    );
    // The same segment, written twice, is the same listing.
    let next = members_page(&mut client, &[S::Prospect, S::Prospect], &members_token)
        .await
        .unwrap();
    assert_eq!(next.members.len(), 1);
    // A token continues only the RPC that issued it.
    assert_refused(
        members_page(&mut client, &[], &ledger_token).await,
        "other filters",
    );
    app.stop().await;
}

#[tokio::test]
async fn an_expired_page_token_is_refused() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = member_with_entries(&mut client, 3).await;
    let token = ledger_page(&mut client, &member, 1, "")
        .await
        .unwrap()
        .next_page_token;
    app.clock.advance(TimeDelta::minutes(59));
    let page = ledger_page(&mut client, &member, 1, &token).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    app.clock.advance(TimeDelta::minutes(1));
    assert_refused(
        ledger_page(&mut client, &member, 1, &token).await,
        "expired",
    );
    // The page it issued a minute ago is still good: each token has its own hour.
    let page = ledger_page(&mut client, &member, 1, &page.next_page_token)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_altered_or_made_up_page_token_is_refused() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = member_with_entries(&mut client, 3).await;
    let token = ledger_page(&mut client, &member, 1, "")
        .await
        .unwrap()
        .next_page_token;
    // Flip one hex digit in the middle (the cursor) and one at the end (the signature).
    for at in [token.len() / 2, token.len() - 1] {
        let mut altered = token.clone().into_bytes();
        altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_refused(
            ledger_page(&mut client, &member, 1, &altered).await,
            "not a page token this API issued",
        );
    }
    // The plain keys this API used to hand out, and junk.
    for made_up in ["2", "-1", "page-2", "%%%"] {
        assert_refused(
            ledger_page(&mut client, &member, 1, made_up).await,
            "not a page token this API issued",
        );
    }
    app.stop().await;
}
