//! Who is calling: bearer tokens (JWT) verified once per call, turned into a [`Principal`].
//!
//! The interceptor only authenticates; each service decides what a principal may do in one rules
//! table (`grpc::auth_rules` of the service), so every RPC has exactly one documented rule.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::config::{ConfigError, Env};

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A sales channel (web shop, app, marketplace): its own orders, holds and pool.
    Channel(String),
    /// A store's staff or till: that store only.
    Store(String),
    /// A warehouse system.
    Warehouse(String),
    /// Another Omni service (`service:orders`).
    Service(String),
    Admin,
}

impl Principal {
    /// Parses the `sub` claim: `channel:<id>`, `store:<id>`, `warehouse:<id>`, `service:<name>`
    /// or `admin`.
    pub fn parse(subject: &str) -> Option<Self> {
        if subject == "admin" {
            return Some(Self::Admin);
        }
        let (kind, id) = subject.split_once(':')?;
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return None;
        }
        match kind {
            "channel" => Some(Self::Channel(id.to_owned())),
            "store" => Some(Self::Store(id.to_owned())),
            "warehouse" => Some(Self::Warehouse(id.to_owned())),
            "service" => Some(Self::Service(id.to_owned())),
            _ => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }

    pub fn is_service(&self, name: &str) -> bool {
        matches!(self, Self::Service(s) if s == name)
    }

    pub fn is_channel(&self, id: &str) -> bool {
        matches!(self, Self::Channel(c) if c == id)
    }

    pub fn is_store(&self, id: &str) -> bool {
        matches!(self, Self::Store(s) if s == id)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel(id) => write!(f, "channel:{id}"),
            Self::Store(id) => write!(f, "store:{id}"),
            Self::Warehouse(id) => write!(f, "warehouse:{id}"),
            Self::Service(id) => write!(f, "service:{id}"),
            Self::Admin => f.write_str("admin"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// Verifies bearer tokens with keys from configuration.
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Clock skew tolerated on `exp` and `nbf`: enough for unsynchronised pods, short enough that an
/// expired token stops working within a minute.
pub const LEEWAY_SECS: u64 = 30;

impl TokenVerifier {
    /// HS256 with a shared secret: development and tests.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: Arc::new(key),
            validation: Arc::new(validation),
        }
    }

    /// `JWT_HS256_SECRET` (development) or `JWT_PUBLIC_KEY_FILE` (PEM; RS256 or ES256 chosen by
    /// the key type) — production keeps the signing key with the token issuer only.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        if let Some(path) = env.get("JWT_PUBLIC_KEY_FILE") {
            let pem = std::fs::read(&path).map_err(|e| {
                ConfigError::new("JWT_PUBLIC_KEY_FILE", &path, format!("cannot read: {e}"))
            })?;
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                return Ok(Some(Self::with(key, Algorithm::RS256)));
            }
            return DecodingKey::from_ec_pem(&pem)
                .map(|key| Some(Self::with(key, Algorithm::ES256)))
                .map_err(|_| {
                    ConfigError::new(
                        "JWT_PUBLIC_KEY_FILE",
                        &path,
                        "is neither an RSA nor an EC public key in PEM form",
                    )
                });
        }
        match env.get("JWT_HS256_SECRET") {
            Some(secret) if secret.len() < 32 => Err(ConfigError::new(
                "JWT_HS256_SECRET",
                "***",
                "must be at least 32 characters",
            )),
            Some(secret) => Ok(Some(Self::hs256(secret.as_bytes()))),
            None => Ok(None),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        Principal::parse(&data.claims.sub).ok_or(AuthError::UnknownSubject(data.claims.sub))
    }

    /// The gRPC interceptor: verifies `authorization: Bearer <jwt>` and stores the principal in
    /// the request's extensions. Missing or bad token → UNAUTHENTICATED before any handler runs.
    pub fn interceptor(&self) -> impl tonic::service::Interceptor + Clone + use<> {
        let verifier = self.clone();
        move |mut request: Request<()>| {
            let token = bearer(&request).ok_or_else(|| {
                Status::unauthenticated("missing bearer token in the authorization metadata")
            })?;
            match verifier.verify(token) {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    Ok(request)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rejected token");
                    Err(Status::unauthenticated(e.to_string()))
                }
            }
        }
    }
}

fn bearer<T>(request: &Request<T>) -> Option<&str> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error(
        "token subject {0:?} is not channel:<id>, store:<id>, warehouse:<id>, service:<name> or admin"
    )]
    UnknownSubject(String),
}

/// The principal the interceptor stored; UNAUTHENTICATED if the service was mounted without it.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no verified caller on this request"))
}

/// Refuses with PERMISSION_DENIED naming the scope needed, and logs who was refused.
pub fn deny(principal: &Principal, method: &str, needed: &str) -> Status {
    tracing::warn!(%principal, method, needed, "permission denied");
    Status::permission_denied(format!(
        "{principal} may not call {method}: requires {needed}"
    ))
}

/// Signs tokens: `omni up` and `omni token mint` in development, tests everywhere.
#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<EncodingKey>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenIssuer(HS256)")
    }
}

impl TokenIssuer {
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: Arc::new(EncodingKey::from_secret(secret)),
        }
    }

    pub fn mint(&self, subject: &str, ttl: std::time::Duration) -> Result<String, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        self.mint_claims(&Claims {
            sub: subject.to_owned(),
            exp: now + ttl.as_secs(),
            nbf: Some(now.saturating_sub(1)),
            iat: Some(now),
            iss: Some("omni".to_owned()),
        })
    }

    pub fn mint_claims(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

/// A fresh random secret for development (`omni up` prints tokens signed with it).
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn subjects_parse_into_principals() {
        assert_eq!(Principal::parse("admin"), Some(Principal::Admin));
        assert_eq!(
            Principal::parse("store:store-17"),
            Some(Principal::Store("store-17".into()))
        );
        assert_eq!(Principal::parse("store:"), None);
        assert_eq!(Principal::parse("store:Store 17"), None);
        assert_eq!(Principal::parse("root"), None);
        assert_eq!(Principal::parse("robot:x"), None);
    }

    #[test]
    fn tokens_verify_with_the_right_key_only() {
        let token = TokenIssuer::hs256(SECRET)
            .mint("channel:web", Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            TokenVerifier::hs256(SECRET).verify(&token),
            Ok(Principal::Channel("web".into()))
        );
        assert!(matches!(
            TokenVerifier::hs256(b"another-secret-another-secret-xx").verify(&token),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let now = jsonwebtoken::get_current_timestamp();
        let issuer = TokenIssuer::hs256(SECRET);
        let expired = issuer
            .mint_claims(&Claims {
                sub: "admin".into(),
                exp: now - LEEWAY_SECS - 10,
                nbf: None,
                iat: None,
                iss: None,
            })
            .unwrap();
        assert!(TokenVerifier::hs256(SECRET).verify(&expired).is_err());
        let early = issuer
            .mint_claims(&Claims {
                sub: "admin".into(),
                exp: now + 3600,
                nbf: Some(now + LEEWAY_SECS + 600),
                iat: None,
                iss: None,
            })
            .unwrap();
        assert!(TokenVerifier::hs256(SECRET).verify(&early).is_err());
    }

    #[test]
    fn short_secrets_are_refused_at_start() {
        let env = Env::from_pairs([("JWT_HS256_SECRET", "short")]);
        assert_eq!(
            TokenVerifier::from_env(&env).unwrap_err().variable,
            "JWT_HS256_SECRET"
        );
    }
}
