//! How a person is recognised on a channel, normalised so one person is one member.
//!
//! Two spellings of the same phone number or e-mail must resolve to the same member, so every
//! identity is stored in one canonical form: phones in E.164 (`+8613800138000`), e-mails lower-cased,
//! other ids trimmed.
//!
//! A phone number without a country code is refused rather than completed with a default country:
//! a guessed country silently turns a foreign number into a different person's number, and two
//! people would then share one member. Channels know their market and can add the code themselves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which kind of identifier a channel sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdentityType {
    Phone,
    Email,
    PosCard,
    Marketplace,
    App,
    MiniProgram,
}

impl IdentityType {
    pub const ALL: [IdentityType; 6] = [
        Self::Phone,
        Self::Email,
        Self::PosCard,
        Self::Marketplace,
        Self::App,
        Self::MiniProgram,
    ];

    /// The name used in storage and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "PHONE",
            Self::Email => "EMAIL",
            Self::PosCard => "POS_CARD",
            Self::Marketplace => "MARKETPLACE",
            Self::App => "APP",
            Self::MiniProgram => "MINI_PROGRAM",
        }
    }

    /// The field an error names, so a caller knows which input to fix.
    pub fn field(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Email => "email",
            Self::PosCard => "pos_card",
            Self::Marketplace => "marketplace_id",
            Self::App => "app_id",
            Self::MiniProgram => "mini_program_id",
        }
    }
}

impl fmt::Display for IdentityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityType {
    type Err = IdentityError;

    fn from_str(value: &str) -> Result<Self, IdentityError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| IdentityError::UnknownType {
                value: value.to_owned(),
            })
    }
}

/// Why an identity was refused. Every variant names the field so the gRPC layer can report it as
/// a field violation without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("identity type: unknown {value:?}")]
    UnknownType { value: String },
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    #[error("{field}: must be at most {max} characters, got {len}")]
    TooLong {
        field: &'static str,
        max: usize,
        len: usize,
    },
    #[error("{field}: may contain only {allowed}, found {found:?}")]
    BadCharacter {
        field: &'static str,
        allowed: &'static str,
        found: char,
    },
    #[error("{field}: must start with + and the country code, e.g. +86 138 0013 8000")]
    MissingCountryCode { field: &'static str },
    #[error("{field}: must have {min} to {max} digits after the +, got {digits}")]
    DigitCount {
        field: &'static str,
        min: usize,
        max: usize,
        digits: usize,
    },
    #[error("{field}: {problem}")]
    Malformed {
        field: &'static str,
        problem: &'static str,
    },
}

impl IdentityError {
    /// The input field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownType { .. } => "identity_type",
            Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::BadCharacter { field, .. }
            | Self::MissingCountryCode { field }
            | Self::DigitCount { field, .. }
            | Self::Malformed { field, .. } => field,
        }
    }
}

/// A normalised identity. Built only by [`Identity::parse`]; deserialising re-checks, so a row
/// edited by hand cannot smuggle in a second spelling of a number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawIdentity")]
pub struct Identity {
    kind: IdentityType,
    value: String,
}

#[derive(Deserialize)]
struct RawIdentity {
    kind: IdentityType,
    value: String,
}

impl TryFrom<RawIdentity> for Identity {
    type Error = IdentityError;
    fn try_from(raw: RawIdentity) -> Result<Self, IdentityError> {
        Identity::parse(raw.kind, &raw.value)
    }
}

/// E.164 allows at most 15 digits; fewer than 8 is no real subscriber number with its country code.
const PHONE_MIN_DIGITS: usize = 8;
const PHONE_MAX_DIGITS: usize = 15;
/// RFC 5321 path limit.
const EMAIL_MAX_LEN: usize = 254;
/// RFC 5321 local-part limit.
const EMAIL_LOCAL_MAX_LEN: usize = 64;
/// Card numbers, marketplace buyer ids and app ids we have met are far shorter; the cap keeps
/// keys and logs bounded.
pub const OTHER_ID_MAX_LEN: usize = 128;
const OTHER_ID_ALLOWED: &str = "letters, digits, '.', '_', ':', '@' and '-'";

impl Identity {
    pub fn parse(kind: IdentityType, value: &str) -> Result<Self, IdentityError> {
        let value = match kind {
            IdentityType::Phone => normalise_phone(kind.field(), value)?,
            IdentityType::Email => normalise_email(kind.field(), value)?,
            IdentityType::PosCard
            | IdentityType::Marketplace
            | IdentityType::App
            | IdentityType::MiniProgram => normalise_other(kind.field(), value)?,
        };
        Ok(Self { kind, value })
    }

