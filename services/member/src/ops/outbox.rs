//! The events this service publishes, built from what was just written.

use chrono::{DateTime, Utc};
use omni_platform::events::{Envelope, names};
use omni_proto::common::v1 as common;
use omni_proto::events::v1 as ev;
use omni_types::Currency;

use super::OpError;
use crate::domain::{EntryKind, MemberId, Tier, TierChange};
use crate::store::codec;
use crate::store::entities::entry;

/// The publishing service's short name (CloudEvents `source`).
pub const SOURCE: &str = "member";

pub fn points_kind(kind: EntryKind) -> ev::PointsChangeKind {
    use ev::PointsChangeKind as K;
    match kind {
        EntryKind::Earn => K::Earn,
        EntryKind::Redeem | EntryKind::RedeemConfirmed => K::Redeem,
        EntryKind::RedeemReleased => K::RedemptionReleased,
        EntryKind::RedeemRefunded => K::RedemptionRefunded,
        EntryKind::Reverse => K::Reversal,
        EntryKind::Expire => K::Expiry,
        EntryKind::MergeIn => K::MergeIn,
        EntryKind::MergeOut => K::MergeOut,
    }
}

pub fn event_tier(tier: Tier) -> ev::MemberTier {
    match tier {
        Tier::Base => ev::MemberTier::Basic,
        Tier::Silver => ev::MemberTier::Silver,
        Tier::Gold => ev::MemberTier::Gold,
        Tier::Platinum => ev::MemberTier::Platinum,
    }
}

pub fn timestamp(at: DateTime<Utc>) -> omni_proto::pbjson_types::Timestamp {
    omni_proto::pbjson_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn envelope(
    key: &str,
    member: &str,
    data: impl serde::Serialize,
    at: DateTime<Utc>,
) -> Result<Envelope, OpError> {
    Envelope::new(SOURCE, key, member, data)
        .map(|e| e.at(at))
        .map_err(|e| OpError::Internal(e.to_string()))
}

/// `member.points.changed` for every stored entry that moved the balance.
pub fn points_changed(rows: &[entry::Model]) -> Result<Vec<Envelope>, OpError> {
    rows.iter()
        .filter(|row| row.points != 0)
        .map(|row| {
            let kind = codec::entry_kind(&row.kind)?;
            let data = ev::PointsChanged {
                member_id: row.member_id.to_string(),
                ledger_entry_id: row.id.to_string(),
                kind: points_kind(kind).into(),
                points: row.points,
                balance_after: row.balance_after,
                order_id: row.order_id.map(|o| o.to_string()).unwrap_or_default(),
                channel_id: row.channel_id.clone().unwrap_or_default(),
                reason: row
                    .reason
                    .clone()
                    .unwrap_or_else(|| codec::entry_kind_str(kind).to_lowercase()),
                changed_at: Some(timestamp(row.created_at)),
            };
            envelope(
                names::MEMBER_POINTS_CHANGED,
                &row.member_id.to_string(),
                data,
                row.created_at,
            )
        })
        .collect()
}

pub fn tier_changed(
    member: MemberId,
    change: TierChange,
    spend: i64,
    currency: Currency,
    at: DateTime<Utc>,
) -> Result<Envelope, OpError> {
    let data = ev::TierChanged {
        member_id: member.to_string(),
        previous_tier: event_tier(change.from).into(),
        tier: event_tier(change.to).into(),
        spend_12m: Some(common::Money {
            minor_units: spend,
            currency: currency.as_str().to_owned(),
        }),
        changed_at: Some(timestamp(at)),
    };
    envelope(names::MEMBER_TIER_CHANGED, &member.to_string(), data, at)
}
