//! Transactional outbox: events are rows written in the transaction that changes the state
//! they describe, and a relay publishes them with publisher confirms. An event is therefore
//! never published for a change that rolled back, nor lost after one that committed.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{
    bus::{BusError, EventBus, PendingConfirms},
    envelope::Envelope,
    schema::outbox_event::{self, Column},
};
use crate::clock::{SharedClock, system_clock};
use crate::metrics::{Counter, Gauge};

static UNPUBLISHED: Gauge = Gauge::new(
    "outbox_unpublished_events",
    "Outbox rows written but not yet confirmed by the broker, by service.",
);
static OLDEST_AGE: Gauge = Gauge::new(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none): the event lag, by service.",
);
static PUBLISHED: Counter = Counter::new(
    "outbox_published_events_total",
    "Outbox rows published and confirmed by the broker, by service.",
);
static PUBLISH_FAILURES: Counter = Counter::new(
    "outbox_publish_failures_total",
    "Outbox batches the broker did not confirm (kept and retried), by service.",
);

/// Writes `envelope` to the outbox. Call it with the caller's open transaction, next to the
/// state change; after the commit, poke [`OutboxRelay::notifier`] to publish without waiting
/// for the poll interval.
pub async fn enqueue<C: ConnectionTrait>(db: &C, envelope: &Envelope) -> Result<(), DbErr> {
    enqueue_all(db, std::slice::from_ref(envelope)).await
}

/// [`enqueue`] for several events in one statement.
pub async fn enqueue_all<C: ConnectionTrait>(db: &C, envelopes: &[Envelope]) -> Result<(), DbErr> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let rows = envelopes.iter().map(|e| outbox_event::ActiveModel {
        id: Set(e.id().to_owned()),
        routing_key: Set(e.routing_key().to_owned()),
        envelope: Set(e.to_json_string()),
        created_at: Set(e.time()),
        published_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
    });
    outbox_event::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// How a single statement that writes several tables at once (one round trip, one commit)
/// carries its events: one JSON object per row, read back with
/// `json_to_recordset($n::json) AS e(id text, routing_key text, envelope text, created_at
/// timestamptz)` and inserted into `outbox_events (id, routing_key, envelope, created_at,
/// attempts)`. The caller may add fields of its own (e.g. the row the event belongs to).
pub fn recordset_row(envelope: &Envelope) -> serde_json::Map<String, serde_json::Value> {
    let mut row = serde_json::Map::with_capacity(5);
    row.insert("id".to_owned(), envelope.id().into());
    row.insert("routing_key".to_owned(), envelope.routing_key().into());
    row.insert("envelope".to_owned(), envelope.to_json_string().into());
    row.insert(
        "created_at".to_owned(),
        crate::db::recordset_timestamp(envelope.time()).into(),
    );
    row
}

/// What is waiting to be published, for the outbox-lag metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub unpublished: u64,
    /// Age of the oldest unpublished event; zero when there is none.
    pub oldest_age: chrono::Duration,
}

