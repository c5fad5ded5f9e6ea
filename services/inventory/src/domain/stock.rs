//! Stock counters and how each ledger movement changes them.

use std::fmt;

use omni_types::Quantity;
use serde::{Deserialize, Serialize};

/// Counters for one (sku, location). `on_hand` is signed because it is the ledger's sum and a
/// physical truth: a till can sell a unit the system thought was gone, and hiding that would make
/// the ledger and the counter disagree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
}

impl StockLevel {
    pub fn new(on_hand: i64, reserved: i64, safety_stock: i64) -> Self {
        Self {
            on_hand,
            reserved,
            safety_stock,
        }
    }

    /// What a channel may sell. Clamped at zero because channels show "0 left", never "-3 left",
    /// while the raw counters keep the shortage visible to operators.
    pub fn available(&self) -> i64 {
        (self.on_hand - self.reserved - self.safety_stock).max(0)
    }

    /// Units reserved beyond what is physically there; positive means some reservations cannot be
    /// served (see [`crate::domain::unservable_reservations`]).
    pub fn shortage(&self) -> i64 {
        (self.reserved - self.on_hand).max(0)
    }
}

/// The ledger's movement kinds (ARCHITECTURE §2 Inventory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MovementKind {
    Receipt,
    Sale,
    Adjustment,
    Count,
    TransferOut,
    TransferIn,
    Return,
    Commit,
}

impl MovementKind {
    pub const ALL: [MovementKind; 8] = [
        Self::Receipt,
        Self::Sale,
        Self::Adjustment,
        Self::Count,
        Self::TransferOut,
        Self::TransferIn,
        Self::Return,
        Self::Commit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "RECEIPT",
            Self::Sale => "SALE",
            Self::Adjustment => "ADJUSTMENT",
            Self::Count => "COUNT",
            Self::TransferOut => "TRANSFER_OUT",
            Self::TransferIn => "TRANSFER_IN",
            Self::Return => "RETURN",
            Self::Commit => "COMMIT",
        }
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated movement. The shape of the amount depends on the kind, so the kinds that share a
/// shape share a variant and an invalid amount cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// Goods in: RECEIPT, TRANSFER_IN, RETURN.
    Raise(MovementKind, Quantity),
    /// Goods out: SALE, TRANSFER_OUT, COMMIT.
    Lower(MovementKind, Quantity),
    /// A signed correction, never zero (a zero adjustment would be an audit row with no meaning).
    Adjustment(i64),
    /// A physical count: the absolute quantity found on the shelf.
    Count(u32),
}

/// Why a movement's amount was refused; the message is for the caller who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MovementError {
    #[error("quantity must be between 1 and {max}, got {got}")]
    QuantityOutOfRange { got: i64, max: u32 },
    #[error("an adjustment must be non-zero and within ±{max}, got {got}")]
    AdjustmentOutOfRange { got: i64, max: u32 },
    #[error("a count must be between 0 and {max}, got {got}")]
    CountOutOfRange { got: i64, max: u32 },
}

impl Movement {
    /// Builds a movement from the wire shape (kind + signed amount).
    pub fn parse(kind: MovementKind, amount: i64) -> Result<Self, MovementError> {
        let max = Quantity::MAX;
        match kind {
            MovementKind::Receipt | MovementKind::TransferIn | MovementKind::Return => {
                Quantity::parse(amount)
                    .map(|q| Self::Raise(kind, q))
                    .map_err(|_| MovementError::QuantityOutOfRange { got: amount, max })
            }
            MovementKind::Sale | MovementKind::TransferOut | MovementKind::Commit => {
                Quantity::parse(amount)
                    .map(|q| Self::Lower(kind, q))
                    .map_err(|_| MovementError::QuantityOutOfRange { got: amount, max })
            }
            MovementKind::Adjustment => {
                if amount == 0 || amount.unsigned_abs() > u64::from(max) {
                    Err(MovementError::AdjustmentOutOfRange { got: amount, max })
                } else {
                    Ok(Self::Adjustment(amount))
                }
            }
            MovementKind::Count => u32::try_from(amount)
                .ok()
                .filter(|n| *n <= max)
                .map(Self::Count)
                .ok_or(MovementError::CountOutOfRange { got: amount, max }),
        }
    }

