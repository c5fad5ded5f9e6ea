//! Outbox relay throughput: a burst of rows written straight into order-routing's outbox while
//! the service runs, timed until its relay has published (with broker confirms) every one.
//!
//! The probe rows copy the envelope of a real `order.placed` row (the relay publishes what the
//! envelope says, so they go out as that event, with its id): member's consumer receives them
//! and its inbox makes every copy after the first a no-op, which is the duplicate-delivery path
//! the design relies on. The `routing_key` column marks them so they can be counted.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::time::Instant;

const PROBE_KEY: &str = "bench.relay.probe";

/// The relay did not drain the burst, or the table was not as expected.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("postgres: {0}")]
    Db(#[from] DbErr),
    #[error("no published outbox row to copy an envelope from (run place-order first)")]
    NoTemplate,
    #[error("{left} of {burst} probe events still unpublished after {waited:?}")]
    NotDrained {
        left: i64,
        burst: u64,
        waited: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct RelayFigures {
    pub burst: u64,
    pub elapsed: Duration,
    pub events_per_sec: f64,
}

async fn unpublished(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM outbox_events WHERE routing_key = $1 AND published_at IS NULL",
            [PROBE_KEY.into()],
        ))
        .await?;
    match row {
        Some(r) => r.try_get("", "n"),
        None => Ok(0),
    }
}

/// Writes `burst` probe rows in one statement and waits (bounded by `deadline`) until the relay
/// has published them all.
pub async fn measure(
    orders_db: &DatabaseConnection,
    burst: u64,
    deadline: Duration,
) -> Result<RelayFigures, RelayError> {
    let inserted = orders_db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO outbox_events (id, routing_key, envelope, created_at, attempts)
             SELECT 'bench-probe-' || g, $1, t.envelope, now(), 0
             FROM generate_series(1, $2) AS g,
                  (SELECT envelope FROM outbox_events
                   WHERE routing_key = 'order.placed' LIMIT 1) AS t",
            [
                PROBE_KEY.into(),
                i64::try_from(burst).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    if inserted.rows_affected() == 0 {
        return Err(RelayError::NoTemplate);
    }
    let started = Instant::now();
    loop {
        let left = unpublished(orders_db).await?;
        if left == 0 {
            let elapsed = started.elapsed();
            return Ok(RelayFigures {
                burst,
                elapsed,
                events_per_sec: burst as f64 / elapsed.as_secs_f64().max(1e-9),
            });
        }
        if started.elapsed() > deadline {
            return Err(RelayError::NotDrained {
                left,
                burst,
                waited: deadline,
            });
        }
        // Poll interval of the condition, bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
