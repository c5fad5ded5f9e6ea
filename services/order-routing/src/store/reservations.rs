//! `order_reservations`: which order a re-route reservation (`order:<new uuid>`) belongs to.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::StoreError;

fn sql(backend: DbBackend, postgres: &str) -> String {
    match backend {
        // SQLite takes `?n` placeholders.
        DbBackend::Sqlite => postgres.replace('$', "?"),
        _ => postgres.to_owned(),
    }
}

pub async fn record<C: ConnectionTrait>(
    db: &C,
    reservation: &str,
    order: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(
            backend,
            "INSERT INTO order_reservations (reservation_id, order_id, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (reservation_id) DO NOTHING",
        ),
        [reservation.into(), order.to_string().into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// The order that owns `reservation`, when it is a re-route reservation.
pub async fn owner<C: ConnectionTrait>(
    db: &C,
    reservation: &str,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql(
                backend,
                "SELECT order_id FROM order_reservations WHERE reservation_id = $1",
            ),
            [reservation.into()],
        ))
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let id: String = row.try_get("", "order_id")?;
            uuid::Uuid::parse_str(&id)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("order_reservations.order_id: {e}")))
        }
    }
}
