//! Tiers follow rolling 12-month spend: up when a completed order crosses a threshold, down when
//! the scheduled job sees that spend leave the window. Each change shows on GetMember and
//! reaches the broker, as does every balance change.

use chrono::TimeDelta;
use omni_platform::events::names;
use omni_proto::events::v1 as ev;
use omni_proto::member::v1 as pb;

use crate::support::*;

async fn tier(client: &mut Client, member: &str) -> pb::Tier {
    client
        .get_member(pb::GetMemberRequest {
            member_id: member.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap()
        .tier()
}

#[tokio::test]
async fn a_completed_order_upgrades_the_tier_and_the_job_downgrades_it_a_year_later() {
    let mut app = TestApp::start(Broker::RabbitMq).await;
    let observed = app.observe(&["member.#"]).await;
    let mut client = app.client().await;
    let member = enroll(&mut client, "Ana", vec![phone("+8613800138000")]).await;
    assert_eq!(member.tier(), pb::Tier::Basic);

    // 1 500.00 CNY: over silver (1 000.00), under gold (5 000.00).
    let order = uuid::Uuid::new_v4().to_string();
    let completed = ev::OrderCompleted {
        order_id: order.clone(),
        member_id: member.id.clone(),
        channel_id: "web".to_owned(),
        amount: Some(cny(150_000)),
        lines: Vec::new(),
        completed_at: Some(ts(t0())),
        sequence: 3,
    };
    app.publish(order_event(names::ORDER_COMPLETED, &order, completed))
        .await;
    eventually("silver on GetMember", || {
        let mut client = client.clone();
        let id = member.id.clone();
        async move { tier(&mut client, &id).await == pb::Tier::Silver }
    })
    .await;
    eventually("the upgrade and the points on the broker", || {
        let tiers = observed.received::<ev::TierChanged>(names::MEMBER_TIER_CHANGED, &member.id);
        let points =
            observed.received::<ev::PointsChanged>(names::MEMBER_POINTS_CHANGED, &member.id);
        async move { !tiers.is_empty() && !points.is_empty() }
    })
    .await;
    let upgrade = &observed.received::<ev::TierChanged>(names::MEMBER_TIER_CHANGED, &member.id)[0];
    assert_eq!(
        (upgrade.previous_tier(), upgrade.tier()),
        (ev::MemberTier::Basic, ev::MemberTier::Silver)
    );
    assert_eq!(upgrade.spend_12m, Some(cny(150_000)));
    let points = observed.received::<ev::PointsChanged>(names::MEMBER_POINTS_CHANGED, &member.id);
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].kind(), ev::PointsChangeKind::Earn);
    assert_eq!(points[0].points, 1_500);
    assert_eq!(points[0].balance_after, 1_500);
    assert_eq!(points[0].reason, "purchase");
    assert_eq!(points[0].order_id, order);
    assert_eq!(points[0].channel_id, "web");

    // A year and a day on, the order has left the window; its points (24-month lots) have not.
    app.clock.advance(TimeDelta::days(366));
    let report = app.jobs().run_once(app.clock_now()).await.unwrap();
    assert_eq!(report.tiers_changed, 1, "{report:?}");
    assert_eq!(report.lots_expired, 0, "{report:?}");
    assert_eq!(tier(&mut client, &member.id).await, pb::Tier::Basic);
    eventually("the downgrade on the broker", || {
        let tiers = observed.received::<ev::TierChanged>(names::MEMBER_TIER_CHANGED, &member.id);
        async move { tiers.len() >= 2 }
    })
    .await;
    let tiers = observed.received::<ev::TierChanged>(names::MEMBER_TIER_CHANGED, &member.id);
    assert_eq!(tiers.len(), 2, "{tiers:?}");
    assert_eq!(
        (tiers[1].previous_tier(), tiers[1].tier()),
        (ev::MemberTier::Silver, ev::MemberTier::Basic)
    );
    assert_eq!(tiers[1].spend_12m, Some(cny(0)));
    assert_eq!(tiers[1].changed_at, Some(ts(app.clock_now())));
    // The job runs again and finds nothing more to do.
    let report = app.jobs().run_once(app.clock_now()).await.unwrap();
    assert_eq!(report.tiers_changed, 0, "{report:?}");
    assert_eq!(balance(&mut client, &member.id).await, 1_500);
    app.stop().await;
}
