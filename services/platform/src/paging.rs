//! Page tokens: opaque to clients, signed, expiring, and bound to the request they continue.
//!
//! A list RPC hands out `next_page_token`; the client sends it back with the same request to get
//! the next page. A plain key ("after member 42") would let a client forge a position, reuse it
//! with other filters (and page through rows its filters exclude), or keep it forever. So a
//! token here carries the cursor together with when it was issued and a digest of the request
//! it belongs to (the RPC and its filters, not the page size: a client may change that between
//! pages), all under an HMAC-SHA256. Opening a token checks, in order: it was signed with our
//! key, it belongs to this request, it is not older than the TTL.
//!
//! Every replica behind a load balancer must hold the same key, or a page issued by one is
//! "not ours" to the next: [`PageTokenKey::from_env`] reads `PAGE_TOKEN_SECRET`, falls back to
//! a key derived from `JWT_HS256_SECRET`, and only then to a random per-process key.
//!
//! Layout (lower-case hex on the wire):
//! `version (1) | issued_at, Unix seconds, big-endian (8) | scope digest (16) | cursor JSON | tag (32)`.
//! The cursor is readable by anyone who decodes it; it is the signature, not secrecy, that
//! makes the token safe. Nothing sensitive belongs in a cursor.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, Env};

/// How long a page token stays valid unless a service chooses otherwise: long enough to read a
/// listing page by page, short enough that a token copied into a bookmark stops working.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Shortest secret accepted from configuration, as for `JWT_HS256_SECRET`.
const MIN_SECRET_LEN: usize = 32;
/// Tokens longer than this are refused before decoding: no cursor of ours comes near it, and
/// a client should not make the server hex-decode and hash megabytes.
const MAX_TOKEN_LEN: usize = 2048;
const VERSION: u8 = 1;
const SCOPE_LEN: usize = 16;
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = 1 + 8 + SCOPE_LEN;
/// Keeps page-token keys apart from any other use of the secret they are derived from.
const KEY_LABEL: &[u8] = b"omni.page-token.key.v1\0";

type HmacSha256 = Hmac<Sha256>;

/// The key tokens are signed with. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PageTokenKey([u8; 32]);

/// Where the key came from, so a service can say at start whether replicas will agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `PAGE_TOKEN_SECRET`.
    PageTokenSecret,
    /// Derived from `JWT_HS256_SECRET`, which every replica already shares.
    JwtSecret,
    /// Random for this process: tokens survive neither a restart nor a hop to another replica.
    Random,
}

impl PageTokenKey {
    /// A key derived from a shared secret. Derived, not used as is, so that a token tag can never
    /// double as a signature made with the same secret elsewhere (a JWT).
    pub fn derive(secret: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(KEY_LABEL);
        hash.update(secret);
        Self(hash.finalize().into())
    }

    pub fn random() -> Self {
        Self(rand::random())
    }

    /// `PAGE_TOKEN_SECRET` (at least 32 characters), else derived from `JWT_HS256_SECRET`, else
    /// random. A secret that is set but too short fails at start naming its variable.
    pub fn from_env(env: &Env) -> Result<(Self, KeySource), ConfigError> {
        for (variable, source) in [
            ("PAGE_TOKEN_SECRET", KeySource::PageTokenSecret),
            ("JWT_HS256_SECRET", KeySource::JwtSecret),
        ] {
            if let Some(secret) = env.get(variable) {
                if secret.len() < MIN_SECRET_LEN {
                    return Err(ConfigError::new(
                        variable,
                        "***",
                        format!("must be at least {MIN_SECRET_LEN} characters"),
                    ));
                }
                return Ok((Self::derive(secret.as_bytes()), source));
            }
        }
        Ok((Self::random(), KeySource::Random))
    }
}

impl fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageTokenKey(***)")
    }
}

/// The request a token continues: the RPC's full name and its filters, fed in a fixed order
/// and in canonical form (sorted sets, normalised ids), so that the same question asked twice
/// gives the same scope. Leave out the page size and the token itself.
#[derive(Clone)]
pub struct PageScope(Sha256);

impl PageScope {
    pub fn new(method: &str) -> Self {
        let mut hash = Sha256::new();
        feed(&mut hash, "omni.page-scope.v1");
        feed(&mut hash, method);
        Self(hash)
    }

    /// One filter. Names and values are length-prefixed, so ("a", "bc") and ("ab", "c") differ.
    pub fn with(mut self, name: &str, value: impl fmt::Display) -> Self {
        feed(&mut self.0, name);
        feed(&mut self.0, &value.to_string());
        self
    }

    fn digest(&self) -> [u8; SCOPE_LEN] {
        let full = self.0.clone().finalize();
        let mut out = [0u8; SCOPE_LEN];
        out.copy_from_slice(&full[..SCOPE_LEN]);
        out
    }
}

