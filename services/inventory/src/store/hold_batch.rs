//! Accepted holds made durable together (PostgreSQL only).
//!
//! In a sale every accepted `Reserve` is a commit, and commits, not the gate, set the pace. A
//! hold that arrives while another write is in flight waits for the next one, which takes every
//! hold queued by then as one statement: the reservation rows, their lines and their outbox rows
//! in one round trip and one WAL flush, instead of a five-round-trip transaction each. A single
//! buyer pays one round trip instead of five.
//!
//! The statement is autocommit, so its outcome is the transaction's: a server error rolls all of
//! it back, a lost connection leaves it unknown. An id already stored is skipped (`ON CONFLICT DO
//! NOTHING`) and reported to its caller alone as a conflict.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use omni_platform::batch::{self, BatchLimits};
use omni_platform::db::recordset_timestamp;
use omni_platform::events::{Envelope, outbox};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::reservations::InsertHold;
use super::{StoreError, sql};

/// Upper bound on holds per statement; far below PostgreSQL's limits, large enough that a queue
/// of a few hundred concurrent buyers drains in one or two writes.
const MAX_HOLDS_PER_WRITE: usize = 256;
/// Writes on the wire at once: one fills while the other waits for its flush.
const WRITES_IN_FLIGHT: usize = 2;
/// Holds waiting for a write; a caller beyond this waits to queue (backpressure, not loss).
const QUEUE_DEPTH: usize = 4096;

/// Inserts the holds given as JSON arrays and returns the ids it inserted. Fixed text, so the
/// connection's prepared statement is reused whatever the batch size.
const INSERT_HOLDS: &str = "\
WITH r AS (
    INSERT INTO reservations (id, status, fingerprint, expires_at, confirmed, count_capacity,
                              capacity_date, created_at, updated_at)
    SELECT v.id, v.status, v.fingerprint, v.expires_at, v.confirmed, v.count_capacity,
           v.capacity_date, v.created_at, v.created_at
    FROM json_to_recordset($1::json) AS v(id text, status text, fingerprint text,
         expires_at timestamptz, confirmed boolean, count_capacity boolean,
         capacity_date text, created_at timestamptz)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), l AS (
    INSERT INTO reservation_lines (reservation_id, sku, location_id, quantity, committed, released)
    SELECT x.reservation_id, x.sku, x.location_id, x.quantity, 0, 0
    FROM json_to_recordset($2::json) AS x(reservation_id text, sku text, location_id text,
         quantity bigint)
    JOIN r ON r.id = x.reservation_id
), o AS (
    INSERT INTO outbox_events (id, routing_key, envelope, created_at, attempts)
    SELECT e.id, e.routing_key, e.envelope, e.created_at, 0
    FROM json_to_recordset($3::json) AS e(id text, routing_key text, envelope text,
         created_at timestamptz, reservation_id text)
    JOIN r ON r.id = e.reservation_id
)
SELECT id FROM r";

/// A hold and the events to write with it.
#[derive(Debug, Clone)]
pub(super) struct QueuedHold {
    pub hold: InsertHold,
    pub events: Vec<Envelope>,
}

/// How one hold of a write ended.
#[derive(Debug)]
pub(super) enum HoldWritten {
    Written,
    /// The id is already stored.
    Conflict,
    /// The write failed as a whole on something the server refused; which hold caused it is not
    /// known, so each is written again on its own (given back for that).
    Alone(QueuedHold),
    Failed(StoreError),
}

struct Waiting {
    queued: QueuedHold,
    since: Instant,
    answer: oneshot::Sender<HoldWritten>,
}

/// The queue in front of the writer task, which starts with it and stops when it is dropped.
#[derive(Debug)]
pub(super) struct HoldBatcher {
    queue: mpsc::Sender<Waiting>,
}

impl HoldBatcher {
    /// `max_wait` bounds the time a hold may wait for its write to start. With the statement
    /// timeout after it, it keeps every write inside the hold grace: a write that started later
    /// could commit a row after the reaper gave the hold's units back (ARCHITECTURE §3).
    pub fn start(db: DatabaseConnection, max_wait: Duration) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_queued(db, waiting, max_wait));
        Self { queue }
    }

    pub async fn write(&self, queued: QueuedHold) -> HoldWritten {
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting {
            queued,
            since: Instant::now(),
            answer,
        };
        if self.queue.send(waiting).await.is_err() {
            return HoldWritten::Failed(StoreError::Unavailable {
                message: "the hold writer has stopped".to_owned(),
                ambiguous: false,
            });
        }
        // Dropped unanswered only if the write's task died, after or before sending: unknown.
        answered.await.unwrap_or_else(|_| {
            HoldWritten::Failed(StoreError::Unavailable {
                message: "the hold writer stopped during the write".to_owned(),
                ambiguous: true,
            })
        })
    }
}

