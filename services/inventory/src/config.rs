//! The inventory service's settings, read from the environment (ARCHITECTURE §5).

use std::net::SocketAddr;
use std::time::Duration;

use omni_platform::auth::TokenVerifier;
use omni_platform::config::{ConfigError, Env, Secret};
use omni_platform::tls::ServerTls;

#[derive(Debug, Clone)]
pub struct InventoryConfig {
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR`: the admin HTTP listener (`/metrics`, `/healthz`); unset = none (the
    /// manifests set `0.0.0.0:9101`).
    pub metrics_addr: Option<SocketAddr>,
    /// `DATABASE_URL`: PostgreSQL in production, a SQLite file in the embedded default.
    pub database_url: Secret,
    /// `REDIS_URL`; `None` runs the in-process gate (embedded default, one process only).
    pub redis_url: Option<Secret>,
    /// `AMQP_URL`; `None` uses the in-process bus.
    pub amqp_url: Option<Secret>,
    /// `REDIS_KEY_PREFIX`: every key and the pub/sub channel live under it.
    pub key_prefix: String,
    /// `HOLD_GRACE`: how long a PENDING hold may wait for its PostgreSQL row before the reaper
    /// checks it, and how long a rebuild waits for in-flight writes.
    pub hold_grace: Duration,
    /// `REAPER_INTERVAL`: how often expired holds and orphans are looked for.
    pub reaper_interval: Duration,
    /// `RECONCILE_INTERVAL`: how often Redis is compared with PostgreSQL.
    pub reconcile_interval: Duration,
    pub auth: Option<TokenVerifier>,
    /// `TLS_CERT_FILE` / `TLS_KEY_FILE` (+ `TLS_CLIENT_CA_FILE` for mTLS); `None` = plaintext.
    pub tls: Option<ServerTls>,
    /// `STOCK_EFFECTS_QUEUE`: the queue of order and WMS stock effects (default
    /// `inventory.stock-effects`); another name lets several deployments share one broker.
    pub stock_effects_queue: String,
    /// `LEVEL_CACHE_ENTRIES`: stock counter slots kept in memory for availability reads,
    /// current through the Redis change feed (0 = read Redis every time). 40–80 bytes each; a
    /// SKU's row spans its lowest to its highest location.
    pub level_cache_entries: usize,
}

impl InventoryConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env
            .url_opt("DATABASE_URL", &["postgres", "postgresql", "sqlite"])?
            .unwrap_or_else(|| Secret::new("sqlite://data/inventory.db?mode=rwc"));
        let key_prefix = env
            .get("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| "omni:inventory".to_owned());
        if key_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigError::new(
                "REDIS_KEY_PREFIX",
                &key_prefix,
                "must not contain braces or spaces (braces are cluster hash tags)",
            ));
        }
        let hold_grace = env.duration_or("HOLD_GRACE", Duration::from_secs(10))?;
        if hold_grace < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "HOLD_GRACE",
                &format!("{hold_grace:?}"),
                "must be at least 100ms",
            ));
        }
        Ok(Self {
            listen_addr: env.socket_addr_or("LISTEN_ADDR", "0.0.0.0:50051")?,
            metrics_addr: env.parse_opt("METRICS_ADDR")?,
            database_url,
            redis_url: env.url_opt("REDIS_URL", &["redis", "rediss"])?,
            amqp_url: env.url_opt("AMQP_URL", &["amqp", "amqps"])?,
            key_prefix,
            hold_grace,
            reaper_interval: env.duration_or("REAPER_INTERVAL", Duration::from_secs(1))?,
            reconcile_interval: env.duration_or("RECONCILE_INTERVAL", Duration::from_secs(60))?,
            auth: TokenVerifier::from_env(env)?,
            tls: ServerTls::from_env(env)?,
            stock_effects_queue: env
                .get("STOCK_EFFECTS_QUEUE")
                .unwrap_or_else(|| crate::events::consumers::QUEUE.to_owned()),
            level_cache_entries: env.parse_or(
                "LEVEL_CACHE_ENTRIES",
                crate::reservations::DEFAULT_LEVEL_CACHE_ENTRIES,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_ones() {
        let cfg = InventoryConfig::from_env(&Env::from_pairs::<_, &str, &str>([])).unwrap();
        assert_eq!(cfg.listen_addr.port(), 50051);
        assert_eq!(cfg.metrics_addr, None);
        assert!(cfg.redis_url.is_none());
        assert!(cfg.database_url.expose().starts_with("sqlite:"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("REDIS_URL", "http://cache:6379"),
            ("DATABASE_URL", "mysql://db/omni"),
            ("LISTEN_ADDR", "everywhere"),
            ("HOLD_GRACE", "soon"),
            ("REDIS_KEY_PREFIX", "omni:{inv}"),
        ] {
            let err = InventoryConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }
}
