//! Typed configuration from environment variables.
//!
//! Every value is parsed and validated before anything connects, and a bad value fails at start
//! with the variable's name, so an operator fixes a typo instead of reading a connection error.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that could not be used, naming the variable it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason} (got {shown:?})")]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
    /// The offending value with any password masked.
    pub shown: String,
}

impl ConfigError {
    pub fn new(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            reason: reason.into(),
            shown: mask_password(value),
        }
    }
}

/// Where variables are read from: the process environment, or a map in tests.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { overrides: None }
    }

    /// A fixed set of variables, for tests and for `omni up`, which hosts several services.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            overrides: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The raw value; an empty string counts as unset so `FOO=` in a manifest means "default".
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(name, &raw, e.to_string())),
        }
    }

    pub fn parse_opt<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::new(name, &raw, e.to_string())),
        }
    }

    pub fn socket_addr_or(&self, name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        raw.trim().parse().map_err(|_| {
            ConfigError::new(
                name,
                &raw,
                "must be host:port with a numeric IP, e.g. 0.0.0.0:50051",
            )
        })
    }

    /// A duration in whole seconds or with a unit suffix: `30`, `30s`, `500ms`, `5m`, `2h`.
    pub fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_duration(raw.trim()).ok_or_else(|| {
                ConfigError::new(
                    name,
                    &raw,
                    "must be a duration such as 30s, 500ms, 5m or 2h",
                )
            }),
        }
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(name, &v, "must be true or false")),
        }
    }

    /// A URL whose scheme is one of `schemes`.
    pub fn url_opt(&self, name: &str, schemes: &[&str]) -> Result<Option<Secret>, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let raw = raw.trim().to_owned();
        let parsed = url::Url::parse(&raw)
            .map_err(|e| ConfigError::new(name, &raw, format!("is not a valid URL: {e}")))?;
        if !schemes.contains(&parsed.scheme()) {
            return Err(ConfigError::new(
                name,
                &raw,
                format!("scheme must be one of {}", schemes.join(", ")),
            ));
        }
        if parsed.scheme() != "sqlite" && parsed.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::new(name, &raw, "has no host"));
        }
        if let Some(port) = port_text(&raw)
            && port.parse::<u16>().is_err()
        {
            return Err(ConfigError::new(
                name,
                &raw,
                format!("port {port:?} is not a number between 0 and 65535"),
            ));
        }
        Ok(Some(Secret::new(raw)))
    }
}

/// The explicit port of a URL as written, so `postgres://h:54x2/db` is caught even where the URL
/// parser would accept or ignore it.
fn port_text(raw: &str) -> Option<&str> {
    let after_scheme = raw.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.starts_with('[') {
        return host_port.split_once("]:").map(|(_, p)| p);
    }
    host_port.rsplit_once(':').map(|(_, p)| p)
}

pub fn parse_duration(raw: &str) -> Option<Duration> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// A value that must not appear in logs: its `Debug` and `Display` mask any password.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", mask_password(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.0))
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`; anything without a URL password is
/// shown whole only if it looks like a URL, and fully masked otherwise (a bare key or token).
pub fn mask_password(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => value.to_owned(),
        Err(_) if value.len() > 24 => "***".to_owned(),
        Err(_) => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_port_names_the_variable() {
        let env = Env::from_pairs([("LISTEN_ADDR", "0.0.0.0:5x051")]);
        let err = env
            .socket_addr_or("LISTEN_ADDR", "0.0.0.0:50051")
            .unwrap_err();
        assert_eq!(err.variable, "LISTEN_ADDR");
        assert!(err.to_string().starts_with("LISTEN_ADDR:"), "{err}");
    }

    #[test]
    fn a_malformed_url_names_the_variable_and_hides_the_password() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@db:54x2/omni")]);
        let err = env
            .url_opt("DATABASE_URL", &["postgres", "postgresql"])
            .unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let env = Env::from_pairs([("AMQP_URL", "http://broker:5672")]);
        let err = env.url_opt("AMQP_URL", &["amqp", "amqps"]).unwrap_err();
        assert!(err.to_string().contains("scheme"), "{err}");

        let env = Env::from_pairs([("REDIS_URL", "not a url")]);
        assert_eq!(
            env.url_opt("REDIS_URL", &["redis"]).unwrap_err().variable,
            "REDIS_URL"
        );
    }

    #[test]
    fn unset_and_empty_mean_default() {
        let env = Env::from_pairs([("A", "")]);
        assert_eq!(env.parse_or("A", 7u32).unwrap(), 7);
        assert_eq!(env.parse_or("B", 8u32).unwrap(), 8);
        assert_eq!(env.url_opt("A", &["redis"]).unwrap(), None);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("2d"), None);
        assert_eq!(parse_duration("s"), None);
        let env = Env::from_pairs([("HOLD_TTL", "ten minutes")]);
        assert_eq!(
            env.duration_or("HOLD_TTL", Duration::ZERO)
                .unwrap_err()
                .variable,
            "HOLD_TTL"
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = Secret::new("amqp://guest:topsecret@rabbit:5672/%2f");
        assert!(!format!("{s:?}").contains("topsecret"));
        assert!(!format!("{s}").contains("topsecret"));
        assert_eq!(s.expose(), "amqp://guest:topsecret@rabbit:5672/%2f");
    }
}
