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
    /// From the insert until every row was published: includes the relay's wait for its next
    /// poll (the harness writes behind the service's back, so nothing pokes it).
    pub elapsed: Duration,
    /// Seconds between the first and the last batch the relay marked published.
    pub draining: Duration,
    /// Rows published after the first batch, per second of `draining`: the drain rate itself.
    pub events_per_sec: f64,
}

/// The relay's own `published_at` stamps of the probe rows: (rows stamped with the first
/// instant, seconds from the first to the last stamp).
async fn published_span(db: &DatabaseConnection) -> Result<(i64, f64), DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH p AS (SELECT published_at FROM outbox_events WHERE routing_key = $1)
             SELECT (SELECT count(*) FROM p WHERE published_at = (SELECT min(published_at) FROM p))
                        AS first_batch,
                    COALESCE(EXTRACT(EPOCH FROM (SELECT max(published_at) - min(published_at)
                                                  FROM p))::float8, 0) AS span",
            [PROBE_KEY.into()],
        ))
        .await?;
    match row {
        Some(r) => Ok((r.try_get("", "first_batch")?, r.try_get("", "span")?)),
        None => Ok((0, 0.0)),
    }
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
            let (first_batch, span) = published_span(orders_db).await?;
            let after_first = burst.saturating_sub(u64::try_from(first_batch).unwrap_or(0));
            // A burst that fits one batch has no span: fall back to the whole elapsed time.
            let events_per_sec = if span > 0.0 && after_first > 0 {
                after_first as f64 / span
            } else {
                burst as f64 / elapsed.as_secs_f64().max(1e-9)
            };
            return Ok(RelayFigures {
                burst,
                elapsed,
                draining: Duration::from_secs_f64(span),
                events_per_sec,
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
