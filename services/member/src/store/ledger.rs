//! The points ledger in rows: lots and redemptions hold the state the domain computes on;
//! entries are the append-only statement whose signed points sum to the balance.
//!
//! Callers hold the member's row lock (`members::lock`) from `load` to `save`, so the state
//! they computed on is still the state they write over.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use omni_types::OrderId;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{entry, lot, redemption};
use super::{StoreError, codec};
use crate::domain::{
    EntryKind, Ledger, LedgerEntry, LedgerParts, Lot, LotId, LotMovement, MemberId, Points,
    Redemption, RedemptionStatus,
};

pub async fn load<C: ConnectionTrait>(db: &C, member: MemberId) -> Result<Ledger, StoreError> {
    let lots =
        lot::Entity::find()
            .filter(lot::Column::MemberId.eq(member.as_uuid()))
            .all(db)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Lot {
                    id: LotId(u64::try_from(row.lot_id).map_err(|_| {
                        StoreError::Corrupt(format!("negative lot id {}", row.lot_id))
                    })?),
                    source: row.source_order.map(OrderId::from),
                    earned: row.earned,
                    remaining: row.remaining,
                    earned_at: row.earned_at,
                    expires_at: row.expires_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
    let redemptions = redemption::Entity::find()
        .filter(redemption::Column::MemberId.eq(member.as_uuid()))
        .all(db)
        .await?
        .into_iter()
        .map(to_redemption)
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ledger::restore(LedgerParts { lots, redemptions })
        .map_err(|e| StoreError::Corrupt(format!("ledger of member {member}: {e}")))
}

fn to_redemption(row: redemption::Model) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        order: OrderId::from(row.order_id),
        points: row.points,
        status: codec::redemption_status(&row.status)?,
        created_at: row.created_at,
        expires_at: row.expires_at,
        draws: serde_json::from_str::<Vec<LotMovement>>(&row.draws)?,
        refunded: row.refunded,
    })
}

fn lot_id(id: LotId) -> Result<i64, StoreError> {
    i64::try_from(id.0).map_err(|_| StoreError::Corrupt(format!("lot id {} too large", id.0)))
}

