//! Eight members with hand-computed segments and report figures.
//!
//! now = 2025-07-01 12:00 UTC; every order is a whole number of days before it. Amounts in fen.
//!
//! | member | orders (days ago, channel, amount)                      | stage    | R | F | M | cross |
//! |--------|---------------------------------------------------------|----------|---|---|---|-------|
//! | m1     | 10 web 10000                                            | NEW      | 3 | 1 | 1 | no    |
//! | m2     | 20 pos 20000, 5 app 5000                                | NEW      | 4 | 3 | 2 | yes   |
//! | m3     | 30 web 30000                        (day 30 edge)       | NEW      | 2 | 1 | 3 | no    |
//! | m4     | 31 web 10000, 2 web 10000           (day 31 edge)       | GROWING  | 4 | 3 | 2 | no    |
//! | m5     | 90 pos 50000, 40 web 10000, 1 web 10000 (day 90 edge)  | GROWING  | 5 | 5 | 4 | yes   |
//! | m6     | 200 tmall 100000, 91 pos 10000, 60 tmall 10000          | CORE     | 2 | 5 | 5 | no    |
//! | m7     | 400 web 80000, 180 app 10000        (day 180 edge)      | DORMANT  | 1 | 3 | 4 | no    |
//! | m8     | none                                                    | PROSPECT | - | - | - | no    |
//! | guest  | 3 web 5000                                              |          |   |   |   |       |
//!
//! RFM over the 7 members who ordered, score = 1 + floor(5(2·below + equal) / 14):
//! - recency (days since last, fewer is better): m7 180, m6 60, m3 30, m1 10, m2 5, m4 2, m5 1
//!   → below 0..6 → 1, 2, 2, 3, 4, 4, 5.
//! - frequency: {m1, m3} = 1 → floor(10/14) → 1; {m2, m4, m7} = 2 → floor(35/14) → 3;
//!   {m5, m6} = 3 → floor(60/14) → 5.
//! - monetary: m1 10000, m4 20000, m2 25000, m3 30000, m5 70000, m7 90000, m6 120000
//!   → 1, 2, 2, 3, 4, 4, 5.
//!
//! Cross-channel (≥ 2 channels on days 0..=90): m2 (pos, app); m5 (pos on day 90 counts, web);
//! m6 has only tmall inside the window (pos is on day 91).
//!
//! Report over [now − 100 days, now): m7's orders and m6's day-200 order fall outside.
//! - web: m1 10000, m3 30000, m4 2×10000, m5 2×10000, guest 5000 → 7 orders, GMV 85000,
//!   AOV floor(85000/7) = 12142; members m1 m3 m4 m5, repeat m4 m5 → 2/4.
//! - pos: m2 20000, m5 50000, m6 10000 → 3 orders, GMV 80000, AOV 26666, repeat 0/3.
//! - app: m2 5000 → 1, 5000, 5000, 0/1.  tmall: m6 10000 → 1, 10000, 10000, 0/1.
//! - total 12 orders, GMV 180000; members who bought m1..m6 = 6; in ≥ 2 channels m2 m5 m6 → 3/6;
//!   with ≥ 2 orders m2 m4 m5 m6 → 4/6.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use omni_types::{ChannelId, Currency, Money};
use uuid::Uuid;

use super::member::MemberId;
use super::purchase::Purchase;
use super::report::{Period, Ratio, channel_report};
use super::segments::{LifecycleStage, Rfm, segment_members};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap()
}

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

fn m(n: u128) -> MemberId {
    MemberId::from(Uuid::from_u128(n))
}

fn ch(id: &str) -> ChannelId {
    ChannelId::parse(id).unwrap()
}

fn order(member: Option<u128>, days_ago: i64, channel: &str, amount: i64) -> Purchase {
    Purchase {
        member: member.map(m),
        channel: ch(channel),
        amount: Money::new(amount, cny()),
        at: now() - TimeDelta::days(days_ago),
    }
}

