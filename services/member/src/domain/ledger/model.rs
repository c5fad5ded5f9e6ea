//! The records the ledger keeps and the entries it appends.

use chrono::{DateTime, Utc};
use omni_types::OrderId;
use serde::{Deserialize, Serialize};

use crate::domain::member::MemberId;

/// Points are whole numbers; signed so an entry can say which way the balance moved.
pub type Points = i64;

/// One operation may move at most this many points: far above any real basket, low enough that
/// millions of lots cannot overflow an i64 balance.
pub const MAX_POINTS_PER_OPERATION: Points = 1_000_000_000_000;

/// Numbered per member ledger; a merge gives moved lots new numbers in the target ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LotId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerConfig {
    /// Earned points expire this many calendar months after they were earned. A lot earned on the
    /// 31st expires on the last day of a shorter month (chrono's month arithmetic clamps).
    pub lot_lifetime_months: u32,
    /// How long a pending redemption reserves points before the sweep gives them back.
    pub redemption_hold_secs: u32,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            lot_lifetime_months: 24,
            redemption_hold_secs: 15 * 60,
        }
    }
}

/// Points earned together, spent and expired together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub id: LotId,
    /// The order that earned it: makes earning idempotent per order and lets a return take back
    /// that order's own points first.
    pub source: Option<OrderId>,
    pub earned: Points,
    pub remaining: Points,
    pub earned_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Lot {
    /// A lot is dead from the instant its expiry is reached.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedemptionStatus {
    /// Points are reserved (already taken from their lots) until the order is durable.
    Pending,
    Confirmed,
    /// Every point went back (order never existed, or was cancelled in full).
    Released,
}

/// Points a redemption took from one lot and still holds. Refunds give them back to that lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotMovement {
    pub lot: LotId,
    /// Signed in entries (negative = taken from the lot); positive in a redemption's draws.
    pub points: Points,
}

/// Points spent on one order; idempotent on the order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub order: OrderId,
    pub points: Points,
    pub status: RedemptionStatus,
    pub created_at: DateTime<Utc>,
    /// Only meaningful while pending.
    pub expires_at: DateTime<Utc>,
    /// Oldest-expiring lot first; shrinks as points are refunded.
    pub draws: Vec<LotMovement>,
    pub refunded: Points,
}

impl Redemption {
    /// Points still spent: what a refund can give back.
    pub fn outstanding(&self) -> Points {
        self.points - self.refunded
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryKind {
    Earn,
    /// Points reserved for an order (pending); they leave the balance now.
    Redeem,
    /// The order is durable; moves no points, kept for the audit trail.
    RedeemConfirmed,
    /// A pending redemption was given back (its order never became durable, or was cancelled).
    RedeemReleased,
    /// A confirmed redemption was given back, in full or in part (cancelled lines).
    RedeemRefunded,
    /// Points taken back because goods were returned.
    Reverse,
    Expire,
    MergeIn,
    MergeOut,
}

/// One append-only ledger row. `points` is the signed change to the balance, so the balance is
/// always the sum of a member's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: EntryKind,
    pub points: Points,
    pub at: DateTime<Utc>,
    pub order: Option<OrderId>,
    /// The other member of a merge.
    pub counterpart: Option<MemberId>,
    /// Which lots moved and by how much (signed), so a statement can explain every point.
    pub lots: Vec<LotMovement>,
    /// A reversal asked for more than the balance held: the part that could not be taken back.
    pub shortfall: Points,
}

impl LedgerEntry {
    pub(super) fn new(kind: EntryKind, points: Points, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            points,
            at,
            order: None,
            counterpart: None,
            lots: Vec::new(),
            shortfall: 0,
        }
    }

    pub(super) fn for_order(mut self, order: OrderId) -> Self {
        self.order = Some(order);
        self
    }

    pub(super) fn with_lots(mut self, lots: Vec<LotMovement>) -> Self {
        self.lots = lots;
        self
    }
}

/// Named by what the caller should do: top up the request, fix its input, or stop retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("points: must be positive, got {points}")]
    NonPositivePoints { points: Points },
    #[error("points: must be at most {max}, got {points}")]
    TooManyPoints { points: Points, max: Points },
    #[error("insufficient points: requested {requested}, available {available}")]
    InsufficientPoints {
        requested: Points,
        available: Points,
    },
    #[error("order {order} already earned {existing} points, not {requested}")]
    EarnConflict {
        order: OrderId,
        existing: Points,
        requested: Points,
    },
    #[error("order {order} already redeemed {existing} points, not {requested}")]
    RedemptionConflict {
        order: OrderId,
        existing: Points,
        requested: Points,
    },
    #[error("no redemption for order {order}")]
    RedemptionNotFound { order: OrderId },
    #[error("the redemption for order {order} was already released; redeem again")]
    RedemptionReleased { order: OrderId },
    #[error("order {order}: cannot refund {requested} points, only {refundable} are still spent")]
    RefundExceedsRedemption {
        order: OrderId,
        requested: Points,
        refundable: Points,
    },
    #[error("both ledgers hold a redemption for order {order}; settle one before merging")]
    MergeConflict { order: OrderId },
    #[error("the balance would exceed the largest storable number of points")]
    BalanceLimit,
    #[error("expiry date out of range")]
    DateOutOfRange,
    #[error("stored ledger is inconsistent: {0}")]
    Corrupt(String),
}