/// Writes what changed between `before` (as loaded) and `after`: lots and redemptions that are
/// new or different are upserted, lots that left the ledger (merged away) are deleted.
/// Redemptions that left are not deleted: a merge moved them, and the target's save rewrites
/// their owner.
pub async fn save<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
    before: &LedgerParts,
    after: &Ledger,
    channel: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let old_lots: BTreeMap<LotId, &Lot> = before.lots.iter().map(|l| (l.id, l)).collect();
    let changed_lots: Vec<&Lot> = after
        .lots()
        .filter(|l| old_lots.get(&l.id) != Some(l))
        .collect();
    let gone: Vec<i64> = old_lots
        .keys()
        .filter(|id| !after.lots().any(|l| l.id == **id))
        .map(|id| lot_id(*id))
        .collect::<Result<_, _>>()?;
    if !gone.is_empty() {
        lot::Entity::delete_many()
            .filter(lot::Column::MemberId.eq(member.as_uuid()))
            .filter(lot::Column::LotId.is_in(gone))
            .exec(db)
            .await?;
    }
    if !changed_lots.is_empty() {
        let rows = changed_lots
            .iter()
            .map(|l| {
                Ok(lot::ActiveModel {
                    member_id: Set(member.as_uuid()),
                    lot_id: Set(lot_id(l.id)?),
                    source_order: Set(l.source.map(|o| o.as_uuid())),
                    earned: Set(l.earned),
                    remaining: Set(l.remaining),
                    earned_at: Set(l.earned_at),
                    expires_at: Set(l.expires_at),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        lot::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([lot::Column::MemberId, lot::Column::LotId])
                    .update_columns([
                        lot::Column::SourceOrder,
                        lot::Column::Earned,
                        lot::Column::Remaining,
                        lot::Column::EarnedAt,
                        lot::Column::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }

    let old_redemptions: BTreeMap<OrderId, &Redemption> =
        before.redemptions.iter().map(|r| (r.order, r)).collect();
    let changed: Vec<&Redemption> = after
        .redemptions()
        .filter(|r| old_redemptions.get(&r.order) != Some(r))
        .collect();
    if !changed.is_empty() {
        let rows = changed
            .iter()
            .map(|r| {
                Ok(redemption::ActiveModel {
                    order_id: Set(r.order.as_uuid()),
                    member_id: Set(member.as_uuid()),
                    points: Set(r.points),
                    refunded: Set(r.refunded),
                    status: Set(codec::redemption_status_str(r.status).to_owned()),
                    draws: Set(serde_json::to_string(&r.draws)?),
                    channel_id: Set(channel.map(str::to_owned)),
                    created_at: Set(r.created_at),
                    expires_at: Set(r.expires_at),
                    updated_at: Set(now),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        redemption::Entity::insert_many(rows)
            .on_conflict(
                // The channel is the first caller's: not overwritten by later changes.
                OnConflict::column(redemption::Column::OrderId)
                    .update_columns([
                        redemption::Column::MemberId,
                        redemption::Column::Points,
                        redemption::Column::Refunded,
                        redemption::Column::Status,
                        redemption::Column::Draws,
                        redemption::Column::ExpiresAt,
                        redemption::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Where an entry came from, beyond what the domain knows.
#[derive(Debug, Clone, Default)]
pub struct EntryContext {
    pub channel: Option<String>,
    pub receipt: Option<String>,
    pub reason: Option<String>,
}

/// Appends `entries` (in order) after a balance of `balance_before`, and returns the stored rows
/// with their running `balance_after`. Entries that move no points and are not worth a
/// statement line are still written: the statement is the audit trail.
pub async fn append<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
    balance_before: Points,
    entries: &[LedgerEntry],
    ledger: &Ledger,
    context: &EntryContext,
) -> Result<Vec<entry::Model>, StoreError> {
    let mut balance = balance_before;
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        balance += e.points;
        let expires_at = match e.kind {
            EntryKind::Earn => e
                .lots
                .first()
                .and_then(|m| ledger.lots().find(|l| l.id == m.lot))
                .map(|l| l.expires_at),
            _ => None,
        };
        rows.push(entry::Model {
            seq: 0,
            id: Uuid::now_v7(),
            member_id: member.as_uuid(),
            kind: codec::entry_kind_str(e.kind).to_owned(),
            points: e.points,
            balance_after: balance,
            order_id: e.order.map(|o| o.as_uuid()),
            receipt_id: context.receipt.clone(),
            channel_id: context.channel.clone(),
            reason: context.reason.clone(),
            counterpart: e.counterpart.map(|c| c.as_uuid()),
            lots: serde_json::to_string(&e.lots)?,
            shortfall: e.shortfall,
            expires_at,
            created_at: e.at,
        });
    }
    for row in &rows {
        let active = entry::ActiveModel {
            seq: sea_orm::ActiveValue::NotSet,
            id: Set(row.id),
            member_id: Set(row.member_id),
            kind: Set(row.kind.clone()),
            points: Set(row.points),
            balance_after: Set(row.balance_after),
            order_id: Set(row.order_id),
            receipt_id: Set(row.receipt_id.clone()),
            channel_id: Set(row.channel_id.clone()),
            reason: Set(row.reason.clone()),
            counterpart: Set(row.counterpart),
            lots: Set(row.lots.clone()),
            shortfall: Set(row.shortfall),
            expires_at: Set(row.expires_at),
            created_at: Set(row.created_at),
        };
        entry::Entity::insert(active)
            .exec_without_returning(db)
            .await?;
    }
    Ok(rows)
}

/// A page of a member's statement, newest first, strictly before `before_seq` when given.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
    before_seq: Option<i64>,
    limit: u64,
) -> Result<Vec<entry::Model>, StoreError> {
    let mut query = entry::Entity::find().filter(entry::Column::MemberId.eq(member.as_uuid()));
    if let Some(seq) = before_seq {
        query = query.filter(entry::Column::Seq.lt(seq));
    }
    Ok(query
        .order_by_desc(entry::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// Every entry of a member, oldest first (export).
pub async fn all_entries<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
) -> Result<Vec<entry::Model>, StoreError> {
    Ok(entry::Entity::find()
        .filter(entry::Column::MemberId.eq(member.as_uuid()))
        .order_by_asc(entry::Column::Seq)
        .all(db)
        .await?)
}

pub async fn redemption_rows<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
) -> Result<Vec<redemption::Model>, StoreError> {
    Ok(redemption::Entity::find()
        .filter(redemption::Column::MemberId.eq(member.as_uuid()))
        .order_by_asc(redemption::Column::CreatedAt)
        .all(db)
        .await?)
}

pub async fn redemption_row<C: ConnectionTrait>(
    db: &C,
    order: OrderId,
) -> Result<Option<redemption::Model>, StoreError> {
    Ok(redemption::Entity::find_by_id(order.as_uuid())
        .one(db)
        .await?)
}

/// Members holding a pending redemption whose hold ended at or before `now`.
pub async fn members_with_expired_holds<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<MemberId>, StoreError> {
    let ids: Vec<Uuid> = redemption::Entity::find()
        .select_only()
        .column(redemption::Column::MemberId)
        .filter(
            redemption::Column::Status.eq(codec::redemption_status_str(RedemptionStatus::Pending)),
        )
        .filter(redemption::Column::ExpiresAt.lte(now))
        .distinct()
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().map(MemberId::from).collect())
}

/// Members holding points in a lot whose date has come.
pub async fn members_with_due_lots<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<MemberId>, StoreError> {
    let ids: Vec<Uuid> = lot::Entity::find()
        .select_only()
        .column(lot::Column::MemberId)
        .filter(lot::Column::Remaining.gt(0))
        .filter(lot::Column::ExpiresAt.lte(now))
        .distinct()
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().map(MemberId::from).collect())
}
