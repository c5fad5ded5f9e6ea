//! Test kit: real infrastructure, isolated per test.
//!
//! Every test gets its own PostgreSQL database, Redis key prefix and RabbitMQ names, so tests run
//! in parallel and leave nothing behind. There is no skipping: a test that needs a server fails
//! when it cannot reach it, in CI and locally alike (`scripts/infra.sh` starts them).

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `prefix_<pid>_<n>_<random>`: unique across processes and within one; lower-case, digits and
/// `_` only, so it is a valid PostgreSQL identifier, Redis key part and AMQP name.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    format!("{prefix}_{}_{n}_{random:08x}", std::process::id())
}

/// The server tests create their databases on (`TEST_DATABASE_URL`, a database URL whose
/// database part is replaced per test).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Logs are quiet in tests unless `TEST_LOG=1`.
pub fn init_test_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// A freshly created PostgreSQL database, dropped when the value is dropped (also on panic).
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    dropped: bool,
}

impl TestDatabase {
    pub async fn postgres() -> Self {
        init_test_logging();
        let admin_url = postgres_admin_url();
        let name = unique_name("omni_test");
        let admin = Database::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} is not reachable (run scripts/infra.sh): {e}")
            });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Self {
            name,
            url,
            admin_url,
            dropped: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {}: {e}", self.name))
    }

    pub async fn drop_database(mut self) {
        drop_database(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop runs outside async context; a short-lived runtime on its own thread does the
        // cleanup so a failed test does not leave its database behind.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin_url, &name));
            }
        })
        .join();
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(admin_url).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

/// Replaces the database of a PostgreSQL URL, keeping credentials and query parameters.
pub fn with_database(url: &str, database: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{database}"));
            parsed.to_string()
        }
        Err(_) => format!("postgres://postgres@127.0.0.1:5432/{database}"),
    }
}

/// A Redis key prefix of its own; `cleanup` deletes every key under it.
#[derive(Debug, Clone)]
pub struct TestRedisPrefix {
    pub prefix: String,
}

impl TestRedisPrefix {
    pub fn new() -> Self {
        Self {
            prefix: unique_name("omni_test"),
        }
    }

    pub async fn cleanup(&self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = {
            let mut iter: redis::AsyncIter<String> = match redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter_async(&mut conn)
                .await
            {
                Ok(iter) => iter,
                Err(_) => return,
            };
            let mut keys = Vec::new();
            while let Some(Ok(key)) = futures::StreamExt::next(&mut iter).await {
                keys.push(key);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
}

impl Default for TestRedisPrefix {
    fn default() -> Self {
        Self::new()
    }
}

/// Rows per table of a PostgreSQL database: a refused call must change none of them.
pub async fn row_counts(db: &DatabaseConnection) -> std::collections::BTreeMap<String, i64> {
    use sea_orm::{DbBackend, Statement};
    let tables = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap_or_else(|e| panic!("cannot list tables: {e}"));
    let mut counts = std::collections::BTreeMap::new();
    for table in tables {
        let Ok(name) = table.try_get_by_index::<String>(0) else {
            continue;
        };
        let count = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) FROM \"{name}\""),
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<i64>(0).ok())
            .unwrap_or_else(|| panic!("cannot count rows of {name}"));
        counts.insert(name, count);
    }
    counts
}
