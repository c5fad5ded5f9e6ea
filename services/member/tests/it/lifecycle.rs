//! Expiry, merges, erasure, and segments / the report over a hand-computed fixture.

use chrono::{DateTime, Months, TimeDelta, Utc};
use omni_platform::events::names;
use omni_proto::events::v1 as ev;
use omni_proto::member::v1 as pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn lots_expire_oldest_first() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    buy(&mut client, &member.id, 10_000, Some(t0())).await;
    let second = t0().checked_add_months(Months::new(1)).unwrap();
    buy(&mut client, &member.id, 5_000, Some(second)).await;
    // Spending takes from the lot that expires first.
    let order = uuid::Uuid::new_v4().to_string();
    client
        .redeem_points(pb::RedeemPointsRequest {
            member_id: member.id.clone(),
            order_id: order.clone(),
            points: 30,
            ttl: None,
            channel_id: String::new(),
        })
        .await
        .unwrap();
    client
        .confirm_redemption(pb::ConfirmRedemptionRequest { order_id: order })
        .await
        .unwrap();

    let first_due = t0().checked_add_months(Months::new(24)).unwrap();
    app.clock.set(first_due - TimeDelta::seconds(1));
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .lots_expired,
        0
    );
    app.clock.set(first_due);
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .lots_expired,
        1
    );
    assert_eq!(balance(&mut client, &member.id).await, 50);
    let entries = ledger(&mut client, &member.id).await;
    assert_eq!(entries[0].kind(), pb::LedgerEntryKind::Expiry);
    assert_eq!(entries[0].points, -70);
    assert_eq!(entries[0].balance_after, 50);
    // Running again finds nothing new.
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .lots_expired,
        0
    );

    app.clock
        .set(second.checked_add_months(Months::new(24)).unwrap());
    assert_eq!(
        app.jobs()
            .run_once(app.clock_now())
            .await
            .unwrap()
            .lots_expired,
        1
    );
    assert_eq!(balance(&mut client, &member.id).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn merging_sums_the_balances_and_the_old_identities_resolve_to_the_survivor() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let ana = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    let dup = enroll(&mut client, "Ana S.", vec![email("ana@example.com")]).await;
    buy(&mut client, &ana.id, 10_000, None).await;
    buy(&mut client, &dup.id, 5_000, None).await;

    let merged = client
        .merge_members(pb::MergeMembersRequest {
            survivor_id: ana.id.clone(),
            merged_id: dup.id.clone(),
            reason: "same person, confirmed by phone".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.points_moved, 50);
    assert_eq!(merged.survivor.unwrap().identities.len(), 2);
    assert_eq!(balance(&mut client, &ana.id).await, 150);
    // The old id follows to the survivor for points; GetMember shows the tombstone.
    assert_eq!(balance(&mut client, &dup.id).await, 150);
    let old = client
        .get_member(pb::GetMemberRequest {
            member_id: dup.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(old.status(), pb::MemberStatus::Merged);
    assert_eq!(old.merged_into, ana.id);
    let resolved = client
        .resolve_member(pb::ResolveMemberRequest {
            identity: Some(email("ANA@example.com")),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(resolved.id, ana.id);
    let again = client
        .merge_members(pb::MergeMembersRequest {
            survivor_id: ana.id.clone(),
            merged_id: dup.id.clone(),
            reason: "twice".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    app.stop().await;
}

#[tokio::test]
async fn erasing_removes_identities_and_personal_fields_and_keeps_the_ledger() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let ana = enroll(
        &mut client,
        "Ana Silva",
        vec![phone("+8613800138000"), email("ana@example.com")],
    )
    .await;
    let bob = enroll(&mut client, "Bob", vec![phone("+8613800138001")]).await;
    buy(&mut client, &ana.id, 10_000, None).await;
    buy(&mut client, &bob.id, 5_000, None).await;

    let erased = client
        .erase_member(pb::EraseMemberRequest {
            member_id: ana.id.clone(),
            request_reference: "PRIV-2025-001".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(erased.status(), pb::MemberStatus::Erased);
    for identity in [phone("+8613800138000"), email("ana@example.com")] {
        let status = client
            .resolve_member(pb::ResolveMemberRequest {
                identity: Some(identity),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    let export = client
        .export_member(pb::ExportMemberRequest {
            member_id: ana.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let member = export.member.unwrap();
    assert!(member.name.is_empty() && member.identities.is_empty());
    assert_eq!(export.ledger.len(), 1, "the ledger stays for the books");
    let text = format!("{:?}", export.ledger);
    assert!(!text.contains("Ana") && !text.contains("13800138000"));

    let bob_now = client
        .resolve_member(pb::ResolveMemberRequest {
            identity: Some(phone("+8613800138001")),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(bob_now.id, bob.id);
    assert_eq!(bob_now.name, "Bob");
    assert_eq!(balance(&mut client, &bob.id).await, 50);
    app.stop().await;
}

/// The domain's fixture (src/domain/fixture_tests.rs), through the service.
#[tokio::test]
async fn segments_and_report_match_the_hand_computed_fixture() {
    let app = TestApp::start(Broker::InProcess).await;
    let mut client = app.client().await;
    let days_ago = |d: i64| -> DateTime<Utc> { t0() - TimeDelta::days(d) };
    let mut ids = Vec::new();
    for n in 1..=8 {
        let m = enroll(
            &mut client,
            &format!("m{n}"),
            vec![phone(&format!("+861380013800{n}"))],
        )
        .await;
        ids.push(m.id);
    }
    let orders: [(usize, i64, &str, i64); 14] = [
        (1, 10, "web", 10_000),
        (2, 20, "pos", 20_000),
        (2, 5, "app", 5_000),
        (3, 30, "web", 30_000),
        (4, 31, "web", 10_000),
        (4, 2, "web", 10_000),
        (5, 90, "pos", 50_000),
        (5, 40, "web", 10_000),
        (5, 1, "web", 10_000),
        (6, 200, "tmall", 100_000),
        (6, 91, "pos", 10_000),
        (6, 60, "tmall", 10_000),
        (7, 400, "web", 80_000),
        (7, 180, "app", 10_000),
    ];
    for (member, ago, channel, amount) in orders {
        buy_in(
            &mut client,
            &ids[member - 1],
            channel,
            amount,
            Some(days_ago(ago)),
        )
        .await;
    }
    let guest_order = uuid::Uuid::new_v4().to_string();
    let guest = ev::OrderCompleted {
        order_id: guest_order.clone(),
        member_id: String::new(),
        channel_id: "web".to_owned(),
        amount: Some(cny(5_000)),
        lines: Vec::new(),
        completed_at: Some(ts(days_ago(3))),
        sequence: 1,
    };
    app.publish(order_event(names::ORDER_COMPLETED, &guest_order, guest))
        .await;

    let report_request = pb::GetChannelReportRequest {
        from: Some(ts(days_ago(100))),
        to: Some(ts(t0())),
    };
    eventually("the guest order is recorded", || {
        let mut client = client.clone();
        let request = report_request;
        async move {
            let report = client
                .get_channel_report(request)
                .await
                .unwrap()
                .into_inner();
            report.channels.iter().map(|c| c.orders).sum::<u64>() == 12
        }
    })
    .await;
    let report = client
        .get_channel_report(report_request)
        .await
        .unwrap()
        .into_inner();
    let figures: Vec<(String, u64, i64, i64, u64, f64)> = report
        .channels
        .iter()
        .map(|c| {
            (
                c.channel_id.clone(),
                c.orders,
                c.gmv[0].minor_units,
                c.aov[0].minor_units,
                c.members,
                c.repurchase_rate,
            )
        })
        .collect();
    assert_eq!(
        figures,
        vec![
            ("app".to_owned(), 1, 5_000, 5_000, 1, 0.0),
            ("pos".to_owned(), 3, 80_000, 26_666, 3, 0.0),
            ("tmall".to_owned(), 1, 10_000, 10_000, 1, 0.0),
            ("web".to_owned(), 7, 85_000, 12_142, 4, 0.5),
        ]
    );
    assert_eq!(report.cross_channel_member_rate, 0.5);
    assert!((report.repurchase_rate - 4.0 / 6.0).abs() < 1e-9);
    assert_eq!(report.active_members, 6);

    use pb::LifecycleStage as S;
    let expected = [
        (S::New, (3, 1, 1), false),
        (S::New, (4, 3, 2), true),
        (S::New, (2, 1, 3), false),
        (S::Growing, (4, 3, 2), false),
        (S::Growing, (5, 5, 4), true),
        (S::Core, (2, 5, 5), false),
        (S::Dormant, (1, 3, 4), false),
        (S::Prospect, (0, 0, 0), false),
    ];
    for (i, (stage, (r, f, m), cross)) in expected.into_iter().enumerate() {
        let profile = client
            .get_member_profile(pb::GetMemberProfileRequest {
                member_id: ids[i].clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .profile
            .unwrap();
        assert_eq!(profile.lifecycle(), stage, "stage of m{}", i + 1);
        let rfm = profile.rfm.unwrap();
        assert_eq!(
            (rfm.recency, rfm.frequency, rfm.monetary),
            (r, f, m),
            "rfm of m{}",
            i + 1
        );
        assert_eq!(profile.cross_channel, cross, "cross-channel of m{}", i + 1);
    }

    let listed = client
        .list_members(pb::ListMembersRequest {
            filter: Some(pb::MemberFilter {
                cross_channel: Some(true),
                ..Default::default()
            }),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.members.len(), 1);
    let next = client
        .list_members(pb::ListMembersRequest {
            filter: Some(pb::MemberFilter {
                cross_channel: Some(true),
                ..Default::default()
            }),
            page_size: 1,
            page_token: listed.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut found: Vec<String> = listed
        .members
        .iter()
        .chain(next.members.iter())
        .map(|m| m.member.as_ref().unwrap().id.clone())
        .collect();
    found.sort();
    let mut wanted = vec![ids[1].clone(), ids[4].clone()];
    wanted.sort();
    assert_eq!(found, wanted);
    assert!(next.next_page_token.is_empty());
    app.stop().await;
}