    pub fn kind(&self) -> IdentityType {
        self.kind
    }

    /// The canonical form: the value stored and looked up.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

fn normalise_phone(field: &'static str, raw: &str) -> Result<String, IdentityError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(IdentityError::Empty { field });
    }
    // Separators people type between groups of digits carry no meaning.
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return Err(IdentityError::MissingCountryCode { field });
    };
    if let Some(found) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(IdentityError::BadCharacter {
            field,
            allowed: "a leading +, digits, spaces, '-', '.', '(' and ')'",
            found,
        });
    }
    if !(PHONE_MIN_DIGITS..=PHONE_MAX_DIGITS).contains(&digits.len()) {
        return Err(IdentityError::DigitCount {
            field,
            min: PHONE_MIN_DIGITS,
            max: PHONE_MAX_DIGITS,
            digits: digits.len(),
        });
    }
    if digits.starts_with('0') {
        // No country code starts with 0: "+0…" is a national number with a stray plus.
        return Err(IdentityError::MissingCountryCode { field });
    }
    Ok(format!("+{digits}"))
}

fn normalise_email(field: &'static str, raw: &str) -> Result<String, IdentityError> {
    let value = raw.trim().to_lowercase();
    if value.is_empty() {
        return Err(IdentityError::Empty { field });
    }
    let len = value.chars().count();
    if len > EMAIL_MAX_LEN {
        return Err(IdentityError::TooLong {
            field,
            max: EMAIL_MAX_LEN,
            len,
        });
    }
    if let Some(found) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(IdentityError::BadCharacter {
            field,
            allowed: "no spaces or control characters",
            found,
        });
    }
    let (local, domain) = match value.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => (local, domain),
        _ => {
            return Err(IdentityError::Malformed {
                field,
                problem: "must contain exactly one @",
            });
        }
    };
    if local.is_empty() {
        return Err(IdentityError::Malformed {
            field,
            problem: "needs a name before the @",
        });
    }
    if local.chars().count() > EMAIL_LOCAL_MAX_LEN {
        return Err(IdentityError::Malformed {
            field,
            problem: "the part before the @ must be at most 64 characters",
        });
    }
    if !domain.contains('.') {
        return Err(IdentityError::Malformed {
            field,
            problem: "the domain after the @ must contain a dot",
        });
    }
    if domain.split('.').any(str::is_empty) {
        return Err(IdentityError::Malformed {
            field,
            problem: "the domain after the @ has an empty label",
        });
    }
    Ok(value)
}

