//! Tiers from rolling 12-month spend.
//!
//! Spend is in minor units of the programme's book currency; converting other currencies is the
//! caller's business, because the rate to use is a finance decision, not a member rule.

use std::fmt;

use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Serialize};

/// Ordered from lowest to highest, so `Ord` answers "is this an upgrade".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tier {
    Base,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "BASE",
            Self::Silver => "SILVER",
            Self::Gold => "GOLD",
            Self::Platinum => "PLATINUM",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierConfigError {
    #[error(
        "tier thresholds must be positive and strictly increasing (silver < gold < platinum), got {silver}, {gold}, {platinum}"
    )]
    NotIncreasing {
        silver: i64,
        gold: i64,
        platinum: i64,
    },
}

/// Minimum rolling spend (minor units) to reach each tier. Deserialising validates, so a config
/// file with gold below silver fails at start instead of handing out odd tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawThresholds")]
pub struct TierThresholds {
    silver: i64,
    gold: i64,
    platinum: i64,
}

#[derive(Deserialize)]
struct RawThresholds {
    silver: i64,
    gold: i64,
    platinum: i64,
}

impl TryFrom<RawThresholds> for TierThresholds {
    type Error = TierConfigError;
    fn try_from(raw: RawThresholds) -> Result<Self, TierConfigError> {
        TierThresholds::new(raw.silver, raw.gold, raw.platinum)
    }
}

impl Default for TierThresholds {
    /// 1 000 / 5 000 / 20 000 currency units.
    fn default() -> Self {
        Self {
            silver: 100_000,
            gold: 500_000,
            platinum: 2_000_000,
        }
    }
}

impl TierThresholds {
    pub fn new(silver: i64, gold: i64, platinum: i64) -> Result<Self, TierConfigError> {
        if silver <= 0 || silver >= gold || gold >= platinum {
            return Err(TierConfigError::NotIncreasing {
                silver,
                gold,
                platinum,
            });
        }
        Ok(Self {
            silver,
            gold,
            platinum,
        })
    }

    /// A threshold is inclusive: spending exactly the Gold threshold makes a member Gold.
    pub fn tier_for(&self, spend: i64) -> Tier {
        if spend >= self.platinum {
            Tier::Platinum
        } else if spend >= self.gold {
            Tier::Gold
        } else if spend >= self.silver {
            Tier::Silver
        } else {
            Tier::Base
        }
    }
}

/// The window is the 12 months before `now`: a purchase counts while `now - 12 months < at <= now`,
/// so a purchase made exactly twelve months ago has just dropped out. Later purchases (clock skew
/// between services) are ignored rather than counted early. Spend can shrink through returns,
/// which the caller passes as negative amounts; the sum never goes below zero.
pub fn rolling_spend(
    purchases: impl IntoIterator<Item = (DateTime<Utc>, i64)>,
    now: DateTime<Utc>,
) -> i64 {
    let Some(start) = now.checked_sub_months(Months::new(12)) else {
        return 0;
    };
    purchases
        .into_iter()
        .filter(|(at, _)| *at > start && *at <= now)
        .fold(0i64, |sum, (_, amount)| sum.saturating_add(amount))
        .max(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TierDirection {
    Up,
    Down,
}

/// What `member.tier.changed` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChange {
    pub from: Tier,
    pub to: Tier,
    pub direction: TierDirection,
}

/// `None` when the tier stays, so the caller emits an event only for a real change.
pub fn tier_change(from: Tier, to: Tier) -> Option<TierChange> {
    let direction = match to.cmp(&from) {
        std::cmp::Ordering::Greater => TierDirection::Up,
        std::cmp::Ordering::Less => TierDirection::Down,
        std::cmp::Ordering::Equal => return None,
    };
    Some(TierChange {
        from,
        to,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn thresholds_are_inclusive() {
        let t = TierThresholds::new(100, 500, 2000).unwrap();
        assert_eq!(t.tier_for(0), Tier::Base);
        assert_eq!(t.tier_for(99), Tier::Base);
        assert_eq!(t.tier_for(100), Tier::Silver);
        assert_eq!(t.tier_for(499), Tier::Silver);
        assert_eq!(t.tier_for(500), Tier::Gold);
        assert_eq!(t.tier_for(1999), Tier::Gold);
        assert_eq!(t.tier_for(2000), Tier::Platinum);
        assert_eq!(t.tier_for(-5), Tier::Base);
    }

    #[test]
    fn thresholds_must_increase() {
        assert!(TierThresholds::new(500, 500, 2000).is_err());
        assert!(TierThresholds::new(0, 500, 2000).is_err());
        assert!(TierThresholds::new(100, 600, 500).is_err());
        let bad = serde_json::from_str::<TierThresholds>(r#"{"silver":10,"gold":5,"platinum":20}"#);
        assert!(bad.is_err());
        let good: TierThresholds =
            serde_json::from_str(r#"{"silver":10,"gold":50,"platinum":200}"#).unwrap();
        assert_eq!(good.tier_for(50), Tier::Gold);
    }

    #[test]
    fn rolling_spend_covers_the_last_twelve_months_only() {
        let now = at(2025, 6, 15);
        let purchases = [
            (at(2024, 6, 15), 1_000), // exactly 12 months ago: out
            (at(2024, 6, 16), 200),   // in
            (at(2025, 6, 15), 30),    // now: in
            (at(2025, 6, 16), 4_000), // future: out
            (at(2025, 1, 1), -50),    // a return: in
        ];
        assert_eq!(rolling_spend(purchases, now), 180);
        assert_eq!(rolling_spend([(at(2025, 1, 1), -50)], now), 0);
    }

    #[test]
    fn changes_are_detected_in_both_directions() {
        assert_eq!(tier_change(Tier::Gold, Tier::Gold), None);
        assert_eq!(
            tier_change(Tier::Base, Tier::Gold),
            Some(TierChange {
                from: Tier::Base,
                to: Tier::Gold,
                direction: TierDirection::Up
            })
        );
        assert_eq!(
            tier_change(Tier::Platinum, Tier::Silver).map(|c| c.direction),
            Some(TierDirection::Down)
        );
    }
}
