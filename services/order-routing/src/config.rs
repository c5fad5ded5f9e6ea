//! Configuration of the order-routing service (ARCHITECTURE §5), read and checked before
//! anything connects.

use std::net::SocketAddr;
use std::time::Duration;

use omni_platform::auth::TokenVerifier;
use omni_platform::config::{ConfigError, Env, Secret};
use omni_platform::tls::{ClientTls, ServerTls};

use crate::service::Settings;

#[derive(Debug, Clone)]
pub struct OrdersConfig {
    pub database_url: Secret,
    /// `None`: the in-process bus (embedded mode, tests).
    pub amqp_url: Option<Secret>,
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR`: the admin HTTP listener (`/metrics`, `/healthz`); unset = none (the
    /// manifests set `0.0.0.0:9102`).
    pub metrics_addr: Option<SocketAddr>,
    /// `None`: no authentication (development only).
    pub verifier: Option<TokenVerifier>,
    /// `TLS_CERT_FILE` / `TLS_KEY_FILE` (+ `TLS_CLIENT_CA_FILE` for mTLS); `None` = plaintext.
    pub tls: Option<ServerTls>,
    /// `TLS_CA_FILE` (+ client certificate): how this service calls inventory and member.
    pub peer_tls: Option<ClientTls>,
    pub inventory_addr: String,
    pub member_addr: String,
    /// Presented to inventory and member (`service:orders`).
    pub service_token: Option<Secret>,
    /// Deadline of every call to a peer.
    pub peer_deadline: Duration,
    pub settings: Settings,
    pub pickup_expiry_interval: Duration,
    pub sweep_interval: Duration,
}

fn peer_addr(env: &Env, name: &str, default: &str) -> Result<String, ConfigError> {
    let raw = env.get(name).unwrap_or_else(|| default.to_owned());
    let ok = (raw.starts_with("http://") || raw.starts_with("https://"))
        && raw
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty());
    if ok {
        Ok(raw)
    } else {
        Err(ConfigError::new(
            name,
            &raw,
            "must be an http:// or https:// address such as http://127.0.0.1:50051",
        ))
    }
}

impl OrdersConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env
            .url_opt("DATABASE_URL", &["postgres", "postgresql", "sqlite"])?
            .unwrap_or_else(|| Secret::new("sqlite://data/orders.db?mode=rwc"));
        let defaults = Settings::default();
        let settings = Settings {
            reserve_ttl: env.duration_or("ORDER_RESERVE_TTL", defaults.reserve_ttl)?,
            placement_lease: env.duration_or("ORDER_PLACEMENT_LEASE", defaults.placement_lease)?,
            max_plan_attempts: defaults.max_plan_attempts,
            default_pickup_hold: env
                .duration_or("DEFAULT_PICKUP_HOLD", defaults.default_pickup_hold)?,
        };
        if settings.reserve_ttl < Duration::from_secs(1)
            || settings.reserve_ttl > Duration::from_secs(3600)
        {
            return Err(ConfigError::new(
                "ORDER_RESERVE_TTL",
                &format!("{:?}", settings.reserve_ttl),
                "must be between 1s and 1h",
            ));
        }
        Ok(Self {
            database_url,
            amqp_url: env.url_opt("AMQP_URL", &["amqp", "amqps"])?,
            listen_addr: env.socket_addr_or("LISTEN_ADDR", "0.0.0.0:50052")?,
            metrics_addr: env.parse_opt("METRICS_ADDR")?,
            verifier: TokenVerifier::from_env(env)?,
            tls: ServerTls::from_env(env)?,
            peer_tls: ClientTls::from_env(env)?,
            inventory_addr: peer_addr(env, "INVENTORY_ADDR", "http://127.0.0.1:50051")?,
            member_addr: peer_addr(env, "MEMBER_ADDR", "http://127.0.0.1:50053")?,
            service_token: env.get("SERVICE_TOKEN").map(Secret::new),
            peer_deadline: env.duration_or("PEER_DEADLINE", Duration::from_secs(3))?,
            settings,
            pickup_expiry_interval: env
                .duration_or("PICKUP_EXPIRY_INTERVAL", Duration::from_secs(60))?,
            sweep_interval: env
                .duration_or("CONFIRMATION_SWEEP_INTERVAL", Duration::from_secs(15))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_architecture() {
        let c = OrdersConfig::from_env(&Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        assert_eq!(c.listen_addr.port(), 50052);
        assert_eq!(c.inventory_addr, "http://127.0.0.1:50051");
        assert_eq!(c.member_addr, "http://127.0.0.1:50053");
        assert!(c.amqp_url.is_none());
        assert!(
            c.database_url
                .expose()
                .starts_with("sqlite://data/orders.db")
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("INVENTORY_ADDR", "127.0.0.1:50051"),
            ("LISTEN_ADDR", "nowhere"),
            ("ORDER_RESERVE_TTL", "2h"),
            ("DATABASE_URL", "mysql://db/orders"),
        ] {
            let err = OrdersConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }
}
