//! Requests into domain values (every violation names its field) and domain values into
//! responses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use omni_platform::grpc::FieldViolation;
use omni_proto::common::v1 as common;
use omni_proto::member::v1 as pb;
use omni_proto::pbjson_types::Timestamp;
use omni_types::{ChannelId, Currency, Money, OrderId};

use crate::domain::{Identity, IdentityType, LifecycleStage, MemberId, MemberStatus, Tier};
use crate::ops::{OpError, Profile, outbox_timestamp};
use crate::store::codec;
use crate::store::entities::{entry, purchase, redemption};
use crate::store::members::StoredMember;

pub fn member_id(field: &str, raw: &str) -> Result<MemberId, OpError> {
    if raw.is_empty() {
        return Err(OpError::invalid(field, "must not be empty"));
    }
    MemberId::parse(raw).map_err(|_| OpError::invalid(field, "must be a UUID"))
}

pub fn order_id(field: &str, raw: &str) -> Result<OrderId, OpError> {
    OrderId::parse(raw).map_err(|e| OpError::invalid(field, e.to_string()))
}

pub fn channel_id(field: &str, raw: &str) -> Result<ChannelId, OpError> {
    ChannelId::parse(raw).map_err(|e| OpError::invalid(field, e.to_string()))
}

fn identity_type(value: i32) -> Option<IdentityType> {
    match common::IdentityType::try_from(value).ok()? {
        common::IdentityType::Unspecified => None,
        common::IdentityType::Phone => Some(IdentityType::Phone),
        common::IdentityType::Email => Some(IdentityType::Email),
        common::IdentityType::PosCard => Some(IdentityType::PosCard),
        common::IdentityType::Marketplace => Some(IdentityType::Marketplace),
        common::IdentityType::App => Some(IdentityType::App),
        common::IdentityType::MiniProgram => Some(IdentityType::MiniProgram),
    }
}

fn identity_type_to_proto(kind: IdentityType) -> common::IdentityType {
    match kind {
        IdentityType::Phone => common::IdentityType::Phone,
        IdentityType::Email => common::IdentityType::Email,
        IdentityType::PosCard => common::IdentityType::PosCard,
        IdentityType::Marketplace => common::IdentityType::Marketplace,
        IdentityType::App => common::IdentityType::App,
        IdentityType::MiniProgram => common::IdentityType::MiniProgram,
    }
}

/// `path` is where the identity sits in the request (`identity`, `identities[2]`).
pub fn identity(path: &str, value: Option<&common::Identity>) -> Result<Identity, FieldViolation> {
    let value = value.ok_or_else(|| FieldViolation::new(path, "is required"))?;
    let kind = identity_type(value.r#type).ok_or_else(|| {
        FieldViolation::new(
            format!("{path}.type"),
            format!("unknown or unspecified identity type {}", value.r#type),
        )
    })?;
    Identity::parse(kind, &value.value).map_err(|e| crate::ops::identity_violation(path, &e))
}

pub fn money(field: &str, value: Option<&common::Money>) -> Result<Money, OpError> {
    let value = value.ok_or_else(|| OpError::invalid(field, "is required"))?;
    let currency = Currency::parse(&value.currency)
        .map_err(|e| OpError::invalid(format!("{field}.currency"), e.to_string()))?;
    if value.minor_units <= 0 {
        return Err(OpError::invalid(
            format!("{field}.minor_units"),
            format!("must be positive, got {}", value.minor_units),
        ));
    }
    Ok(Money::new(value.minor_units, currency))
}

pub fn money_to_proto(minor_units: i64, currency: &str) -> common::Money {
    common::Money {
        minor_units,
        currency: currency.to_owned(),
    }
}

pub fn time(field: &str, value: Option<&Timestamp>) -> Result<Option<DateTime<Utc>>, OpError> {
    value
        .map(|t| {
            DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
                .ok_or_else(|| OpError::invalid(field, "is not a valid timestamp"))
        })
        .transpose()
}

pub fn ts(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(outbox_timestamp(at))
}