pub async fn backlog<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<Backlog, DbErr> {
    let pending = || outbox_event::Entity::find().filter(Column::PublishedAt.is_null());
    let unpublished = pending().count(db).await?;
    let oldest = pending()
        .order_by_asc(Column::CreatedAt)
        .one(db)
        .await?
        .map_or(chrono::Duration::zero(), |row| {
            (now - row.created_at).max(chrono::Duration::zero())
        });
    Ok(Backlog {
        unpublished,
        oldest_age: oldest,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database is unreachable or refused the claim: retry later.
    #[error("outbox database: {0}")]
    Database(#[from] DbErr),
    /// The bus did not confirm the batch; the rows are kept: retry later.
    #[error("publishing the outbox batch: {0}")]
    Publish(#[from] BusError),
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows claimed and published per transaction. Every row of a batch is in flight to the
    /// broker at once (confirms are awaited together), so larger batches hide its latency:
    /// RabbitMQ takes ~10k persistent messages/s with 100 confirms in flight, ~16k with 1,000.
    pub batch_size: u64,
    /// Safety net for a missed poke (another replica's commit, a crash before the poke).
    pub poll_interval: Duration,
    /// How long a poke waits before the claim, so the commits of the next few milliseconds
    /// leave in the same batch. Each batch costs a claim transaction (four round trips) and a
    /// broker round of confirms: without the wait, steady traffic was claimed one order at a
    /// time. It delays an event by at most this much.
    pub linger: Duration,
    /// How long published rows are kept (for audits and "was it sent?" questions).
    pub retention: Duration,
    /// How often published rows past retention are deleted.
    pub cleanup_interval: Duration,
    /// First pause after a failed batch; doubles per consecutive failure up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub clock: SharedClock,
    /// The `service` label of the relay's metrics (one process may run several relays).
    pub service: &'static str,
    /// How often the backlog gauges are refreshed: two queries, so not on every poll.
    pub backlog_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            linger: Duration::from_millis(20),
            retention: Duration::from_secs(7 * 24 * 3600),
            cleanup_interval: Duration::from_secs(600),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            clock: system_clock(),
            service: "unknown",
            backlog_interval: Duration::from_secs(10),
        }
    }
}

/// Publishes the outbox. Several relays may run on one PostgreSQL database: each claims its
/// batch with `FOR UPDATE SKIP LOCKED`, so a row is published by one of them. On SQLite the
/// lock clause is dropped by the query builder and exactly one relay must run (embedded mode).
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    config: RelayConfig,
    wake: Arc<Notify>,
    window: Mutex<ClaimWindow>,
    /// The sessions of `db` carry [`CLAIM_SETTINGS`] already ([`OutboxRelay::connect`]).
    claim_settings_in_session: bool,
}

/// What a claim transaction sets: see [`claim_settings`] for why.
const CLAIM_SETTINGS: [(&str, &str); 2] =
    [("enable_bitmapscan", "off"), ("synchronous_commit", "off")];

/// Connections of the relay's own: two batches in flight hold one each, and the cleanup and
/// backlog queries take the third.
const RELAY_CONNECTIONS: u32 = 3;

impl OutboxRelay {
    /// A relay on `db`, which it shares: each claim transaction sets its own settings.
    pub fn new(db: DatabaseConnection, bus: Arc<dyn EventBus>, config: RelayConfig) -> Self {
        Self {
            db,
            bus,
            config,
            wake: Arc::new(Notify::new()),
            window: Mutex::new(ClaimWindow::default()),
            claim_settings_in_session: false,
        }
    }

    /// The relay for the database at `url`. On PostgreSQL it opens connections of its own whose
    /// sessions carry the claim settings, so a claim transaction is BEGIN, SELECT, UPDATE,
    /// COMMIT: one round trip fewer per batch than on a shared pool (a relay runs about one
    /// batch per order under load). On SQLite it uses `shared`, the database's single writer.
    pub async fn connect(
        url: &str,
        shared: &DatabaseConnection,
        bus: Arc<dyn EventBus>,
        config: RelayConfig,
    ) -> Result<Self, DbErr> {
        if crate::db::is_sqlite(url) {
            return Ok(Self::new(shared.clone(), bus, config));
        }
        let options = crate::db::DbOptions {
            max_connections: RELAY_CONNECTIONS,
            application_name: format!("{}-relay", config.service),
            session_settings: CLAIM_SETTINGS.to_vec(),
            ..crate::db::DbOptions::default()
        };
        let db = crate::db::connect(url, &options).await?;
        Ok(Self {
            claim_settings_in_session: true,
            ..Self::new(db, bus, config)
        })
    }

    /// Poke it (`notify_one`) after committing a transaction that enqueued events.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    /// Publishes until `shutdown`; a batch in progress is finished (confirmed and marked)
    /// before it returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut next_cleanup = tokio::time::Instant::now();
        let mut next_backlog = tokio::time::Instant::now();
        loop {
            // Registered before draining, so a poke that arrives meanwhile is not lost.
            let poked = self.wake.notified();
            tokio::pin!(poked);
            poked.as_mut().enable();

            let drained = self.drain(&shutdown).await;
            // Also after a failed batch: a growing backlog is how a broker outage shows.
            if tokio::time::Instant::now() >= next_backlog {
                next_backlog = tokio::time::Instant::now() + self.config.backlog_interval;
                self.report_backlog().await;
            }
            if let Err(e) = drained {
                failures = failures.saturating_add(1);
                let pause = self.backoff(failures);
                tracing::warn!(error = %e, ?pause, failures, "outbox relay batch failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
            failures = 0;
            if shutdown.is_cancelled() {
                return;
            }
            if tokio::time::Instant::now() >= next_cleanup {
                next_cleanup = tokio::time::Instant::now() + self.config.cleanup_interval;
                match self.delete_published().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "deleted published outbox rows"),
                    Err(e) => tracing::warn!(error = %e, "outbox cleanup failed"),
                }
            }
            tokio::select! {
                () = &mut poked => {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.linger) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Refreshes the backlog gauges; a failed query leaves the last values (and is logged).
    pub async fn report_backlog(&self) {
        match backlog(&self.db, self.config.clock.now()).await {
            Ok(b) => {
                let labels = [("service", self.config.service)];
                UNPUBLISHED.set(b.unpublished as f64, &labels);
                OLDEST_AGE.set(b.oldest_age.as_seconds_f64(), &labels);
            }
            Err(e) => tracing::debug!(error = %e, "cannot measure the outbox backlog"),
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        self.config
            .min_backoff
            .saturating_mul(1u32 << Ord::min(failures.saturating_sub(1), 16))
            .min(self.config.max_backoff)
    }

    /// Publishes until the outbox is empty, two batches in flight: the next batch is claimed
    /// and sent while the broker confirms the previous one, so the broker's confirm latency is
    /// not paid once per batch. Batches go out in order on one channel; the next is claimed
    /// with SKIP LOCKED past the rows the previous one still holds.
    async fn drain(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let mut in_flight = self.send_batch().await?;
        while let Some(current) = in_flight.take() {
            if (current.ids.len() as u64) < self.config.batch_size || shutdown.is_cancelled() {
                self.settle(current).await?;
                break;
            }
            let (next, settled) = tokio::join!(self.send_batch(), self.settle(current));
            match (next, settled) {
                (Ok(next), Ok(())) => in_flight = next,
                (Ok(next), Err(e)) => {
                    if let Some(next) = next
                        && let Err(also) = self.settle(next).await
                    {
                        tracing::debug!(error = %also, "the batch after a failed one failed too");
                    }
                    return Err(e);
                }
                (Err(e), settled) => {
                    settled?;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Claims, publishes and marks one batch in one transaction; returns how many rows it
    /// published. If publishing fails the rows stay unpublished, with the error recorded.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        match self.send_batch().await? {
            Some(sent) => {
                let published = sent.ids.len();
                self.settle(sent).await?;
                Ok(published)
            }
            None => Ok(0),
        }
    }

    /// Claims a batch (its rows stay locked in the returned transaction) and sends it; `None`
    /// when there is nothing to publish.
    async fn send_batch(&self) -> Result<Option<SentBatch>, RelayError> {
        let since = self
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .claim_from(self.config.clock.now(), self.config.poll_interval);
        let txn = self.db.begin().await?;
        if !self.claim_settings_in_session {
            claim_settings(&txn).await?;
        }
        let mut claim = outbox_event::Entity::find().filter(Column::PublishedAt.is_null());
        if let Some(since) = since {
            claim = claim.filter(Column::CreatedAt.gte(since));
        }
        let rows = claim
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .limit(self.config.batch_size)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .all(&txn)
            .await?;
        if let Some(newest) = rows.last() {
            self.window
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .claimed(newest.created_at);
        }
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(None);
        }

        let mut envelopes = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            match Envelope::from_json(row.envelope.as_bytes()) {
                Ok(e) => {
                    envelopes.push(e);
                    ids.push(row.id);
                }
                // Only `enqueue` writes here, so this is corruption: keep the row, say so loudly.
                Err(e) => {
                    tracing::error!(id = %row.id, error = %e, "unreadable outbox row left unpublished");
                    record_failure(&txn, vec![row.id], &e.to_string()).await?;
                }
            }
        }

        match self.bus.send(&envelopes).await {
            Ok(confirms) => Ok(Some(SentBatch { txn, ids, confirms })),
            Err(e) => {
                self.failed(txn, ids, &e).await?;
                Err(e.into())
            }
        }
    }

    /// Waits for the broker's confirms of a sent batch and marks its rows published, or
    /// records the failure on them.
    async fn settle(&self, sent: SentBatch) -> Result<(), RelayError> {
        let SentBatch { txn, ids, confirms } = sent;
        match confirms.await {
            Ok(()) => {
                let published = ids.len() as u64;
                let now = self.config.clock.now();
                outbox_event::Entity::update_many()
                    .col_expr(Column::PublishedAt, Expr::value(now))
                    .filter(Column::Id.is_in(ids))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                PUBLISHED.add(published, &[("service", self.config.service)]);
                Ok(())
            }
            Err(e) => {
                self.failed(txn, ids, &e).await?;
                Err(e.into())
            }
        }
    }

    async fn failed(
        &self,
        txn: DatabaseTransaction,
        ids: Vec<String>,
        error: &BusError,
    ) -> Result<(), DbErr> {
        PUBLISH_FAILURES.inc(&[("service", self.config.service)]);
        if !ids.is_empty() {
            record_failure(&txn, ids, &error.to_string()).await?;
        }
        txn.commit().await
    }

    /// Deletes rows published longer ago than the retention period.
    pub async fn delete_published(&self) -> Result<u64, DbErr> {
        let retention =
            chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = self
            .config
            .clock
            .now()
            .checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let result = outbox_event::Entity::delete_many()
            .filter(Column::PublishedAt.is_not_null())
            .filter(Column::PublishedAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

/// Settings of a claim transaction, in one round trip (PostgreSQL only).
///
/// - The claim walks the partial index in order instead of a bitmap scan. Published rows leave
///   dead entries in that index until vacuum; a bitmap scan visits each one's heap page on every
///   claim (1–5 ms after a burst of 40,000 events), an index scan marks them dead once and skips
///   them afterwards (0.2 ms).
/// - The "published" marks need not wait for the WAL flush: a mark lost in a crash only
///   publishes the rows again (at least once), and so does a lost failure count.
async fn claim_settings(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let sets: Vec<String> = CLAIM_SETTINGS
            .iter()
            .map(|(name, value)| format!("SET LOCAL {name} = {value}"))
            .collect();
        txn.execute_unprepared(&sets.join("; ")).await?;
    }
    Ok(())
}

/// Where a claim starts reading the partial index of unpublished rows.
///
/// Published rows leave dead entries at the old end of that index until vacuum, and autovacuum
/// visits a database about once a minute: at a few hundred events/s a claim from the start
/// reads tens of thousands of them (0.9 ms per claim measured during `place-order`, after the
/// seeding's 40,000 events). So a claim starts shortly before the newest row the relay has
/// claimed. A row that commits later than that margin with an older `created_at` (a transaction
/// open for seconds, a writer whose clock is behind) is published by the sweep from the start
/// of the index, which the relay makes once per poll interval.
#[derive(Debug, Default)]
struct ClaimWindow {
    newest_claimed: Option<DateTime<Utc>>,
    last_sweep: Option<DateTime<Utc>>,
}

/// How far before the newest claimed row a claim starts: far longer than an outbox row takes
/// from its `created_at` to its commit, and than clocks of one deployment drift apart.
const CLAIM_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

impl ClaimWindow {
    /// The lowest `created_at` the next claim reads, or `None` for a sweep of the whole index.
    fn claim_from(&mut self, now: DateTime<Utc>, sweep_every: Duration) -> Option<DateTime<Utc>> {
        let sweep_every = chrono::Duration::from_std(sweep_every).unwrap_or(chrono::TimeDelta::MAX);
        let swept_recently = self
            .last_sweep
            .is_some_and(|at| now.signed_duration_since(at) < sweep_every);
        match self.newest_claimed {
            Some(newest) if swept_recently => Some(newest - CLAIM_MARGIN),
            _ => {
                self.last_sweep = Some(now);
                None
            }
        }
    }

    fn claimed(&mut self, created_at: DateTime<Utc>) {
        self.newest_claimed = Ord::max(self.newest_claimed, Some(created_at));
    }
}

/// A batch sent to the broker, its rows still locked by `txn` until it is settled.
struct SentBatch {
    txn: DatabaseTransaction,
    ids: Vec<String>,
    confirms: PendingConfirms,
}

async fn record_failure<C: ConnectionTrait>(
    db: &C,
    ids: Vec<String>,
    error: &str,
) -> Result<(), DbErr> {
    outbox_event::Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::LastError, Expr::value(error.to_owned()))
        .filter(Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}