fn feed(hash: &mut Sha256, part: &str) {
    hash.update((part.len() as u64).to_be_bytes());
    hash.update(part.as_bytes());
}

/// Why a token was refused. The `Display` text is written to follow the field name
/// (`page_token: has expired …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageTokenError {
    /// Not hex, too short or long, or an unknown version: not something we issued.
    #[error("is not a page token this API issued")]
    Malformed,
    /// The signature does not match: altered, or signed by a replica with another key.
    #[error("is not a page token this API issued (altered, or signed with another key)")]
    BadSignature,
    /// Genuine, but issued for another RPC or other filters.
    #[error(
        "was issued for a request with other filters; send the first page's filters again, or start without a page_token"
    )]
    OtherRequest,
    #[error("expired at {at}; start again without a page_token")]
    Expired { at: DateTime<Utc> },
}

/// Issues and opens page tokens with one key and one lifetime.
#[derive(Clone)]
pub struct PageTokens {
    mac: HmacSha256,
    ttl: chrono::Duration,
}

impl fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PageTokens {
    pub fn new(key: &PageTokenKey, ttl: Duration) -> Self {
        // HMAC pads a key shorter than the hash's block with zeros (RFC 2104), so a 32-byte key
        // in a zeroed 64-byte block is that key, through the constructor that cannot fail.
        let mut block = Key::<HmacSha256>::default();
        block[..key.0.len()].copy_from_slice(&key.0);
        Self {
            mac: <HmacSha256 as KeyInit>::new(&block),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        }
    }

