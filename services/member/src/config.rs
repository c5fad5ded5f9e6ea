//! The member service's settings, read from the environment (ARCHITECTURE §5).

use std::net::SocketAddr;
use std::time::Duration;

use omni_platform::auth::TokenVerifier;
use omni_platform::config::{ConfigError, Env, Secret};
use omni_platform::paging::{KeySource, PageTokenKey};
use omni_platform::tls::ServerTls;
use omni_types::Currency;

use crate::domain::{EarningRules, LedgerConfig, TierThresholds};

/// What the member rules need at run time, independent of how the service is hosted.
#[derive(Debug, Clone)]
pub struct Policy {
    pub ledger: LedgerConfig,
    pub thresholds: TierThresholds,
    pub rules: EarningRules,
    /// Tiers and RFM monetary scores count spend in this currency only: converting others is a
    /// finance decision, not a member rule.
    pub book_currency: Currency,
}

#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub listen_addr: SocketAddr,
    /// `METRICS_ADDR`: the admin HTTP listener (`/metrics`, `/healthz`); unset = none (the
    /// manifests set `0.0.0.0:9103`).
    pub metrics_addr: Option<SocketAddr>,
    /// `DATABASE_URL`: PostgreSQL in production, a SQLite file in the embedded default.
    pub database_url: Secret,
    /// `AMQP_URL`; `None` uses the in-process bus.
    pub amqp_url: Option<Secret>,
    pub auth: Option<TokenVerifier>,
    /// `TLS_CERT_FILE` / `TLS_KEY_FILE` (+ `TLS_CLIENT_CA_FILE` for mTLS); `None` = plaintext.
    pub tls: Option<ServerTls>,
    pub policy: Policy,
    /// `JOB_INTERVAL`: how often expiry, hold release and tier downgrade run.
    pub job_interval: Duration,
    /// Signs ListLedger and ListMembers page tokens: `PAGE_TOKEN_SECRET`, else derived from
    /// `JWT_HS256_SECRET`, else random (then a page only continues on the replica that served it).
    pub page_token_key: PageTokenKey,
    pub page_token_key_source: KeySource,
}

/// Longest hold a redemption may have: the saga confirms within seconds; anything longer only
/// keeps a customer's points away from them.
const MAX_HOLD: Duration = Duration::from_secs(3600);

impl MemberConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env
            .url_opt("DATABASE_URL", &["postgres", "postgresql", "sqlite"])?
            .unwrap_or_else(|| Secret::new("sqlite://data/member.db?mode=rwc"));
        let lot_lifetime_months: u32 = env.parse_or("POINTS_LOT_LIFETIME_MONTHS", 24)?;
        if !(1..=120).contains(&lot_lifetime_months) {
            return Err(ConfigError::new(
                "POINTS_LOT_LIFETIME_MONTHS",
                &lot_lifetime_months.to_string(),
                "must be between 1 and 120",
            ));
        }
        let hold = env.duration_or("REDEMPTION_HOLD", Duration::from_secs(15 * 60))?;
        if hold < Duration::from_secs(1) || hold > MAX_HOLD {
            return Err(ConfigError::new(
                "REDEMPTION_HOLD",
                &format!("{hold:?}"),
                "must be between 1s and 1h",
            ));
        }
        let job_interval = env.duration_or("JOB_INTERVAL", Duration::from_secs(60))?;
        if job_interval < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "JOB_INTERVAL",
                &format!("{job_interval:?}"),
                "must be at least 100ms",
            ));
        }
        let (page_token_key, page_token_key_source) = PageTokenKey::from_env(env)?;
        Ok(Self {
            listen_addr: env.socket_addr_or("LISTEN_ADDR", "0.0.0.0:50053")?,
            metrics_addr: env.parse_opt("METRICS_ADDR")?,
            database_url,
            amqp_url: env.url_opt("AMQP_URL", &["amqp", "amqps"])?,
            auth: TokenVerifier::from_env(env)?,
            tls: ServerTls::from_env(env)?,
            policy: Policy {
                ledger: LedgerConfig {
                    lot_lifetime_months,
                    redemption_hold_secs: u32::try_from(hold.as_secs()).unwrap_or(u32::MAX),
                },
                thresholds: thresholds(env)?,
                rules: earning_rules(env)?,
                book_currency: currency(env)?,
            },
            job_interval,
            page_token_key,
            page_token_key_source,
        })
    }
}

