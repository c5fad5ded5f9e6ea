//! Lifecycle stage, RFM scores and channel use of each member.
//!
//! Ages are counted in whole elapsed days: `floor((now - at) / 24 h)`, independent of time zones.
//! An order 30 days and 23 hours ago is on day 30. Dates after `now` (clock skew between services)
//! count as day 0 for stages, and are left out of RFM and channel figures.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, Currency};
use serde::{Deserialize, Serialize};

use super::member::MemberId;
use super::purchase::Purchase;

/// Last day (inclusive) a member is NEW, counted from the first order.
pub const NEW_UNTIL_DAY: i64 = 30;
/// Last day (inclusive) a member is GROWING.
pub const GROWING_UNTIL_DAY: i64 = 90;
/// From this many days without an order a member is DORMANT.
pub const DORMANT_FROM_DAY: i64 = 180;
/// Orders on days 0..=90 count towards the cross-channel flag.
pub const CROSS_CHANNEL_WINDOW_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleStage {
    /// Enrolled but has never ordered: nothing to age, and not "dormant", which means lapsed.
    Prospect,
    New,
    Growing,
    Core,
    Dormant,
}

fn days_since(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - at).num_days().max(0)
}

/// Stage from the first and last order. Edges: day 30 is NEW, day 31 GROWING, day 90 GROWING,
/// day 91 CORE; a last order 179 days ago is still active, 180 days ago is DORMANT. Dormant wins
/// over every other stage.
pub fn lifecycle_stage(
    first_order_at: Option<DateTime<Utc>>,
    last_order_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> LifecycleStage {
    let (Some(first), Some(last)) = (first_order_at, last_order_at) else {
        return LifecycleStage::Prospect;
    };
    if days_since(last, now) >= DORMANT_FROM_DAY {
        return LifecycleStage::Dormant;
    }
    let age = days_since(first, now);
    if age <= NEW_UNTIL_DAY {
        LifecycleStage::New
    } else if age <= GROWING_UNTIL_DAY {
        LifecycleStage::Growing
    } else {
        LifecycleStage::Core
    }
}

/// Each score 1 (worst) to 5 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

/// What one member's purchases add up to, up to `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberActivity {
    pub first_order_at: DateTime<Utc>,
    pub last_order_at: DateTime<Utc>,
    pub orders: u64,
    pub spend: BTreeMap<Currency, i64>,
    pub channels: BTreeSet<ChannelId>,
    /// Channels with an order in the cross-channel window.
    pub recent_channels: BTreeSet<ChannelId>,
}

impl MemberActivity {
    pub fn is_cross_channel(&self) -> bool {
        self.recent_channels.len() >= 2
    }
}

/// Folds purchases per member; guest orders and orders after `now` are skipped.
pub fn activities(
    purchases: &[Purchase],
    now: DateTime<Utc>,
) -> BTreeMap<MemberId, MemberActivity> {
    let mut out: BTreeMap<MemberId, MemberActivity> = BTreeMap::new();
    for purchase in purchases.iter().filter(|p| p.at <= now) {
        let Some(member) = purchase.member else {
            continue;
        };
        let activity = out.entry(member).or_insert_with(|| MemberActivity {
            first_order_at: purchase.at,
            last_order_at: purchase.at,
            orders: 0,
            spend: BTreeMap::new(),
            channels: BTreeSet::new(),
            recent_channels: BTreeSet::new(),
        });
        activity.first_order_at = activity.first_order_at.min(purchase.at);
        activity.last_order_at = activity.last_order_at.max(purchase.at);
        activity.orders += 1;
        let spent = activity.spend.entry(purchase.amount.currency).or_default();
        *spent = spent.saturating_add(purchase.amount.minor_units);
        activity.channels.insert(purchase.channel.clone());
        if days_since(purchase.at, now) <= CROSS_CHANNEL_WINDOW_DAYS {
            activity.recent_channels.insert(purchase.channel.clone());
        }
    }
    out
}

/// Quintile score of each value among `values`, where a larger key is better.
///
/// A member's score is where the middle of its tie group falls in the ranking:
/// `1 + floor(5 × (2·below + equal) / (2·n))`, with `below` the members strictly worse and
/// `equal` the members with the same value (itself included). So ties share one score, ten
/// distinct values give two of each score, everyone equal (including a single member) scores 3,
/// and the score never depends on input order.
fn quintile_scores<K: Ord + Copy>(keys: &[K]) -> Vec<u8> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as u128;
    keys.iter()
        .map(|key| {
            let below = sorted.partition_point(|k| k < key) as u128;
            let equal = sorted.partition_point(|k| k <= key) as u128 - below;
            let score = 1 + (5 * (2 * below + equal)) / (2 * n);
            // At most 1 + floor(5·(2n−1)/2n) = 5; the min only guards the arithmetic.
            u8::try_from(score.min(5)).unwrap_or(5)
        })
        .collect()
}

