//! The durable write of PlaceOrder: the order, its first routing record and its events.
//!
//! On PostgreSQL it is one autocommit statement (data-modifying CTEs), so an order costs one
//! round trip and one commit instead of BEGIN, three INSERTs and COMMIT; the statement is atomic
//! like the transaction it replaces. It returns the row version the insert left, which lets the
//! confirmation flags that follow be written without a lock (see [`super::confirmation_flags`]).
//! SQLite keeps the transaction.

use omni_platform::events::{Envelope, outbox};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

use super::StoreError;
use super::orders::{self, RowVersion};
use super::routing_records::{self, RoutingRecord};
use crate::domain::simulate::StoredPlanInput;
use crate::service::record::OrderRecord;

const INSERT_PLACED: &str = "\
WITH o AS (
    INSERT INTO orders (id, channel_id, member_id, status, pickup_store_id, pickup_status,
                        pickup_expires_at, confirmations_pending, sequence, document,
                        updated_at, planner_input, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    RETURNING id, xmin::text AS version
), r AS (
    INSERT INTO routing_records (order_id, seq, trigger, planned_at, profile_version, explanation)
    SELECT id, 0, $14, $15, $16, $17 FROM o
), e AS (
    INSERT INTO outbox_events (id, routing_key, envelope, created_at, attempts)
    SELECT e.id, e.routing_key, e.envelope, e.created_at, 0
    FROM json_to_recordset($18::json) AS e(id text, routing_key text, envelope text,
         created_at timestamptz)
)
SELECT version FROM o";

pub struct PlacedOrder<'a> {
    pub record: &'a OrderRecord,
    pub planner_input: &'a StoredPlanInput,
    pub routing: &'a RoutingRecord,
    pub events: &'a [Envelope],
}

/// Writes the order, its first routing record and its events, all or nothing. The version is
/// `None` on SQLite.
pub async fn insert(
    db: &DatabaseConnection,
    placed: PlacedOrder<'_>,
) -> Result<Option<RowVersion>, StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        let txn = db.begin().await?;
        orders::insert(&txn, placed.record, placed.planner_input).await?;
        routing_records::insert_first(&txn, placed.record.id().as_uuid(), placed.routing).await?;
        outbox::enqueue_all(&txn, placed.events).await?;
        txn.commit().await?;
        return Ok(None);
    }
    let mut values = orders::insert_values(placed.record, placed.planner_input)?;
    values.extend(routing_records::first_values(placed.routing)?);
    let events: Vec<serde_json::Value> = placed
        .events
        .iter()
        .map(|e| serde_json::Value::Object(outbox::recordset_row(e)))
        .collect();
    values.push(serde_json::Value::Array(events).to_string().into());
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            INSERT_PLACED,
            values,
        ))
        .await?
        .ok_or_else(|| StoreError::Corrupt("the order insert returned no row".to_owned()))?;
    Ok(Some(RowVersion::new(row.try_get::<String>("", "version")?)))
}
