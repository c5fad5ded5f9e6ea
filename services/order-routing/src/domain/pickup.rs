//! Pickup codes: six digits the customer shows at the store.
//!
//! The code is shown once (in `order.pickup.ready`) and stored only as SHA-256 over a random
//! per-order salt and the code, so a read of the orders table does not hand out codes. With a
//! million possible codes an offline guess is cheap regardless; the defence that matters is the
//! online one: after [`MAX_WRONG_TRIES`] wrong codes the order is locked for [`LOCKOUT`].

use chrono::{DateTime, Duration, Utc};
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const CODE_DIGITS: usize = 6;
pub const MAX_WRONG_TRIES: u32 = 5;
pub const LOCKOUT: Duration = Duration::minutes(15);
const SALT_LEN: usize = 16;

/// The plain code. Not `Serialize` and its `Debug` is redacted, so it cannot slip into storage
/// or logs by accident; [`PickupCode::reveal`] is for the one event that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct PickupCode(String);

impl PickupCode {
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PickupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PickupCode(******)")
    }
}

/// What is stored: salt and hash, hex encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupSecret {
    pub salt_hex: String,
    pub hash_hex: String,
}

fn digest(salt: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(code.as_bytes());
    h.finalize().into()
}

/// A fresh code and what to store for it. The caller passes a CSPRNG (`rand::rng()` in
/// production, a seeded one in tests).
pub fn issue<R: CryptoRng + ?Sized>(rng: &mut R) -> (PickupCode, PickupSecret) {
    let code = format!("{:06}", rng.random_range(0..1_000_000u32));
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt);
    let secret = PickupSecret {
        salt_hex: hex::encode(salt),
        hash_hex: hex::encode(digest(&salt, &code)),
    };
    (PickupCode(code), secret)
}

/// Compares in time independent of where the inputs differ, so response timing does not leak
/// how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Wrong tries and the lockout, stored with the order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickupAttempts {
    pub wrong_tries: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Why the code was refused. Both leave the order as it was apart from the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PickupCodeError {
    /// PERMISSION_DENIED: ask the customer to check the code.
    #[error("wrong pickup code; {tries_left} tries left before the order is locked")]
    WrongCode { tries_left: u32 },
    /// FAILED_PRECONDITION: try again after `until`.
    #[error("too many wrong pickup codes; locked until {until}")]
    Locked { until: DateTime<Utc> },
    /// INTERNAL: the stored secret is damaged; the code cannot be checked.
    #[error("stored pickup secret is not valid hex")]
    CorruptSecret,
}

impl PickupAttempts {
    /// Checks `attempt` against `secret` at `now`, counting a wrong try. A correct code clears the
    /// count. While locked, even the right code is refused (otherwise the lock stops nothing).
    pub fn verify(
        &mut self,
        secret: &PickupSecret,
        attempt: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PickupCodeError> {
        if let Some(until) = self.locked_until {
            if now < until {
                return Err(PickupCodeError::Locked { until });
            }
            *self = Self::default();
        }
        let salt = hex::decode(&secret.salt_hex).map_err(|_| PickupCodeError::CorruptSecret)?;
        let stored = hex::decode(&secret.hash_hex).map_err(|_| PickupCodeError::CorruptSecret)?;
        if constant_time_eq(&digest(&salt, attempt.trim()), &stored) {
            *self = Self::default();
            return Ok(());
        }
        self.wrong_tries += 1;
        if self.wrong_tries >= MAX_WRONG_TRIES {
            let until = now + LOCKOUT;
            self.locked_until = Some(until);
            return Err(PickupCodeError::Locked { until });
        }
        Err(PickupCodeError::WrongCode {
            tries_left: MAX_WRONG_TRIES - self.wrong_tries,
        })
    }
}

/// An order ready since `ready_since` and not collected expires once the store's hold time has
/// passed (strictly more than `hold` has elapsed).
pub fn is_pickup_expired(ready_since: DateTime<Utc>, hold: Duration, now: DateTime<Utc>) -> bool {
    now - ready_since > hold
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn wrong(code: &PickupCode) -> String {
        let n: u32 = code.reveal().parse().unwrap();
        format!("{:06}", (n + 1) % 1_000_000)
    }

    #[test]
    fn code_is_six_digits_and_only_its_hash_is_stored() {
        let mut rng = StdRng::seed_from_u64(7);
        let (code, secret) = issue(&mut rng);
        assert_eq!(code.reveal().len(), CODE_DIGITS);
        assert!(code.reveal().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(format!("{code:?}"), "PickupCode(******)");
        assert_eq!(secret.hash_hex.len(), 64);
    }

    #[test]
    fn salts_differ_per_order_so_equal_codes_hash_differently() {
        let mut rng = StdRng::seed_from_u64(1);
        let (_, a) = issue(&mut rng);
        let (_, b) = issue(&mut rng);
        assert_ne!(a.salt_hex, b.salt_hex);
        assert_ne!(a.hash_hex, b.hash_hex);
    }

    #[test]
    fn right_code_passes_and_clears_wrong_tries() {
        let (code, secret) = issue(&mut StdRng::seed_from_u64(3));
        let mut attempts = PickupAttempts::default();
        assert_eq!(
            attempts.verify(&secret, &wrong(&code), t0()),
            Err(PickupCodeError::WrongCode { tries_left: 4 })
        );
        assert_eq!(attempts.verify(&secret, code.reveal(), t0()), Ok(()));
        assert_eq!(attempts, PickupAttempts::default());
    }

    #[test]
    fn five_wrong_tries_lock_for_fifteen_minutes_even_for_the_right_code() {
        let (code, secret) = issue(&mut StdRng::seed_from_u64(4));
        let mut attempts = PickupAttempts::default();
        for left in (1..MAX_WRONG_TRIES).rev() {
            assert_eq!(
                attempts.verify(&secret, &wrong(&code), t0()),
                Err(PickupCodeError::WrongCode { tries_left: left })
            );
        }
        let until = t0() + Duration::minutes(15);
        assert_eq!(
            attempts.verify(&secret, &wrong(&code), t0()),
            Err(PickupCodeError::Locked { until })
        );
        let almost = until - Duration::seconds(1);
        assert_eq!(
            attempts.verify(&secret, code.reveal(), almost),
            Err(PickupCodeError::Locked { until })
        );
        assert_eq!(attempts.verify(&secret, code.reveal(), until), Ok(()));
    }

    #[test]
    fn after_a_lock_expires_the_count_starts_again() {
        let (code, secret) = issue(&mut StdRng::seed_from_u64(5));
        let mut attempts = PickupAttempts {
            wrong_tries: MAX_WRONG_TRIES,
            locked_until: Some(t0()),
        };
        assert_eq!(
            attempts.verify(&secret, &wrong(&code), t0()),
            Err(PickupCodeError::WrongCode { tries_left: 4 })
        );
    }

    #[test]
    fn a_damaged_secret_is_reported_not_treated_as_wrong_code() {
        let secret = PickupSecret {
            salt_hex: "zz".into(),
            hash_hex: "00".into(),
        };
        let mut attempts = PickupAttempts::default();
        assert_eq!(
            attempts.verify(&secret, "123456", t0()),
            Err(PickupCodeError::CorruptSecret)
        );
        assert_eq!(attempts.wrong_tries, 0);
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn pickup_expires_only_after_the_hold_time() {
        let hold = Duration::hours(72);
        assert!(!is_pickup_expired(t0(), hold, t0() + hold));
        assert!(is_pickup_expired(
            t0(),
            hold,
            t0() + hold + Duration::seconds(1)
        ));
    }
}