fn normalise_other(field: &'static str, raw: &str) -> Result<String, IdentityError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(IdentityError::Empty { field });
    }
    let len = value.chars().count();
    if len > OTHER_ID_MAX_LEN {
        return Err(IdentityError::TooLong {
            field,
            max: OTHER_ID_MAX_LEN,
            len,
        });
    }
    if let Some(found) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')))
    {
        return Err(IdentityError::BadCharacter {
            field,
            allowed: OTHER_ID_ALLOWED,
            found,
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn phone(value: &str) -> Result<String, IdentityError> {
        Identity::parse(IdentityType::Phone, value).map(|id| id.value().to_owned())
    }

    fn email(value: &str) -> Result<String, IdentityError> {
        Identity::parse(IdentityType::Email, value).map(|id| id.value().to_owned())
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(phone("+86 138 0013 8000").unwrap(), "+8613800138000");
        assert_eq!(phone("+44 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(phone("(+1) 415-555-2671").unwrap(), "+14155552671");
        assert_eq!(phone("  +49.30.1234567 ").unwrap(), "+49301234567");
        assert_eq!(
            phone("+86 138 0013 8000").unwrap(),
            phone("+8613800138000").unwrap()
        );
    }

    #[test]
    fn phones_without_country_code_are_refused_naming_the_field() {
        let err = phone("138 0013 8000").unwrap_err();
        assert_eq!(err, IdentityError::MissingCountryCode { field: "phone" });
        assert!(err.to_string().starts_with("phone: "));
        assert_eq!(
            phone("+0 20 7946 0958").unwrap_err(),
            IdentityError::MissingCountryCode { field: "phone" }
        );
    }

    #[test]
    fn phone_digit_count_is_8_to_15() {
        assert!(phone("+1234567").is_err());
        assert!(phone("+12345678").is_ok());
        assert!(phone("+123456789012345").is_ok());
        assert_eq!(
            phone("+1234567890123456").unwrap_err(),
            IdentityError::DigitCount {
                field: "phone",
                min: 8,
                max: 15,
                digits: 16
            }
        );
        assert_eq!(
            phone("  ").unwrap_err(),
            IdentityError::Empty { field: "phone" }
        );
        assert!(matches!(
            phone("+86 138 ext 5"),
            Err(IdentityError::BadCharacter { found: 'e', .. })
        ));
        assert!(phone("+86+1380013800").is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            email(" Ana.Silva@Example.COM ").unwrap(),
            "ana.silva@example.com"
        );
        assert!(matches!(
            email("ana@@example.com"),
            Err(IdentityError::Malformed { field: "email", .. })
        ));
        assert!(matches!(
            email("ana@example.com@x.org"),
            Err(IdentityError::Malformed { .. })
        ));
        assert!(matches!(
            email("ana@localhost"),
            Err(IdentityError::Malformed { .. })
        ));
        assert!(matches!(
            email("ana@example."),
            Err(IdentityError::Malformed { .. })
        ));
        assert!(matches!(
            email("@example.com"),
            Err(IdentityError::Malformed { .. })
        ));
        assert!(matches!(
            email("a na@example.com"),
            Err(IdentityError::BadCharacter { .. })
        ));
        assert_eq!(
            email("").unwrap_err(),
            IdentityError::Empty { field: "email" }
        );
    }

    #[test]
    fn emails_are_at_most_254_characters() {
        let domain = format!("{}.com", "d".repeat(250 - 2 - 4 + 1));
        let ok = format!("a@{domain}");
        assert_eq!(ok.len(), 251);
        assert!(email(&ok).is_ok());
        let long = format!("abcd@{domain}");
        assert_eq!(long.len(), 254);
        assert!(email(&long).is_ok());
        let too_long = format!("abcde@{domain}");
        assert!(matches!(
            email(&too_long),
            Err(IdentityError::TooLong {
                max: 254,
                len: 255,
                ..
            })
        ));
    }

    #[test]
    fn other_ids_are_trimmed_with_an_alphabet_and_a_limit() {
        let card = Identity::parse(IdentityType::PosCard, "  CARD-0042 ").unwrap();
        assert_eq!(card.value(), "CARD-0042");
        assert!(Identity::parse(IdentityType::Marketplace, "tmall:buyer_9.x@shop").is_ok());
        assert!(matches!(
            Identity::parse(IdentityType::App, "a b"),
            Err(IdentityError::BadCharacter {
                field: "app_id",
                found: ' ',
                ..
            })
        ));
        assert!(Identity::parse(IdentityType::MiniProgram, &"x".repeat(128)).is_ok());
        assert!(matches!(
            Identity::parse(IdentityType::MiniProgram, &"x".repeat(129)),
            Err(IdentityError::TooLong {
                field: "mini_program_id",
                ..
            })
        ));
    }

    #[test]
    fn identity_types_round_trip_through_their_names() {
        for kind in IdentityType::ALL {
            assert_eq!(kind.as_str().parse::<IdentityType>().unwrap(), kind);
        }
        assert!("FAX".parse::<IdentityType>().is_err());
    }

    #[test]
    fn deserialising_re_checks_the_value() {
        let id = Identity::parse(IdentityType::Phone, "+86 138 0013 8000").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"kind":"PHONE","value":"+8613800138000"}"#);
        assert_eq!(serde_json::from_str::<Identity>(&json).unwrap(), id);
        assert!(serde_json::from_str::<Identity>(r#"{"kind":"PHONE","value":"138"}"#).is_err());
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent(digits in "[1-9][0-9]{7,14}", sep in "[ -]{0,2}") {
            let spaced = format!("+{}{sep}{}", &digits[..2], &digits[2..]);
            let once = phone(&spaced).unwrap();
            prop_assert_eq!(&once, &format!("+{digits}"));
            prop_assert_eq!(phone(&once).unwrap(), once);
        }

        #[test]
        fn email_normalising_is_idempotent(local in "[A-Za-z0-9._]{1,20}", domain in "[A-Za-z]{1,10}\\.[A-Za-z]{2,4}") {
            let once = email(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(email(&once).unwrap(), once.clone());
            prop_assert_eq!(once.to_lowercase(), once);
        }
    }
}
