//! The confirmation flags PlaceOrder clears once inventory (and member) confirmed, written for
//! many orders in one statement (PostgreSQL only).
//!
//! Every placed order writes its row once more to clear them: `confirmations_pending` alone when
//! nothing is owed any more (loading then ignores the document's flags), the document too when a
//! confirmation is still owed (it says which). Under load those writes queue
//! behind each other; a write that starts while another is in flight takes every order queued
//! by then, so a busy service pays one round trip for many orders instead of one each. Each
//! order is written only if its row is still at the version its insert left (the caller's
//! [`RowVersion`]); an order another writer moved on is answered `false`, and the caller merges
//! its flags under a lock as before.

use std::collections::HashSet;
use std::sync::OnceLock;

use omni_platform::batch::{self, BatchLimits};
use omni_platform::db::recordset_timestamp;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::orders::RowVersion;
use super::{StoreError, to_json};
use crate::service::record::OrderRecord;

/// Upper bound on orders per statement.
const MAX_ORDERS_PER_WRITE: usize = 256;
/// Writes on the wire at once: one fills while the other is answered.
const WRITES_IN_FLIGHT: usize = 2;
/// Orders waiting for a write; a caller beyond this waits to queue.
const QUEUE_DEPTH: usize = 4096;

/// Fixed text, so the connection's prepared statement is reused whatever the batch size. A
/// null document (every confirmation made) keeps the stored one: `confirmations_pending =
/// false` then says what the document's flags no longer do, and the unchanged document is
/// neither serialised, sent, parsed nor compressed again.
const CLEAR_AT_VERSION: &str = "\
UPDATE orders o
SET confirmations_pending = v.pending, document = COALESCE(v.document, o.document),
    updated_at = v.updated_at
FROM json_to_recordset($1::json) AS v(id text, version text, pending boolean, document text,
     updated_at timestamptz)
WHERE o.id = v.id AND o.xmin = v.version::xid
RETURNING o.id";

/// One order's flags: what a batch of one is written with. A row found by its primary key
/// needs no plan choice, while the batch's join is planned from the table's statistics, and a
/// plan prepared while the table was young (a new deployment, the benchmark's first minutes)
/// hash-joins over a scan of every order until autovacuum's ANALYZE replaces it: at 16 clients
/// that was one scan of the whole table per order.
const CLEAR_ONE_AT_VERSION: &str = "\
UPDATE orders SET confirmations_pending = $3, document = COALESCE($4, document), updated_at = $5
WHERE id = $1 AND xmin = $2::xid
RETURNING id";

struct Waiting {
    id: String,
    flags: Flags,
    answer: oneshot::Sender<Result<bool, StoreError>>,
}

struct Flags {
    version: String,
    pending: bool,
    /// `None` when nothing is pending any more: the stored document stays.
    document: Option<String>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// The queue in front of the writer task, started on first use (inside the caller's runtime)
/// and stopped when the queue is dropped.
pub struct ConfirmationFlags {
    db: DatabaseConnection,
    queue: OnceLock<mpsc::Sender<Waiting>>,
}

impl ConfirmationFlags {
    /// Writes through `db`, whose commits may return before their WAL flush: a crash that loses
    /// a write leaves the flags set, and the sweeper repeats the confirmations.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            queue: OnceLock::new(),
        }
    }

    /// Stores `record`'s flags and document if its row is still at `version`; `false`, with
    /// nothing written, if another writer changed the row since.
    pub async fn save_at_version(
        &self,
        record: &OrderRecord,
        version: &RowVersion,
    ) -> Result<bool, StoreError> {
        let id = record.id().to_string();
        let pending = record.confirmations_pending();
        let flags = Flags {
            version: version.as_str().to_owned(),
            pending,
            // Partly confirmed: the document says which confirmation is still owed.
            document: pending.then(|| to_json(record)).transpose()?,
            updated_at: record.updated_at,
        };
        let (answer, answered) = oneshot::channel();
        let queue = self.queue.get_or_init(|| {
            let (queue, waiting) = mpsc::channel(QUEUE_DEPTH);
            tokio::spawn(write_queued(self.db.clone(), waiting));
            queue
        });
        if queue.send(Waiting { id, flags, answer }).await.is_err() {
            return Err(stopped("the confirmation writer has stopped"));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(stopped("the confirmation writer stopped during the write")))
    }
}

fn statement(batch: &[Waiting]) -> Statement {
    if let [one] = batch {
        let f = &one.flags;
        return Statement::from_sql_and_values(
            DbBackend::Postgres,
            CLEAR_ONE_AT_VERSION,
            [
                one.id.clone().into(),
                f.version.clone().into(),
                f.pending.into(),
                f.document.clone().into(),
                f.updated_at.into(),
            ],
        );
    }
    let rows: Vec<serde_json::Value> = batch
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "version": w.flags.version,
                "pending": w.flags.pending,
                "document": w.flags.document,
                "updated_at": recordset_timestamp(w.flags.updated_at),
            })
        })
        .collect();
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        CLEAR_AT_VERSION,
        [serde_json::Value::Array(rows).to_string().into()],
    )
}

fn stopped(message: &str) -> StoreError {
    StoreError::Unavailable(DbErr::Custom(message.to_owned()))
}

async fn write_queued(db: DatabaseConnection, waiting: mpsc::Receiver<Waiting>) {
    let limits = BatchLimits {
        max_per_write: MAX_ORDERS_PER_WRITE,
        in_flight: WRITES_IN_FLIGHT,
    };
    batch::write_queued(waiting, limits, Some, |orders| {
        let db = db.clone();
        async move { answer_batch(&db, orders).await }
    })
    .await;
}

async fn answer_batch(db: &DatabaseConnection, batch: Vec<Waiting>) {
    // Two rows for one order would both match it, and which one PostgreSQL applies is not
    // defined: a repeat is told to take the locked path instead.
    let mut ids = HashSet::with_capacity(batch.len());
    let (first_of_id, repeated): (Vec<_>, Vec<_>) =
        batch.into_iter().partition(|w| ids.insert(w.id.clone()));
    for w in repeated {
        let _ = w.answer.send(Ok(false));
    }
    let written = db
        .query_all_raw(statement(&first_of_id))
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| row.try_get::<String>("", "id"))
                .collect::<Result<HashSet<_>, _>>()
        });
    match written {
        Ok(written) => {
            for w in first_of_id {
                let _ = w.answer.send(Ok(written.contains(&w.id)));
            }
        }
        Err(error) => {
            let error = StoreError::from(error);
            let unavailable = matches!(error, StoreError::Unavailable(_));
            for w in first_of_id {
                let error = DbErr::Custom(format!("writing confirmation flags: {error}"));
                let _ = w.answer.send(Err(if unavailable {
                    StoreError::Unavailable(error)
                } else {
                    StoreError::Database(error)
                }));
            }
        }
    }
}