fn purchases() -> Vec<Purchase> {
    vec![
        order(Some(1), 10, "web", 10_000),
        order(Some(2), 20, "pos", 20_000),
        order(Some(2), 5, "app", 5_000),
        order(Some(3), 30, "web", 30_000),
        order(Some(4), 31, "web", 10_000),
        order(Some(4), 2, "web", 10_000),
        order(Some(5), 90, "pos", 50_000),
        order(Some(5), 40, "web", 10_000),
        order(Some(5), 1, "web", 10_000),
        order(Some(6), 200, "tmall", 100_000),
        order(Some(6), 91, "pos", 10_000),
        order(Some(6), 60, "tmall", 10_000),
        order(Some(7), 400, "web", 80_000),
        order(Some(7), 180, "app", 10_000),
        order(None, 3, "web", 5_000),
    ]
}

fn rfm(recency: u8, frequency: u8, monetary: u8) -> Option<Rfm> {
    Some(Rfm {
        recency,
        frequency,
        monetary,
    })
}

#[test]
fn segments_match_the_hand_computed_table() {
    let members: Vec<MemberId> = (1..=8).map(m).collect();
    let segments = segment_members(&members, &purchases(), cny(), now());

    let expected = [
        (1, LifecycleStage::New, rfm(3, 1, 1), false),
        (2, LifecycleStage::New, rfm(4, 3, 2), true),
        (3, LifecycleStage::New, rfm(2, 1, 3), false),
        (4, LifecycleStage::Growing, rfm(4, 3, 2), false),
        (5, LifecycleStage::Growing, rfm(5, 5, 4), true),
        (6, LifecycleStage::Core, rfm(2, 5, 5), false),
        (7, LifecycleStage::Dormant, rfm(1, 3, 4), false),
        (8, LifecycleStage::Prospect, None, false),
    ];
    assert_eq!(segments.len(), 8);
    for (n, stage, scores, cross) in expected {
        let segment = &segments[&m(n)];
        assert_eq!(segment.stage, stage, "stage of m{n}");
        assert_eq!(segment.rfm, scores, "rfm of m{n}");
        assert_eq!(segment.cross_channel, cross, "cross-channel of m{n}");
    }

    let channels = |ids: &[&str]| ids.iter().map(|id| ch(id)).collect::<BTreeSet<_>>();
    assert_eq!(segments[&m(2)].channels_used, channels(&["app", "pos"]));
    assert_eq!(segments[&m(6)].channels_used, channels(&["pos", "tmall"]));
    assert_eq!(segments[&m(7)].channels_used, channels(&["app", "web"]));
    assert!(segments[&m(8)].channels_used.is_empty());
}

#[test]
fn report_matches_the_hand_computed_figures() {
    let period = Period::new(now() - TimeDelta::days(100), now()).unwrap();
    let report = channel_report(&purchases(), period);

    let figures = |channel: &str| {
        let f = &report.channels[&ch(channel)];
        (
            f.orders,
            f.gmv[&cny()],
            f.aov[&cny()],
            f.repurchase.numerator,
            f.repurchase.denominator,
        )
    };
    assert_eq!(figures("web"), (7, 85_000, 12_142, 2, 4));
    assert_eq!(figures("pos"), (3, 80_000, 26_666, 0, 3));
    assert_eq!(figures("app"), (1, 5_000, 5_000, 0, 1));
    assert_eq!(figures("tmall"), (1, 10_000, 10_000, 0, 1));
    assert_eq!(report.channels.len(), 4);

    assert_eq!(report.orders, 12);
    assert_eq!(report.gmv, BTreeMap::from([(cny(), 180_000)]));
    assert_eq!(
        report.cross_channel,
        Ratio {
            numerator: 3,
            denominator: 6
        }
    );
    assert_eq!(
        report.repurchase,
        Ratio {
            numerator: 4,
            denominator: 6
        }
    );
    assert_eq!(report.cross_channel.as_f64(), Some(0.5));
}
