//! The movement ledger and stock levels: `on_hand` changes only together with a ledger row.

use chrono::{DateTime, Utc};
use omni_platform::events::{Envelope, outbox};
use omni_types::{LocationId, Sku};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::reservations::{bump_level, held_sum, level_of};
use super::sql::{self, for_update};
use super::{Store, StoreError};
use crate::domain::{HeldOnKey, Movement, StockLevel, apply};

/// One movement to record, validated.
#[derive(Debug, Clone)]
pub struct MovementRequest {
    pub sku: Sku,
    pub location: LocationId,
    pub movement: Movement,
    pub idempotency_key: String,
    pub reference: String,
}

/// A recorded movement and the counters it left. `replayed` when the idempotency key had
/// already been applied: nothing changed and the first result is returned.
#[derive(Debug, Clone)]
pub struct AppliedMovement {
    pub sku: Sku,
    pub location: LocationId,
    pub delta: i64,
    pub level: StockLevel,
    pub replayed: bool,
    /// HELD reservations on this key, for the shortage rule, when `on_hand < reserved`.
    pub held: Vec<HeldOnKey>,
}

pub(super) struct LedgerRow<'a> {
    pub sku: &'a Sku,
    pub location: &'a LocationId,
    pub kind: &'a str,
    pub delta: i64,
    pub on_hand_after: i64,
    pub idempotency_key: String,
    pub reference: String,
    pub at: DateTime<Utc>,
}