/// RFM over the members that have ordered. Recency is days since the last order (fewer is
/// better), frequency the number of orders, monetary the spend in `currency` (spend in other
/// currencies is not converted and counts as 0). Members without orders get no scores.
pub fn rfm_scores(
    activities: &BTreeMap<MemberId, MemberActivity>,
    currency: Currency,
    now: DateTime<Utc>,
) -> BTreeMap<MemberId, Rfm> {
    let members: Vec<MemberId> = activities.keys().copied().collect();
    let recency_keys: Vec<i64> = activities
        .values()
        .map(|a| -days_since(a.last_order_at, now))
        .collect();
    let frequency_keys: Vec<u64> = activities.values().map(|a| a.orders).collect();
    let monetary_keys: Vec<i64> = activities
        .values()
        .map(|a| a.spend.get(&currency).copied().unwrap_or(0))
        .collect();
    let recency = quintile_scores(&recency_keys);
    let frequency = quintile_scores(&frequency_keys);
    let monetary = quintile_scores(&monetary_keys);
    members
        .into_iter()
        .enumerate()
        .map(|(i, member)| {
            (
                member,
                Rfm {
                    recency: recency[i],
                    frequency: frequency[i],
                    monetary: monetary[i],
                },
            )
        })
        .collect()
}

/// Everything the profile shows about a member's buying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSegment {
    pub stage: LifecycleStage,
    pub rfm: Option<Rfm>,
    pub channels_used: BTreeSet<ChannelId>,
    pub cross_channel: bool,
}

/// Segments every member in `members`, scoring RFM against the members among them that ordered.
/// Purchases of members not listed are ignored, so the member base is exactly `members`.
pub fn segment_members(
    members: &[MemberId],
    purchases: &[Purchase],
    currency: Currency,
    now: DateTime<Utc>,
) -> BTreeMap<MemberId, MemberSegment> {
    let wanted: BTreeSet<MemberId> = members.iter().copied().collect();
    let mut activity = activities(purchases, now);
    activity.retain(|member, _| wanted.contains(member));
    let rfm = rfm_scores(&activity, currency, now);
    wanted
        .into_iter()
        .map(|member| {
            let segment = match activity.get(&member) {
                Some(a) => MemberSegment {
                    stage: lifecycle_stage(Some(a.first_order_at), Some(a.last_order_at), now),
                    rfm: rfm.get(&member).copied(),
                    channels_used: a.channels.clone(),
                    cross_channel: a.is_cross_channel(),
                },
                None => MemberSegment {
                    stage: LifecycleStage::Prospect,
                    rfm: None,
                    channels_used: BTreeSet::new(),
                    cross_channel: false,
                },
            };
            (member, segment)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap()
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - TimeDelta::days(days)
    }

    #[test]
    fn lifecycle_edges() {
        let stage = |first: i64, last: i64| {
            lifecycle_stage(Some(days_ago(first)), Some(days_ago(last)), now())
        };
        assert_eq!(stage(0, 0), LifecycleStage::New);
        assert_eq!(stage(30, 30), LifecycleStage::New);
        // 30 days and 23 hours is still day 30.
        assert_eq!(
            lifecycle_stage(
                Some(days_ago(31) + TimeDelta::hours(1)),
                Some(days_ago(1)),
                now()
            ),
            LifecycleStage::New
        );
        assert_eq!(stage(31, 1), LifecycleStage::Growing);
        assert_eq!(stage(90, 1), LifecycleStage::Growing);
        assert_eq!(stage(91, 1), LifecycleStage::Core);
        assert_eq!(stage(400, 179), LifecycleStage::Core);
        assert_eq!(stage(400, 180), LifecycleStage::Dormant);
        assert_eq!(lifecycle_stage(None, None, now()), LifecycleStage::Prospect);
        // An order stamped in the future counts as today.
        assert_eq!(stage(-2, -2), LifecycleStage::New);
    }

    #[test]
    fn quintiles_handle_ties_and_tiny_bases() {
        assert_eq!(quintile_scores(&[7]), vec![3]);
        assert_eq!(quintile_scores(&[4, 4, 4]), vec![3, 3, 3]);
        assert_eq!(quintile_scores(&[1, 2, 3, 4, 5]), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            quintile_scores(&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
            vec![5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
        );
        // Two members: the worse gets floor(5·1/4)+1 = 2, the better floor(5·3/4)+1 = 4.
        assert_eq!(quintile_scores(&[1, 2]), vec![2, 4]);
        assert!(quintile_scores::<i64>(&[]).is_empty());
    }

    proptest! {
        #[test]
        fn quintile_scores_are_in_range_monotonic_and_order_free(values in proptest::collection::vec(0i64..50, 1..60)) {
            let scores = quintile_scores(&values);
            for (i, a) in values.iter().enumerate() {
                prop_assert!((1..=5).contains(&scores[i]));
                for (j, b) in values.iter().enumerate() {
                    if a < b { prop_assert!(scores[i] <= scores[j]); }
                    if a == b { prop_assert_eq!(scores[i], scores[j]); }
                }
            }
            let mut reversed = values.clone();
            reversed.reverse();
            let mut back = quintile_scores(&reversed);
            back.reverse();
            prop_assert_eq!(back, scores);
        }
    }
}
