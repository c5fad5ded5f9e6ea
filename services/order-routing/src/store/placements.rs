//! PlaceOrder idempotency: `(channel, idempotency key)` → order id, payload hash and a lease.
//!
//! The lease says "an attempt is running": a duplicate that finds a live lease is told to retry
//! (ABORTED) instead of racing the first attempt. A lease left by a crashed attempt runs out
//! and the next retry takes the placement over.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;
use super::entities::placements::{self, Column, Entity};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub order_id: uuid::Uuid,
    pub payload_hash: String,
    pub lease_until: DateTime<Utc>,
}

pub enum Claim {
    /// A new placement: this caller runs the saga for `order_id`.
    New,
    /// The key is already known.
    Existing(Placement),
}

pub async fn claim<C: ConnectionTrait>(
    db: &C,
    channel: &str,
    key: &str,
    fresh: &Placement,
) -> Result<Claim, StoreError> {
    let row = placements::ActiveModel {
        channel_id: Set(channel.to_owned()),
        idempotency_key: Set(key.to_owned()),
        order_id: Set(fresh.order_id.to_string()),
        payload_hash: Set(fresh.payload_hash.clone()),
        lease_until: Set(fresh.lease_until),
    };
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::ChannelId, Column::IdempotencyKey])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let existing = Entity::find_by_id((channel.to_owned(), key.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Conflict(format!("placement {channel}/{key} vanished")))?;
    Ok(Claim::Existing(Placement {
        order_id: uuid::Uuid::parse_str(&existing.order_id)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        payload_hash: existing.payload_hash,
        lease_until: existing.lease_until,
    }))
}

/// Takes over an expired lease (compare-and-set on the old lease), possibly with a new order
/// id. False when another caller took it first.
pub async fn take_over<C: ConnectionTrait>(
    db: &C,
    channel: &str,
    key: &str,
    old_lease: DateTime<Utc>,
    order_id: uuid::Uuid,
    lease_until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = Entity::update_many()
        .col_expr(Column::OrderId, order_id.to_string().into())
        .col_expr(Column::LeaseUntil, lease_until.into())
        .filter(Column::ChannelId.eq(channel.to_owned()))
        .filter(Column::IdempotencyKey.eq(key.to_owned()))
        .filter(Column::LeaseUntil.eq(old_lease))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Forgets a placement whose saga ended without an order, so the key may be tried again.
pub async fn forget<C: ConnectionTrait>(
    db: &C,
    channel: &str,
    key: &str,
    order_id: uuid::Uuid,
) -> Result<(), StoreError> {
    Entity::delete_many()
        .filter(Column::ChannelId.eq(channel.to_owned()))
        .filter(Column::IdempotencyKey.eq(key.to_owned()))
        .filter(Column::OrderId.eq(order_id.to_string()))
        .exec(db)
        .await?;
    Ok(())
}
