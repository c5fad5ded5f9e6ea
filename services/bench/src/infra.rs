//! The bench's own corner of the shared servers: PostgreSQL databases and a Redis key prefix
//! named after one run tag, created at start and removed at the end (also after a failed run,
//! through [`Resources::cleanup`]).

use std::sync::Mutex;

use omni_platform::testkit::with_database;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

/// A server the bench needs is unreachable or refused a setup step.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("PostgreSQL: {0} (is it running? scripts/infra.sh starts it)")]
    Postgres(#[from] DbErr),
    #[error("Redis: {0} (is it running? scripts/infra.sh starts it)")]
    Redis(#[from] redis::RedisError),
}

/// Where the servers are; every name the bench creates starts with `tag`.
#[derive(Debug)]
pub struct Resources {
    pub tag: String,
    pub postgres_admin_url: String,
    pub redis_url: String,
    /// The services' `AMQP_URL`; `scripts/bench.sh` points it at a vhost of its own, because the
    /// service binaries always declare the production exchange and queue names.
    pub amqp_url: String,
    databases: Mutex<Vec<String>>,
}

impl Resources {
    pub fn new(
        tag: String,
        postgres_admin_url: String,
        redis_url: String,
        amqp_url: String,
    ) -> Self {
        Self {
            tag,
            postgres_admin_url,
            redis_url,
            amqp_url,
            databases: Mutex::new(Vec::new()),
        }
    }

    /// Creates `<tag>_<purpose>` and returns its URL.
    pub async fn create_database(&self, purpose: &str) -> Result<String, InfraError> {
        let name = format!("{}_{purpose}", self.tag);
        let admin = Database::connect(self.postgres_admin_url.as_str()).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let _ = admin.close().await;
        if let Ok(mut dbs) = self.databases.lock() {
            dbs.push(name.clone());
        }
        Ok(with_database(&self.postgres_admin_url, &name))
    }

    /// A pool of `size` connections to `url`, quiet (per-statement logs would cost more than the
    /// statements).
    pub async fn connect(url: &str, size: u32) -> Result<DatabaseConnection, InfraError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(size)
            .min_connections(size.min(4))
            .sqlx_logging(false);
        Ok(Database::connect(options).await?)
    }

    /// The Redis key prefix of one part of the run.
    pub fn redis_prefix(&self, purpose: &str) -> String {
        format!("{}:{purpose}", self.tag)
    }

    /// Drops every database this run created and deletes its Redis keys. Best effort: it runs
    /// after failures too, and reports what it could not remove.
    pub async fn cleanup(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let names = self
            .databases
            .lock()
            .map(|mut dbs| std::mem::take(&mut *dbs))
            .unwrap_or_default();
        if !names.is_empty() {
            match Database::connect(self.postgres_admin_url.as_str()).await {
                Ok(admin) => {
                    for name in names {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        if let Err(e) = admin.execute_unprepared(&sql).await {
                            problems.push(format!("database {name}: {e}"));
                        }
                    }
                    let _ = admin.close().await;
                }
                Err(e) => problems.push(format!("PostgreSQL: {e}")),
            }
        }
        if let Err(e) = delete_keys(&self.redis_url, &format!("{}:*", self.tag)).await {
            problems.push(format!("Redis keys {}:*: {e}", self.tag));
        }
        problems
    }
}

async fn delete_keys(url: &str, pattern: &str) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
