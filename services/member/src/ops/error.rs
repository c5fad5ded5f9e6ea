use omni_platform::grpc::FieldViolation;
use omni_types::OrderId;

use crate::domain::{IdentityError, LedgerError, MemberError, MemberId, Points, RulesError};
use crate::store::StoreError;

/// Named by what the caller should do. One `From` at the gRPC boundary maps these to codes;
/// the consumers map them to retry or park.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// Fix the request; nothing was written.
    #[error("invalid request: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldViolation>),
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// Only a merge may join two people.
    #[error("identity {identity} belongs to member {owner}; link or merge instead")]
    IdentityTaken { identity: String, owner: MemberId },
    #[error("member {member} is {state}; use the member it was merged into")]
    NotActive {
        member: MemberId,
        state: &'static str,
    },
    #[error("a member cannot be merged into itself")]
    SameMember,
    #[error("insufficient points: requested {requested}, balance {available}")]
    InsufficientPoints {
        requested: Points,
        available: Points,
    },
    #[error("the redemption for order {order} expired and its points went back; redeem again")]
    RedemptionExpired { order: OrderId },
    /// The state does not allow it; `reason` is machine-readable.
    #[error("{message}")]
    Precondition {
        reason: &'static str,
        message: String,
    },
    /// An idempotency key, order or receipt was reused with another payload.
    #[error("{0}")]
    Conflict(String),
    /// A return arrived before the completion it refers to: try again later.
    #[error("order {order} has no recorded completion yet")]
    NotYetCompleted { order: OrderId },
    /// Lost a race with a concurrent request: retry the same request.
    #[error("concurrent change: {0}")]
    Busy(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl OpError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            resource,
            id: id.to_string(),
        }
    }
}

impl From<StoreError> for OpError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(detail) => Self::Busy(detail),
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::Corrupt(detail) => Self::Internal(detail),
        }
    }
}

impl From<LedgerError> for OpError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::NonPositivePoints { .. } | LedgerError::TooManyPoints { .. } => {
                let text = error.to_string();
                let description = text.strip_prefix("points: ").unwrap_or(&text).to_owned();
                Self::invalid("points", description)
            }
            LedgerError::InsufficientPoints {
                requested,
                available,
            } => Self::InsufficientPoints {
                requested,
                available,
            },
            LedgerError::EarnConflict { .. } | LedgerError::RedemptionConflict { .. } => {
                Self::Conflict(error.to_string())
            }
            LedgerError::RedemptionNotFound { order } => Self::not_found("redemption", order),
            LedgerError::RedemptionReleased { order } => Self::RedemptionExpired { order },
            LedgerError::RefundExceedsRedemption { .. } => Self::Precondition {
                reason: "REFUND_EXCEEDS_REDEMPTION",
                message: error.to_string(),
            },
            LedgerError::MergeConflict { .. } => Self::Precondition {
                reason: "MERGE_CONFLICT",
                message: error.to_string(),
            },
            LedgerError::BalanceLimit => Self::Precondition {
                reason: "BALANCE_LIMIT",
                message: error.to_string(),
            },
            LedgerError::DateOutOfRange | LedgerError::Corrupt(_) => {
                Self::Internal(error.to_string())
            }
        }
    }
}

impl From<MemberError> for OpError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::BadMemberId { .. } => Self::invalid("member_id", "must be a UUID"),
            MemberError::NameTooLong { .. } | MemberError::NameHasControlCharacters => {
                let text = error.to_string();
                let description = text.strip_prefix("name: ").unwrap_or(&text).to_owned();
                Self::invalid("name", description)
            }
            MemberError::NotActive { member, state } => Self::NotActive { member, state },
            MemberError::MergeIntoSelf => Self::SameMember,
            MemberError::IdentityOwnedByOther { identity, owner } => {
                Self::IdentityTaken { identity, owner }
            }
            MemberError::Ledger(e) => e.into(),
        }
    }
}

impl From<RulesError> for OpError {
    fn from(error: RulesError) -> Self {
        match error {
            RulesError::ReturnExceedsOrder { .. } => Self::Precondition {
                reason: "AMOUNT_EXCEEDS_PURCHASE",
                message: error.to_string(),
            },
            RulesError::NegativeAmount(_) | RulesError::NegativePoints(_) => {
                Self::invalid("amount.minor_units", error.to_string())
            }
            RulesError::BadConfig(_) => Self::Internal(error.to_string()),
        }
    }
}

/// An identity error names its input field; `path` is where that input sits in the request
/// (`identities[1]`), so the violation names the exact field to fix.
pub fn identity_violation(path: &str, error: &IdentityError) -> FieldViolation {
    let text = error.to_string();
    let description = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, rest)| rest)
        .to_owned();
    let field = match error {
        IdentityError::UnknownType { .. } => format!("{path}.type"),
        _ => format!("{path}.value"),
    };
    FieldViolation::new(field, format!("{} {description}", error.field()))
}
