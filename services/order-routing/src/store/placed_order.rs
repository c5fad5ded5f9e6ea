//! The durable write of PlaceOrder: the order, its first routing record and its events.
//!
//! On PostgreSQL it is one autocommit statement (data-modifying CTEs), so an order costs one
//! round trip and one commit instead of BEGIN, three INSERTs and COMMIT; the statement is atomic
//! like the transaction it replaces. It returns the row version the insert left, which lets the
//! confirmation flags that follow be written without a lock (see [`super::confirmation_flags`]).
//! SQLite keeps the transaction. Either writes the order's location catalogue with it when the
//! order is the first to refer to it ([`super::location_catalogues`]).

use omni_platform::events::{Envelope, outbox};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

use super::location_catalogues::{self, CatalogueFor, LocationCatalogues};
use super::orders::{self, RowVersion};
use super::routing_records::{self, RoutingRecord};
use super::{StoreError, stored_forms};
use crate::domain::simulate::StoredPlanInput;
use crate::service::record::OrderRecord;

/// The statement, with `$extra` (more CTEs) before its final SELECT.
macro_rules! insert_placed {
    ($extra:literal) => {
        concat!(
            "WITH o AS (
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
)",
            $extra,
            "
SELECT version FROM o"
        )
    };
}

const INSERT_PLACED: &str = insert_placed!("");

/// Also stores the location catalogue the order's planner input is the first to refer to. A
/// concurrent order that stored the same one first leaves it as it is: same id, same rows.
const INSERT_PLACED_WITH_CATALOGUE: &str = insert_placed!(
    ", c AS (
    INSERT INTO location_catalogues (id, locations, created_at) VALUES ($19, $20, $21)
    ON CONFLICT (id) DO NOTHING
)"
);

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
    catalogues: &LocationCatalogues,
    placed: PlacedOrder<'_>,
) -> Result<Option<RowVersion>, StoreError> {
    let chosen = catalogues
        .for_candidates(db, &placed.planner_input.candidates)
        .await?;
    let planner_input = stored_forms::planner_input_text(placed.planner_input, &chosen)?;
    let CatalogueFor {
        catalogue,
        is_new: new_catalogue,
        ..
    } = chosen;
    let created_at = placed.record.created_at;
    let version = if db.get_database_backend() == DbBackend::Postgres {
        let mut values = orders::insert_values(placed.record, planner_input)?;
        values.extend(routing_records::first_values(placed.routing)?);
        let events: Vec<serde_json::Value> = placed
            .events
            .iter()
            .map(|e| serde_json::Value::Object(outbox::recordset_row(e)))
            .collect();
        values.push(serde_json::Value::Array(events).to_string().into());
        let sql = if new_catalogue {
            values.extend(location_catalogues::row_values(&catalogue, created_at));
            INSERT_PLACED_WITH_CATALOGUE
        } else {
            INSERT_PLACED
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("the order insert returned no row".to_owned()))?;
        Some(RowVersion::new(row.try_get::<String>("", "version")?))
    } else {
        let txn = db.begin().await?;
        if new_catalogue {
            location_catalogues::insert_if_new(&txn, &catalogue, created_at).await?;
        }
        orders::insert(&txn, placed.record, planner_input).await?;
        routing_records::insert_first(&txn, placed.record.id().as_uuid(), placed.routing).await?;
        outbox::enqueue_all(&txn, placed.events).await?;
        txn.commit().await?;
        None
    };
    if new_catalogue {
        catalogues.adopt(catalogue);
    }
    Ok(version)
}