fn thresholds(env: &Env) -> Result<TierThresholds, ConfigError> {
    let Some(raw) = env.get("TIER_THRESHOLDS") else {
        return Ok(TierThresholds::default());
    };
    let bad = |reason: String| ConfigError::new("TIER_THRESHOLDS", &raw, reason);
    let values = raw
        .split(',')
        .map(|v| v.trim().parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("must be three integers (minor units): {e}")))?;
    let [silver, gold, platinum] = values[..] else {
        return Err(bad(format!(
            "must be three values silver,gold,platinum, got {}",
            values.len()
        )));
    };
    TierThresholds::new(silver, gold, platinum).map_err(|e| bad(e.to_string()))
}

fn earning_rules(env: &Env) -> Result<EarningRules, ConfigError> {
    let Some(path) = env.get("EARNING_RULES_FILE") else {
        return Ok(EarningRules::default());
    };
    let bad = |reason: String| ConfigError::new("EARNING_RULES_FILE", &path, reason);
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let rules: EarningRules =
        serde_json::from_str(&text).map_err(|e| bad(format!("is not valid rules JSON: {e}")))?;
    rules.validate().map_err(|e| bad(e.to_string()))?;
    Ok(rules)
}

fn currency(env: &Env) -> Result<Currency, ConfigError> {
    let raw = env.get("BOOK_CURRENCY").unwrap_or_else(|| "CNY".to_owned());
    Currency::parse(raw.trim()).map_err(|e| ConfigError::new("BOOK_CURRENCY", &raw, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_ones() {
        let cfg = MemberConfig::from_env(&Env::from_pairs::<_, &str, &str>([])).unwrap();
        assert_eq!(cfg.listen_addr.port(), 50053);
        assert_eq!(cfg.metrics_addr, None);
        assert!(cfg.amqp_url.is_none());
        assert!(cfg.database_url.expose().starts_with("sqlite:"));
        assert_eq!(cfg.policy.ledger.lot_lifetime_months, 24);
        assert_eq!(cfg.policy.ledger.redemption_hold_secs, 900);
        assert_eq!(cfg.policy.thresholds, TierThresholds::default());
        assert_eq!(cfg.job_interval, Duration::from_secs(60));
        assert_eq!(cfg.page_token_key_source, KeySource::Random);
    }

    #[test]
    fn thresholds_parse_in_order() {
        let cfg = MemberConfig::from_env(&Env::from_pairs([("TIER_THRESHOLDS", "100, 200,300")]))
            .unwrap();
        assert_eq!(
            cfg.policy.thresholds,
            TierThresholds::new(100, 200, 300).unwrap()
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("DATABASE_URL", "mysql://db/omni"),
            ("AMQP_URL", "http://broker"),
            ("LISTEN_ADDR", "everywhere"),
            ("POINTS_LOT_LIFETIME_MONTHS", "0"),
            ("POINTS_LOT_LIFETIME_MONTHS", "two years"),
            ("REDEMPTION_HOLD", "2h"),
            ("TIER_THRESHOLDS", "500,100,2000"),
            ("TIER_THRESHOLDS", "100,200"),
            ("EARNING_RULES_FILE", "/nonexistent/rules.json"),
            ("JOB_INTERVAL", "often"),
            ("BOOK_CURRENCY", "yuan"),
            ("PAGE_TOKEN_SECRET", "too short"),
        ] {
            let err = MemberConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }
}