pub(super) async fn insert_movement<C: ConnectionTrait>(
    db: &C,
    row: &LedgerRow<'_>,
) -> Result<(), StoreError> {
    sql::execute(
        db,
        "INSERT INTO stock_movements (id, sku, location_id, kind, delta, on_hand_after, \
         idempotency_key, reference, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            uuid::Uuid::now_v7().to_string().into(),
            row.sku.to_string().into(),
            row.location.to_string().into(),
            row.kind.into(),
            row.delta.into(),
            row.on_hand_after.into(),
            row.idempotency_key.clone().into(),
            row.reference.clone().into(),
            row.at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A page filter for the ledger.
#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    pub sku: Option<Sku>,
    pub location: Option<LocationId>,
    /// Keyset: rows with an id greater than this (ids are time-ordered UUIDv7).
    pub after: Option<String>,
    pub limit: u64,
}

#[derive(Debug, Clone)]
pub struct MovementRow {
    pub id: String,
    pub sku: String,
    pub location: String,
    pub kind: String,
    pub delta: i64,
    pub on_hand_after: i64,
    pub idempotency_key: String,
    pub reference: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Opens the transaction in which movements are applied; the service interleaves the Redis
    /// writes (ARCHITECTURE §3 write order) between `lock_level`, `record` and `commit`.
    pub async fn begin(&self) -> Result<DatabaseTransaction, StoreError> {
        Ok(self.db.begin().await?)
    }

    /// The first result of an idempotency key, if it was applied before.
    pub async fn replayed_movement(
        txn: &DatabaseTransaction,
        key: &str,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sql::query_one(
            txn,
            "SELECT delta, on_hand_after FROM stock_movements WHERE idempotency_key = $1",
            vec![key.into()],
        )
        .await?;
        row.map(|r| Ok((r.try_get("", "delta")?, r.try_get("", "on_hand_after")?)))
            .transpose()
    }

    /// The counters of a (sku, location), locked until the transaction ends (a row of zeros is
    /// created first if the key is new, so the lock has something to hold).
    pub async fn lock_level(
        txn: &DatabaseTransaction,
        sku: &Sku,
        location: &LocationId,
        now: DateTime<Utc>,
    ) -> Result<StockLevel, StoreError> {
        sql::execute(
            txn,
            "INSERT INTO stock_levels (sku, location_id, on_hand, safety_stock, updated_at) \
             VALUES ($1, $2, 0, 0, $3) ON CONFLICT (sku, location_id) DO NOTHING",
            vec![
                sku.to_string().into(),
                location.to_string().into(),
                now.into(),
            ],
        )
        .await?;
        let row = sql::query_one(
            txn,
            &format!(
                "SELECT on_hand, safety_stock FROM stock_levels \
                 WHERE sku = $1 AND location_id = $2{}",
                for_update(txn.get_database_backend())
            ),
            vec![sku.to_string().into(), location.to_string().into()],
        )
        .await?
        .ok_or_else(|| StoreError::Other("stock level vanished under lock".to_owned()))?;
        Ok(StockLevel::new(
            row.try_get("", "on_hand")?,
            held_sum(txn, sku, location).await?,
            row.try_get("", "safety_stock")?,
        ))
    }

    /// Records one movement against a locked level: the ledger row and the new `on_hand`.
    pub async fn record_movement(
        txn: &DatabaseTransaction,
        request: &MovementRequest,
        current: &StockLevel,
        now: DateTime<Utc>,
    ) -> Result<AppliedMovement, StoreError> {
        let delta = apply(current, &request.movement);
        let level = bump_level(txn, &request.sku, &request.location, delta, now).await?;
        insert_movement(
            txn,
            &LedgerRow {
                sku: &request.sku,
                location: &request.location,
                kind: request.movement.kind().as_str(),
                delta,
                on_hand_after: level.on_hand,
                idempotency_key: request.idempotency_key.clone(),
                reference: request.reference.clone(),
                at: now,
            },
        )
        .await?;
        let held = if level.on_hand < level.reserved {
            held_on_key(txn, &request.sku, &request.location).await?
        } else {
            Vec::new()
        };
        Ok(AppliedMovement {
            sku: request.sku.clone(),
            location: request.location.clone(),
            delta,
            level,
            replayed: false,
            held,
        })
    }

    pub async fn commit_with_events(
        txn: DatabaseTransaction,
        events: &[Envelope],
    ) -> Result<(), StoreError> {
        outbox::enqueue_all(&txn, events).await?;
        txn.commit().await.map_err(StoreError::at_commit)
    }

    pub async fn set_safety_stock(
        &self,
        sku: &Sku,
        location: &LocationId,
        safety: i64,
        events: impl FnOnce(&StockLevel) -> Vec<Envelope>,
    ) -> Result<StockLevel, StoreError> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        Self::lock_level(&txn, sku, location, now).await?;
        let row = sql::query_one(
            &txn,
            "UPDATE stock_levels SET safety_stock = $3, updated_at = $4 \
             WHERE sku = $1 AND location_id = $2 RETURNING on_hand, safety_stock",
            vec![
                sku.to_string().into(),
                location.to_string().into(),
                safety.into(),
                now.into(),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::Other("stock level vanished under lock".to_owned()))?;
        let level = StockLevel::new(
            row.try_get("", "on_hand")?,
            held_sum(&txn, sku, location).await?,
            row.try_get("", "safety_stock")?,
        );
        outbox::enqueue_all(&txn, &events(&level)).await?;
        txn.commit().await.map_err(StoreError::at_commit)?;
        Ok(level)
    }

    /// Counters from PostgreSQL for many keys (unknown keys are zero).
    pub async fn levels(&self, keys: &[(Sku, LocationId)]) -> Result<Vec<StockLevel>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (sku, location) in keys {
            out.push(level_of(&self.db, sku, location).await?);
        }
        Ok(out)
    }

    pub async fn movements(&self, filter: &MovementFilter) -> Result<Vec<MovementRow>, StoreError> {
        let mut sql_text = String::from(
            "SELECT id, sku, location_id, kind, delta, on_hand_after, idempotency_key, reference, \
             created_at FROM stock_movements WHERE 1 = 1",
        );
        let mut values: Vec<sea_orm::Value> = Vec::new();
        if let Some(sku) = &filter.sku {
            values.push(sku.to_string().into());
            sql_text.push_str(&format!(" AND sku = ${}", values.len()));
        }
        if let Some(location) = &filter.location {
            values.push(location.to_string().into());
            sql_text.push_str(&format!(" AND location_id = ${}", values.len()));
        }
        if let Some(after) = &filter.after {
            values.push(after.clone().into());
            sql_text.push_str(&format!(" AND id > ${}", values.len()));
        }
        values.push((filter.limit as i64).into());
        sql_text.push_str(&format!(" ORDER BY id LIMIT ${}", values.len()));
        let rows = sql::query_all(&self.db, &sql_text, values).await?;
        rows.into_iter()
            .map(|r| {
                Ok(MovementRow {
                    id: r.try_get("", "id")?,
                    sku: r.try_get("", "sku")?,
                    location: r.try_get("", "location_id")?,
                    kind: r.try_get("", "kind")?,
                    delta: r.try_get("", "delta")?,
                    on_hand_after: r.try_get("", "on_hand_after")?,
                    idempotency_key: r.try_get("", "idempotency_key")?,
                    reference: r.try_get("", "reference")?,
                    created_at: r.try_get("", "created_at")?,
                })
            })
            .collect()
    }
}

async fn held_on_key(
    txn: &DatabaseTransaction,
    sku: &Sku,
    location: &LocationId,
) -> Result<Vec<HeldOnKey>, StoreError> {
    let rows = sql::query_all(
        txn,
        "SELECT r.id, r.created_at, l.quantity - l.committed - l.released AS remaining \
         FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
         WHERE l.sku = $1 AND l.location_id = $2 AND r.status = 'HELD'",
        vec![sku.to_string().into(), location.to_string().into()],
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let id: String = r.try_get("", "id")?;
            let remaining: i64 = r.try_get("", "remaining")?;
            Ok(HeldOnKey {
                id: omni_types::ReservationId::parse(&id)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created_at: r.try_get("", "created_at")?,
                qty: u32::try_from(remaining).unwrap_or(0),
            })
        })
        .filter(|h: &Result<HeldOnKey, StoreError>| h.as_ref().map_or(true, |h| h.qty > 0))
        .collect()
}
