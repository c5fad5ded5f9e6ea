//! Connecting to a service's own database and running its migrations.
//!
//! PostgreSQL is the production path. SQLite is the embedded default: it has one writer, so the
//! pool is a single connection in WAL mode with a busy timeout, and nothing relies on
//! `FOR UPDATE SKIP LOCKED` there (one relay, one job runner per process).

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    /// Bounds every statement, so a slow transaction cannot commit after a reaper that waited a
    /// grace period has given up on it (ARCHITECTURE §3): keep it under half of that grace.
    pub statement_timeout: Duration,
    pub application_name: String,
    /// False for a pool whose commits return before their WAL record reaches the disk
    /// (`synchronous_commit = off` for the whole session): see [`skip_flush_wait`] for which
    /// writes may use it. Saves the BEGIN, SET LOCAL and COMMIT round trips of a transaction
    /// around a single statement. PostgreSQL only.
    pub wait_for_flush: bool,
    /// Settings for every session of the pool (PostgreSQL's `options`), so a transaction that
    /// needs them does not spend a round trip on `SET LOCAL`. PostgreSQL only.
    pub session_settings: Vec<(&'static str, &'static str)>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            application_name: "omni".to_owned(),
            wait_for_flush: true,
            session_settings: Vec::new(),
        }
    }
}

pub async fn connect(url: &str, options: &DbOptions) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.connect_timeout(options.connect_timeout)
        .acquire_timeout(options.acquire_timeout)
        .sqlx_logging(false);
    if is_sqlite(url) {
        opts.max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
    } else {
        opts.max_connections(options.max_connections)
            .min_connections(1)
            .statement_timeout(options.statement_timeout)
            .set_application_name(options.application_name.clone());
        let mut settings = options.session_settings.clone();
        if !options.wait_for_flush {
            settings.push(("synchronous_commit", "off"));
        }
        if !settings.is_empty() {
            opts.map_sqlx_postgres_opts(move |o| o.options(settings.iter().copied()));
        }
    }
    Database::connect(opts).await
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Runs `M`'s pending migrations. On PostgreSQL they run under a session advisory lock keyed by
/// the migrator's name, on a connection of their own, so replicas starting together take turns
/// instead of racing to create the same tables.
pub async fn migrate<M: MigratorTrait>(url: &str, lock_name: &str) -> Result<(), DbErr> {
    if is_sqlite(url) {
        let db = connect(url, &DbOptions::default()).await?;
        M::up(&db, None).await?;
        return db.close().await;
    }
    let options = DbOptions {
        max_connections: 1,
        // DDL on a large table may legitimately take longer than a request.
        statement_timeout: Duration::from_secs(600),
        ..DbOptions::default()
    };
    let db = connect(url, &options).await?;
    let key = advisory_key(lock_name);
    db.execute_unprepared(&format!("SELECT pg_advisory_lock({key})"))
        .await?;
    let outcome = M::up(&db, None).await;
    let unlocked = db
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({key})"))
        .await;
    let closed = db.close().await;
    outcome?;
    unlocked?;
    closed
}

/// A stable 63-bit key from a name, so every replica of a service computes the same lock.
fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) >> 1) as i64
}

pub fn backend(db: &DatabaseConnection) -> DbBackend {
    db.get_database_backend()
}

/// A timestamp as a JSON recordset carries it to a `timestamptz` column (`json_to_recordset`):
/// RFC 3339 in UTC with microseconds, the precision PostgreSQL keeps, so nothing is rounded.
pub fn recordset_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Lets the COMMIT of the transaction `txn` return before its WAL record reaches the disk
/// (`SET LOCAL synchronous_commit = off`). Only for writes that are repeated safely when a
/// crash loses the last few hundred milliseconds of them: a relay's "published" marks (the
/// events go out again, consumers dedupe), a flag a sweeper re-derives. Any later ordinary
/// commit flushes it too, since the WAL is one sequence. No-op off PostgreSQL.
pub async fn skip_flush_wait<C: ConnectionTrait>(txn: &C) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_positive() {
        assert_eq!(advisory_key("inventory"), advisory_key("inventory"));
        assert_ne!(advisory_key("inventory"), advisory_key("orders"));
        assert!(advisory_key("member") >= 0);
    }
}
