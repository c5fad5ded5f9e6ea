//! Members and the identity index (one identity, one owner).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{identity, member};
use super::{StoreError, codec};
use crate::domain::{Identity, Member, MemberId, MemberStatus, PersonalData};

/// A member as stored: the domain record plus what only the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member: Member,
    pub enrolled_channel: String,
}

fn status_parts(status: MemberStatus) -> (&'static str, Option<Uuid>) {
    match status {
        MemberStatus::Active => ("ACTIVE", None),
        MemberStatus::Merged { into, .. } => ("MERGED", Some(into.as_uuid())),
        MemberStatus::Erased { .. } => ("ERASED", None),
    }
}

fn to_domain(
    row: member::Model,
    identities: Vec<identity::Model>,
) -> Result<StoredMember, StoreError> {
    let status = match (row.status.as_str(), row.merged_into) {
        ("ACTIVE", _) => MemberStatus::Active,
        ("MERGED", Some(into)) => MemberStatus::Merged {
            into: MemberId::from(into),
            at: row.updated_at,
        },
        ("ERASED", _) => MemberStatus::Erased { at: row.updated_at },
        (other, _) => {
            return Err(StoreError::Corrupt(format!(
                "member {} has status {other:?}",
                row.id
            )));
        }
    };
    let identities = identities
        .into_iter()
        .map(|i| {
            Identity::parse(codec::identity_type(&i.kind)?, &i.value)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoredMember {
        member: Member {
            id: MemberId::from(row.id),
            status,
            personal: PersonalData {
                name: row.name,
                birth_date: row.birth_date,
            },
            identities,
            tier: codec::tier(&row.tier)?,
            enrolled_at: row.created_at,
            updated_at: row.updated_at,
        },
        enrolled_channel: row.enrolled_channel_id,
    })
}

async fn identities_of<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Vec<identity::Model>, StoreError> {
    Ok(identity::Entity::find()
        .filter(identity::Column::MemberId.eq(id))
        .order_by_asc(identity::Column::LinkedAt)
        .order_by_asc(identity::Column::Kind)
        .order_by_asc(identity::Column::Value)
        .all(db)
        .await?)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: MemberId,
) -> Result<Option<StoredMember>, StoreError> {
    let Some(row) = member::Entity::find_by_id(id.as_uuid()).one(db).await? else {
        return Ok(None);
    };
    let identities = identities_of(db, row.id).await?;
    to_domain(row, identities).map(Some)
}

/// Loads the member and holds its row lock until the transaction ends: the lock every change
/// of this member's ledger or identities takes first, so they serialise across replicas.
pub async fn lock<C: ConnectionTrait>(
    txn: &C,
    id: MemberId,
) -> Result<Option<StoredMember>, StoreError> {
    let Some(row) = member::Entity::find_by_id(id.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let identities = identities_of(txn, row.id).await?;
    to_domain(row, identities).map(Some)
}

pub async fn find_by_enroll_key<C: ConnectionTrait>(
    db: &C,
    key: &str,
) -> Result<Option<StoredMember>, StoreError> {
    let Some(row) = member::Entity::find()
        .filter(member::Column::EnrollKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let identities = identities_of(db, row.id).await?;
    to_domain(row, identities).map(Some)
}

pub async fn owner_of<C: ConnectionTrait>(
    db: &C,
    identity: &Identity,
) -> Result<Option<MemberId>, StoreError> {
    Ok(identity::Entity::find_by_id((
        identity.kind().as_str().to_owned(),
        identity.value().to_owned(),
    ))
    .one(db)
    .await?
    .map(|row| MemberId::from(row.member_id)))
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    stored: &StoredMember,
    enroll_key: Option<&str>,
) -> Result<(), StoreError> {
    let m = &stored.member;
    let (status, merged_into) = status_parts(m.status);
    member::Entity::insert(member::ActiveModel {
        id: Set(m.id.as_uuid()),
        status: Set(status.to_owned()),
        merged_into: Set(merged_into),
        name: Set(m.personal.name.clone()),
        birth_date: Set(m.personal.birth_date),
        tier: Set(m.tier.as_str().to_owned()),
        enrolled_channel_id: Set(stored.enrolled_channel.clone()),
        enroll_key: Set(enroll_key.map(str::to_owned)),
        erasure_reference: Set(None),
        created_at: Set(m.enrolled_at),
        updated_at: Set(m.updated_at),
    })
    .exec_without_returning(db)
    .await?;
    add_identities(db, m.id, &m.identities, m.enrolled_at).await
}

/// Adds identity rows; a key another member holds fails with [`StoreError::Conflict`].
pub async fn add_identities<C: ConnectionTrait>(
    db: &C,
    id: MemberId,
    identities: &[Identity],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if identities.is_empty() {
        return Ok(());
    }
    identity::Entity::insert_many(identities.iter().map(|i| identity::ActiveModel {
        kind: Set(i.kind().as_str().to_owned()),
        value: Set(i.value().to_owned()),
        member_id: Set(id.as_uuid()),
        linked_at: Set(now),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Writes the member's own fields (status, personal data, tier). Identities change separately.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    m: &Member,
    erasure_reference: Option<&str>,
) -> Result<(), StoreError> {
    let (status, merged_into) = status_parts(m.status);
    let mut row = member::ActiveModel {
        id: Set(m.id.as_uuid()),
        status: Set(status.to_owned()),
        merged_into: Set(merged_into),
        name: Set(m.personal.name.clone()),
        birth_date: Set(m.personal.birth_date),
        tier: Set(m.tier.as_str().to_owned()),
        updated_at: Set(m.updated_at),
        ..Default::default()
    };
    if let Some(reference) = erasure_reference {
        row.erasure_reference = Set(Some(reference.to_owned()));
    }
    member::Entity::update(row).exec(db).await?;
    Ok(())
}

/// Moves every identity of `from` to `to` (a merge).
pub async fn move_identities<C: ConnectionTrait>(
    db: &C,
    from: MemberId,
    to: MemberId,
) -> Result<(), StoreError> {
    identity::Entity::update_many()
        .col_expr(
            identity::Column::MemberId,
            sea_orm::sea_query::Expr::value(to.as_uuid()),
        )
        .filter(identity::Column::MemberId.eq(from.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete_identities<C: ConnectionTrait>(db: &C, id: MemberId) -> Result<(), StoreError> {
    identity::Entity::delete_many()
        .filter(identity::Column::MemberId.eq(id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// Members whose status is ACTIVE, ordered by id, for listings and segment bases.
pub async fn active<C: ConnectionTrait>(db: &C) -> Result<Vec<StoredMember>, StoreError> {
    let rows = member::Entity::find()
        .filter(member::Column::Status.eq("ACTIVE"))
        .order_by_asc(member::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut identities: std::collections::HashMap<Uuid, Vec<identity::Model>> =
        std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        for row in identity::Entity::find()
            .filter(identity::Column::MemberId.is_in(chunk.iter().copied()))
            .order_by_asc(identity::Column::LinkedAt)
            .all(db)
            .await?
        {
            identities.entry(row.member_id).or_default().push(row);
        }
    }
    rows.into_iter()
        .map(|row| {
            let ids = identities.remove(&row.id).unwrap_or_default();
            to_domain(row, ids)
        })
        .collect()
}

/// Active members above the base tier: candidates for the downgrade job.
pub async fn tiered_member_ids<C: ConnectionTrait>(db: &C) -> Result<Vec<MemberId>, StoreError> {
    Ok(member::Entity::find()
        .select_only()
        .column(member::Column::Id)
        .filter(member::Column::Status.eq("ACTIVE"))
        .filter(member::Column::Tier.ne(crate::domain::Tier::Base.as_str()))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .map(MemberId::from)
        .collect())
}

/// Claims one member for a job on PostgreSQL: `SKIP LOCKED`, so a replica (or a request)
/// already working on it is not waited for; the next run picks it up.
pub async fn try_lock<C: ConnectionTrait>(
    txn: &C,
    id: MemberId,
) -> Result<Option<StoredMember>, StoreError> {
    let Some(row) = member::Entity::find_by_id(id.as_uuid())
        .lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        )
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let identities = identities_of(txn, row.id).await?;
    to_domain(row, identities).map(Some)
}

/// Tier history: one row per change, for audits and the member's export.
pub async fn record_tier_change<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
    from: crate::domain::Tier,
    to: crate::domain::Tier,
    spend: i64,
    currency: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    use super::entities::tier_change;
    tier_change::Entity::insert(tier_change::ActiveModel {
        id: Set(Uuid::now_v7()),
        member_id: Set(member.as_uuid()),
        from_tier: Set(from.as_str().to_owned()),
        to_tier: Set(to.as_str().to_owned()),
        spend_minor: Set(spend),
        currency: Set(currency.to_owned()),
        changed_at: Set(at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}