    pub fn kind(&self) -> MovementKind {
        match self {
            Self::Raise(kind, _) | Self::Lower(kind, _) => *kind,
            Self::Adjustment(_) => MovementKind::Adjustment,
            Self::Count(_) => MovementKind::Count,
        }
    }
}

/// The change a movement makes to `on_hand`; this is what the ledger row records, so that
/// `on_hand` stays the sum of the ledger even for a COUNT, which is absolute.
pub fn apply(level: &StockLevel, movement: &Movement) -> i64 {
    match movement {
        Movement::Raise(_, q) => q.as_i64(),
        Movement::Lower(_, q) => -q.as_i64(),
        Movement::Adjustment(delta) => *delta,
        Movement::Count(found) => i64::from(*found) - level.on_hand,
    }
}

/// Which store is written first (ARCHITECTURE §3): a crash between the two writes must leave Redis
/// showing less than the truth, never more, so what lowers sellable stock hits Redis first and
/// what raises it hits PostgreSQL first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOrder {
    RedisFirst,
    DatabaseFirst,
    /// The movement changes nothing (a count that found what was expected): only the ledger row.
    DatabaseOnly,
}

/// The write order for a change of `on_hand` by `delta`.
pub fn write_order(delta: i64) -> WriteOrder {
    match delta.signum() {
        -1 => WriteOrder::RedisFirst,
        1 => WriteOrder::DatabaseFirst,
        _ => WriteOrder::DatabaseOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_subtracts_reserved_and_safety_and_never_goes_negative() {
        assert_eq!(StockLevel::new(10, 3, 2).available(), 5);
        assert_eq!(StockLevel::new(10, 8, 2).available(), 0);
        assert_eq!(StockLevel::new(3, 8, 2).available(), 0);
        assert_eq!(StockLevel::new(3, 8, 2).shortage(), 5);
        assert_eq!(StockLevel::new(-2, 0, 0).available(), 0);
    }

    #[test]
    fn each_kind_moves_on_hand_in_its_direction() {
        let level = StockLevel::new(10, 4, 1);
        let cases = [
            (MovementKind::Receipt, 5, 5),
            (MovementKind::TransferIn, 5, 5),
            (MovementKind::Return, 5, 5),
            (MovementKind::Sale, 5, -5),
            (MovementKind::TransferOut, 5, -5),
            (MovementKind::Commit, 5, -5),
            (MovementKind::Adjustment, -3, -3),
            (MovementKind::Adjustment, 7, 7),
            (MovementKind::Count, 6, -4),
            (MovementKind::Count, 12, 2),
            (MovementKind::Count, 10, 0),
            (MovementKind::Count, 0, -10),
        ];
        for (kind, amount, delta) in cases {
            let movement = Movement::parse(kind, amount).unwrap();
            assert_eq!(movement.kind(), kind);
            assert_eq!(apply(&level, &movement), delta, "{kind} {amount}");
        }
    }

    #[test]
    fn amounts_are_checked_per_kind() {
        assert!(Movement::parse(MovementKind::Sale, 0).is_err());
        assert!(Movement::parse(MovementKind::Receipt, -1).is_err());
        assert!(Movement::parse(MovementKind::Adjustment, 0).is_err());
        assert!(Movement::parse(MovementKind::Adjustment, 100_001).is_err());
        assert!(Movement::parse(MovementKind::Count, -1).is_err());
        assert!(Movement::parse(MovementKind::Count, 0).is_ok());
    }

    #[test]
    fn lowering_writes_redis_first_and_raising_writes_the_database_first() {
        assert_eq!(write_order(-1), WriteOrder::RedisFirst);
        assert_eq!(write_order(4), WriteOrder::DatabaseFirst);
        assert_eq!(write_order(0), WriteOrder::DatabaseOnly);
    }
}