pub fn duration(
    field: &str,
    value: Option<&omni_proto::pbjson_types::Duration>,
) -> Result<Option<Duration>, OpError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let secs = u64::try_from(value.seconds).unwrap_or(0);
    if !(1..=3600).contains(&secs) || value.nanos != 0 {
        return Err(OpError::invalid(
            field,
            "must be whole seconds between 1 second and 1 hour",
        ));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// `0 = default 50; at most 500`.
pub fn page_size(value: i32) -> Result<u64, OpError> {
    match value {
        0 => Ok(50),
        1..=500 => Ok(u64::try_from(value).unwrap_or(50)),
        other => Err(OpError::invalid(
            "page_size",
            format!("must be between 0 and 500, got {other}"),
        )),
    }
}

pub fn tier(tier: Tier) -> pb::Tier {
    match tier {
        Tier::Base => pb::Tier::Basic,
        Tier::Silver => pb::Tier::Silver,
        Tier::Gold => pb::Tier::Gold,
        Tier::Platinum => pb::Tier::Platinum,
    }
}

pub fn tier_from(value: i32) -> Option<Tier> {
    match pb::Tier::try_from(value).ok()? {
        pb::Tier::Unspecified => None,
        pb::Tier::Basic => Some(Tier::Base),
        pb::Tier::Silver => Some(Tier::Silver),
        pb::Tier::Gold => Some(Tier::Gold),
        pb::Tier::Platinum => Some(Tier::Platinum),
    }
}

pub fn stage(stage: LifecycleStage) -> pb::LifecycleStage {
    match stage {
        LifecycleStage::Prospect => pb::LifecycleStage::Prospect,
        LifecycleStage::New => pb::LifecycleStage::New,
        LifecycleStage::Growing => pb::LifecycleStage::Growing,
        LifecycleStage::Core => pb::LifecycleStage::Core,
        LifecycleStage::Dormant => pb::LifecycleStage::Dormant,
    }
}

pub fn stage_from(value: i32) -> Option<LifecycleStage> {
    match pb::LifecycleStage::try_from(value).ok()? {
        pb::LifecycleStage::Unspecified => None,
        pb::LifecycleStage::Prospect => Some(LifecycleStage::Prospect),
        pb::LifecycleStage::New => Some(LifecycleStage::New),
        pb::LifecycleStage::Growing => Some(LifecycleStage::Growing),
        pb::LifecycleStage::Core => Some(LifecycleStage::Core),
        pb::LifecycleStage::Dormant => Some(LifecycleStage::Dormant),
    }
}

pub fn member(stored: &StoredMember) -> pb::Member {
    let m = &stored.member;
    let (status, merged_into) = match m.status {
        MemberStatus::Active => (pb::MemberStatus::Active, String::new()),
        MemberStatus::Merged { into, .. } => (pb::MemberStatus::Merged, into.to_string()),
        MemberStatus::Erased { .. } => (pb::MemberStatus::Erased, String::new()),
    };
    pb::Member {
        id: m.id.to_string(),
        name: m.personal.name.clone().unwrap_or_default(),
        tier: tier(m.tier).into(),
        identities: m
            .identities
            .iter()
            .map(|i| common::Identity {
                r#type: identity_type_to_proto(i.kind()).into(),
                value: i.value().to_owned(),
            })
            .collect(),
        status: status.into(),
        merged_into,
        enrolled_channel_id: stored.enrolled_channel.clone(),
        created_at: ts(m.enrolled_at),
        updated_at: ts(m.updated_at),
    }
}

fn entry_kind(raw: &str) -> pb::LedgerEntryKind {
    use crate::domain::EntryKind as K;
    match codec::entry_kind(raw) {
        Ok(K::Earn) => pb::LedgerEntryKind::Earn,
        Ok(K::Redeem | K::RedeemConfirmed) => pb::LedgerEntryKind::Redeem,
        Ok(K::RedeemReleased) => pb::LedgerEntryKind::RedemptionReleased,
        Ok(K::RedeemRefunded) => pb::LedgerEntryKind::RedemptionRefunded,
        Ok(K::Reverse) => pb::LedgerEntryKind::Reversal,
        Ok(K::Expire) => pb::LedgerEntryKind::Expiry,
        Ok(K::MergeIn) => pb::LedgerEntryKind::MergeIn,
        Ok(K::MergeOut) => pb::LedgerEntryKind::MergeOut,
        Err(_) => pb::LedgerEntryKind::Unspecified,
    }
}

pub fn entry(row: &entry::Model) -> pb::LedgerEntry {
    pb::LedgerEntry {
        id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        kind: entry_kind(&row.kind).into(),
        points: row.points,
        balance_after: row.balance_after,
        order_id: row.order_id.map(|o| o.to_string()).unwrap_or_default(),
        receipt_id: row.receipt_id.clone().unwrap_or_default(),
        channel_id: row.channel_id.clone().unwrap_or_default(),
        reason: row.reason.clone().unwrap_or_default(),
        created_at: ts(row.created_at),
        expires_at: row.expires_at.and_then(ts),
        shortfall: row.shortfall,
    }
}

pub fn redemption(row: &redemption::Model) -> pb::Redemption {
    let status = match row.status.as_str() {
        "PENDING" => pb::RedemptionStatus::Pending,
        "CONFIRMED" if row.refunded > 0 => pb::RedemptionStatus::Refunded,
        "CONFIRMED" => pb::RedemptionStatus::Confirmed,
        "RELEASED" => pb::RedemptionStatus::Released,
        _ => pb::RedemptionStatus::Unspecified,
    };
    pb::Redemption {
        order_id: row.order_id.to_string(),
        member_id: row.member_id.to_string(),
        points: row.points,
        refunded_points: row.refunded,
        status: status.into(),
        expires_at: (status == pb::RedemptionStatus::Pending)
            .then_some(row.expires_at)
            .and_then(ts),
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
    }
}

pub fn purchase(row: &purchase::Model) -> pb::Purchase {
    pb::Purchase {
        reference: row.reference.clone(),
        channel_id: row.channel_id.clone(),
        store_id: row.store_id.clone().unwrap_or_default(),
        amount: Some(money_to_proto(row.amount_minor, &row.currency)),
        returned_amount: Some(money_to_proto(row.returned_minor, &row.currency)),
        occurred_at: ts(row.occurred_at),
    }
}

pub fn profile(p: &Profile, currency: Currency) -> pb::MemberProfile {
    pb::MemberProfile {
        member_id: p.member.to_string(),
        lifecycle: stage(p.stage).into(),
        rfm: Some(p.rfm.map_or(
            pb::RfmScore {
                recency: 0,
                frequency: 0,
                monetary: 0,
            },
            |r| pb::RfmScore {
                recency: r.recency.into(),
                frequency: r.frequency.into(),
                monetary: r.monetary.into(),
            },
        )),
        channels_used: p.channels_used.iter().map(ToString::to_string).collect(),
        cross_channel: p.cross_channel,
        spend_12m: Some(money_to_proto(p.spend_12m, currency.as_str())),
        tier: tier(p.tier).into(),
        orders_12m: p.orders_12m,
        first_order_at: p.first_order_at.and_then(ts),
        last_order_at: p.last_order_at.and_then(ts),
        computed_at: ts(p.computed_at),
    }
}