    /// A token for the page after `cursor`, valid for the TTL from `now`.
    pub fn issue<C: Serialize>(
        &self,
        scope: &PageScope,
        cursor: &C,
        now: DateTime<Utc>,
    ) -> Result<String, serde_json::Error> {
        let cursor = serde_json::to_vec(cursor)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + cursor.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&now.timestamp().to_be_bytes());
        bytes.extend_from_slice(&scope.digest());
        bytes.extend_from_slice(&cursor);
        let tag = self.tag(&bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag);
        Ok(hex::encode(bytes))
    }

    /// The cursor of a token issued for `scope` less than the TTL before `now`.
    pub fn open<C: DeserializeOwned>(
        &self,
        scope: &PageScope,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<C, PageTokenError> {
        // Lower-case only, so one page has one token: `hex` would also take upper case.
        let canonical = token.len() <= MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !canonical {
            return Err(PageTokenError::Malformed);
        }
        let bytes = hex::decode(token).map_err(|_| PageTokenError::Malformed)?;
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(PageTokenError::Malformed);
        }
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        // `verify_slice` compares in constant time: no guessing the tag byte by byte.
        self.tag(signed)
            .verify_slice(tag)
            .map_err(|_| PageTokenError::BadSignature)?;
        let (header, cursor) = signed.split_at(HEADER_LEN);
        if header[9..] != scope.digest() {
            return Err(PageTokenError::OtherRequest);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&header[1..9]);
        let issued_at = Utc
            .timestamp_opt(i64::from_be_bytes(issued), 0)
            .single()
            .ok_or(PageTokenError::Malformed)?;
        let expires_at = issued_at
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now >= expires_at {
            return Err(PageTokenError::Expired { at: expires_at });
        }
        // Signed by us for this very RPC, so a cursor that does not parse is a bug on our side
        // (a cursor type changed across a deploy); the client can only start again.
        serde_json::from_slice(cursor).map_err(|_| PageTokenError::Malformed)
    }

    fn tag(&self, signed: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PageTokens {
        PageTokens::new(&PageTokenKey::derive(b"test secret"), DEFAULT_TTL)
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap()
    }

    fn ledger_of(member: &str) -> PageScope {
        PageScope::new("omni.test.v1.Service/ListLedger").with("member_id", member)
    }

    #[test]
    fn a_token_opens_to_its_cursor_for_the_same_request() {
        let tokens = tokens();
        let token = tokens.issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        let cursor: i64 = tokens
            .open(
                &ledger_of("m1"),
                &token,
                t0() + chrono::Duration::minutes(59),
            )
            .unwrap();
        assert_eq!(cursor, 42);
        let uuid = uuid::Uuid::now_v7();
        let token = tokens.issue(&ledger_of("m1"), &uuid, t0()).unwrap();
        assert_eq!(
            tokens.open::<uuid::Uuid>(&ledger_of("m1"), &token, t0()),
            Ok(uuid)
        );
    }

    #[test]
    fn the_cursor_is_not_a_plain_key() {
        let token = tokens().issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        assert!(token.parse::<i64>().is_err(), "{token}");
    }

    #[test]
    fn a_token_for_other_filters_or_another_rpc_is_refused() {
        let tokens = tokens();
        let token = tokens.issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        assert_eq!(
            tokens.open::<i64>(&ledger_of("m2"), &token, t0()),
            Err(PageTokenError::OtherRequest)
        );
        let other_rpc = PageScope::new("omni.test.v1.Service/ListMembers").with("member_id", "m1");
        assert_eq!(
            tokens.open::<i64>(&other_rpc, &token, t0()),
            Err(PageTokenError::OtherRequest)
        );
        // Length prefixes keep a value from sliding into the next name.
        let a = PageScope::new("m").with("a", "bc").with("d", "");
        let b = PageScope::new("m").with("ab", "c").with("d", "");
        let token = tokens.issue(&a, &1_i64, t0()).unwrap();
        assert_eq!(
            tokens.open::<i64>(&b, &token, t0()),
            Err(PageTokenError::OtherRequest)
        );
    }

    #[test]
    fn a_token_expires_after_the_ttl() {
        let tokens = tokens();
        let token = tokens.issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        let expiry = t0() + chrono::Duration::hours(1);
        assert!(
            tokens
                .open::<i64>(
                    &ledger_of("m1"),
                    &token,
                    expiry - chrono::Duration::seconds(1)
                )
                .is_ok()
        );
        assert_eq!(
            tokens.open::<i64>(&ledger_of("m1"), &token, expiry),
            Err(PageTokenError::Expired { at: expiry })
        );
        assert!(
            PageTokenError::Expired { at: expiry }
                .to_string()
                .contains("expired")
        );
    }

    #[test]
    fn every_altered_character_is_caught() {
        let tokens = tokens();
        let token = tokens.issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(bytes).unwrap();
            let result = tokens.open::<i64>(&ledger_of("m1"), &altered, t0());
            assert!(
                matches!(
                    result,
                    Err(PageTokenError::BadSignature | PageTokenError::Malformed)
                ),
                "position {i}: {result:?}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let tokens = tokens();
        let valid = tokens.issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        for garbage in [
            "42".to_owned(),
            "not hex".to_owned(),
            "abc".to_owned(),
            valid.to_uppercase(),
            valid[..40].to_owned(),
            "0".repeat(MAX_TOKEN_LEN + 2),
            format!("02{}", &valid[2..]),
        ] {
            assert_eq!(
                tokens.open::<i64>(&ledger_of("m1"), &garbage, t0()),
                Err(PageTokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn another_key_does_not_open_it() {
        let token = tokens().issue(&ledger_of("m1"), &42_i64, t0()).unwrap();
        let other = PageTokens::new(&PageTokenKey::derive(b"another secret"), DEFAULT_TTL);
        assert_eq!(
            other.open::<i64>(&ledger_of("m1"), &token, t0()),
            Err(PageTokenError::BadSignature)
        );
        let random = PageTokens::new(&PageTokenKey::random(), DEFAULT_TTL);
        assert_eq!(
            random.open::<i64>(&ledger_of("m1"), &token, t0()),
            Err(PageTokenError::BadSignature)
        );
    }

    /// RFC 4231 test case 1 (20-byte key), through the zero-padded block that `new` builds: the
    /// padding is what HMAC itself does, so the tags are the standard ones.
    #[test]
    fn the_tag_is_standard_hmac_sha256() {
        let mut block = Key::<HmacSha256>::default();
        block[..20].copy_from_slice(&[0x0b; 20]);
        let mut mac = <HmacSha256 as KeyInit>::new(&block);
        mac.update(b"Hi There");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn the_key_comes_from_the_page_secret_then_the_jwt_secret_then_chance() {
        let long = "a-shared-secret-of-at-least-32-chars!";
        let (key, source) =
            PageTokenKey::from_env(&Env::from_pairs([("PAGE_TOKEN_SECRET", long)])).unwrap();
        assert_eq!(source, KeySource::PageTokenSecret);
        assert_eq!(key, PageTokenKey::derive(long.as_bytes()));
        let (_, source) = PageTokenKey::from_env(&Env::from_pairs([
            ("PAGE_TOKEN_SECRET", long),
            ("JWT_HS256_SECRET", "another-secret-of-at-least-32-chars"),
        ]))
        .unwrap();
        assert_eq!(source, KeySource::PageTokenSecret);
        let (key, source) =
            PageTokenKey::from_env(&Env::from_pairs([("JWT_HS256_SECRET", long)])).unwrap();
        assert_eq!(source, KeySource::JwtSecret);
        // Two replicas with the same secret agree.
        assert_eq!(key, PageTokenKey::derive(long.as_bytes()));
        let (_, source) = PageTokenKey::from_env(&Env::from_pairs::<_, &str, &str>([])).unwrap();
        assert_eq!(source, KeySource::Random);
        let err =
            PageTokenKey::from_env(&Env::from_pairs([("PAGE_TOKEN_SECRET", "short")])).unwrap_err();
        assert_eq!(err.variable, "PAGE_TOKEN_SECRET");
        assert!(!format!("{key:?}").contains(&hex::encode(key.0)));
    }
}
