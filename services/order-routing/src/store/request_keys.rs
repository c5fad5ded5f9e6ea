//! Idempotency of the order-changing RPCs (cancel, pickup, reject, return): the first answer is
//! stored under `(scope, key)` in the transaction of the change, and a replay returns it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::StoreError;
use super::entities::request_keys::{self, Entity};

pub struct Stored {
    pub request_hash: String,
    pub response: String,
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    key: &str,
) -> Result<Option<Stored>, StoreError> {
    Ok(Entity::find_by_id((scope.to_owned(), key.to_owned()))
        .one(db)
        .await?
        .map(|row| Stored {
            request_hash: row.request_hash,
            response: row.response,
        }))
}

/// Fails with [`StoreError::Conflict`] if a concurrent request stored the key first; the
/// transaction then rolls back and the caller answers from the stored row.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    key: &str,
    request_hash: &str,
    response: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::insert(request_keys::ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response: Set(response.to_owned()),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}