async fn write_queued(
    db: DatabaseConnection,
    waiting: mpsc::Receiver<Waiting>,
    max_wait: Duration,
) {
    let limits = BatchLimits {
        max_per_write: MAX_HOLDS_PER_WRITE,
        in_flight: WRITES_IN_FLIGHT,
    };
    let admit = |w: Waiting| {
        if w.since.elapsed() <= max_wait {
            return Some(w);
        }
        // Nothing was sent for it: the caller may give the hold back at once.
        let _ = w.answer.send(HoldWritten::Failed(StoreError::Unavailable {
            message: format!("the database did not take the hold within {max_wait:?}"),
            ambiguous: false,
        }));
        None
    };
    batch::write_queued(waiting, limits, admit, |holds| {
        let db = db.clone();
        async move { answer_batch(&db, holds).await }
    })
    .await;
}

async fn answer_batch(db: &DatabaseConnection, batch: Vec<Waiting>) {
    // Two holds with one id in a statement would both match the inserted row. The later one is
    // written alone: its insert waits on the primary key for this statement and then finds the
    // row (a conflict), or takes the id if this statement fails.
    let mut ids = HashSet::with_capacity(batch.len());
    let (first_of_id, repeated): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|w| ids.insert(w.queued.hold.reservation.id.to_string()));
    for w in repeated {
        let _ = w.answer.send(HoldWritten::Alone(w.queued));
    }
    let holds: Vec<&QueuedHold> = first_of_id.iter().map(|w| &w.queued).collect();
    tracing::debug!(holds = holds.len(), "writing held reservations");
    match insert(db, &holds).await {
        Ok(inserted) => {
            for w in first_of_id {
                let written = inserted.contains(&w.queued.hold.reservation.id.to_string());
                let _ = w.answer.send(if written {
                    HoldWritten::Written
                } else {
                    HoldWritten::Conflict
                });
            }
        }
        Err(error) => {
            let several = first_of_id.len() > 1;
            let error = StoreError::from_autocommit(error);
            for w in first_of_id {
                let _ = w.answer.send(match &error {
                    StoreError::Other(_) | StoreError::Conflict(_) if several => {
                        HoldWritten::Alone(w.queued)
                    }
                    other => HoldWritten::Failed(other.clone()),
                });
            }
        }
    }
}

/// Writes the holds in one statement; the ids it inserted (the others were already stored).
pub(super) async fn insert(
    db: &DatabaseConnection,
    holds: &[&QueuedHold],
) -> Result<HashSet<String>, sea_orm::DbErr> {
    let mut reservations = Vec::with_capacity(holds.len());
    let mut lines = Vec::with_capacity(holds.len());
    let mut events = Vec::with_capacity(holds.len());
    for QueuedHold {
        hold,
        events: owned,
    } in holds.iter().copied()
    {
        let r = &hold.reservation;
        let id = r.id.to_string();
        reservations.push(json!({
            "id": id,
            "status": r.status.as_str(),
            "fingerprint": hold.fingerprint,
            "expires_at": r.expires_at.map(recordset_timestamp),
            "confirmed": r.confirmed,
            "count_capacity": !hold.capacity.is_empty(),
            "capacity_date": hold.capacity.first().map(|(_, day)| day.to_string()),
            "created_at": recordset_timestamp(hold.created_at),
        }));
        for line in &r.lines {
            lines.push(json!({
                "reservation_id": id,
                "sku": line.line.sku.as_str(),
                "location_id": line.line.location.as_str(),
                "quantity": line.line.qty.as_i64(),
            }));
        }
        for e in owned {
            let mut row = outbox::recordset_row(e);
            row.insert("reservation_id".to_owned(), id.as_str().into());
            events.push(serde_json::Value::Object(row));
        }
    }
    let rows = sql::query_all(
        db,
        INSERT_HOLDS,
        vec![
            serde_json::Value::Array(reservations).to_string().into(),
            serde_json::Value::Array(lines).to_string().into(),
            serde_json::Value::Array(events).to_string().into(),
        ],
    )
    .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect()
}
