//! How many points a purchase earns, and how many a return takes back.
//!
//! All arithmetic is integer: multipliers are percentages and the result is rounded down once,
//! at the end, so stacking a channel and a tier bonus never loses a point to intermediate rounding
//! and never creates a fractional one.

use std::collections::BTreeMap;

use omni_types::{ChannelId, Currency, Money};
use serde::{Deserialize, Serialize};

use super::tier::Tier;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("amount: must not be negative, got {0}")]
    NegativeAmount(i64),
    #[error(
        "returned amount: must be between 0 and the order amount {order}, got {returned} (already returned {already})"
    )]
    ReturnExceedsOrder {
        order: i64,
        already: i64,
        returned: i64,
    },
    #[error("earned points: must not be negative, got {0}")]
    NegativePoints(i64),
    #[error("earning rules: {0}")]
    BadConfig(&'static str),
}

/// Earning rules, loadable from config. Unknown channels and tiers earn at 100 %.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarningRules {
    /// Points per whole currency unit (per 100 minor units unless the currency says otherwise).
    pub points_per_unit: u32,
    /// Minor units in one currency unit. 100 suits most currencies; JPY or KRW set 1.
    pub minor_units_per_unit: u32,
    pub currency_minor_units: BTreeMap<Currency, u32>,
    /// Percent: 200 doubles points on that channel (e.g. a launch campaign on the app).
    pub channel_percent: BTreeMap<ChannelId, u32>,
    pub tier_percent: BTreeMap<Tier, u32>,
}

impl Default for EarningRules {
    fn default() -> Self {
        Self {
            points_per_unit: 1,
            minor_units_per_unit: 100,
            currency_minor_units: BTreeMap::new(),
            channel_percent: BTreeMap::new(),
            tier_percent: BTreeMap::from([
                (Tier::Base, 100),
                (Tier::Silver, 110),
                (Tier::Gold, 125),
                (Tier::Platinum, 150),
            ]),
        }
    }
}

impl EarningRules {
    /// Checks what serde cannot: a zero divisor would make every purchase fail at earn time.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.minor_units_per_unit == 0 || self.currency_minor_units.values().any(|v| *v == 0) {
            return Err(RulesError::BadConfig(
                "minor units per unit must be at least 1",
            ));
        }
        Ok(())
    }

    fn minor_units_per_unit(&self, currency: Currency) -> u32 {
        self.currency_minor_units
            .get(&currency)
            .copied()
            .unwrap_or(self.minor_units_per_unit)
            .max(1)
    }

    /// floor(amount / minor-per-unit × points-per-unit × channel % × tier %). A refund-sized
    /// (negative) amount is an error, not negative earning: returns go through
    /// [`reversal_points`].
    pub fn points_for(
        &self,
        amount: Money,
        channel: &ChannelId,
        tier: Tier,
    ) -> Result<i64, RulesError> {
        if amount.minor_units < 0 {
            return Err(RulesError::NegativeAmount(amount.minor_units));
        }
        let channel_pct = self.channel_percent.get(channel).copied().unwrap_or(100);
        let tier_pct = self.tier_percent.get(&tier).copied().unwrap_or(100);
        let numerator = i128::from(amount.minor_units)
            * i128::from(self.points_per_unit)
            * i128::from(channel_pct)
            * i128::from(tier_pct);
        let denominator = i128::from(self.minor_units_per_unit(amount.currency)) * 100 * 100;
        // i64 amount × three u32 factors fits in i128; the quotient is at most the numerator.
        Ok(i64::try_from(numerator / denominator).unwrap_or(i64::MAX))
    }
}

/// Points to take back when `returned` more of an order's amount comes back, after `already`
/// had been returned earlier.
///
/// Computed cumulatively: floor(earned × (already + returned) / order) − floor(earned × already /
/// order). Each return is rounded down, but the rounding does not pile up: once the whole order
/// has come back, in however many parts, exactly `earned` points have been reversed.
/// An order with amount 0 earned nothing, so nothing is reversed.
pub fn reversal_points(
    earned: i64,
    order_amount: i64,
    already_returned: i64,
    returned: i64,
) -> Result<i64, RulesError> {
    if earned < 0 {
        return Err(RulesError::NegativePoints(earned));
    }
    if order_amount < 0 {
        return Err(RulesError::NegativeAmount(order_amount));
    }
    let total = i128::from(already_returned) + i128::from(returned);
    if already_returned < 0 || returned < 0 || total > i128::from(order_amount) {
        return Err(RulesError::ReturnExceedsOrder {
            order: order_amount,
            already: already_returned,
            returned,
        });
    }
    if order_amount == 0 {
        return Ok(0);
    }
    let share = |part: i128| i128::from(earned) * part / i128::from(order_amount);
    let points = share(total) - share(i128::from(already_returned));
    // Bounded by `earned`, an i64.
    Ok(i64::try_from(points).unwrap_or(earned))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cny(minor: i64) -> Money {
        Money::new(minor, Currency::parse("CNY").unwrap())
    }

    fn channel(id: &str) -> ChannelId {
        ChannelId::parse(id).unwrap()
    }

    #[test]
    fn base_rate_is_one_point_per_currency_unit_rounded_down() {
        let rules = EarningRules::default();
        assert_eq!(
            rules.points_for(cny(12_345), &channel("web"), Tier::Base),
            Ok(123)
        );
        assert_eq!(
            rules.points_for(cny(99), &channel("web"), Tier::Base),
            Ok(0)
        );
        assert_eq!(rules.points_for(cny(0), &channel("web"), Tier::Base), Ok(0));
        assert_eq!(
            rules.points_for(cny(-1), &channel("web"), Tier::Base),
            Err(RulesError::NegativeAmount(-1))
        );
    }

    #[test]
    fn channel_and_tier_multipliers_stack_with_one_final_rounding() {
        let mut rules = EarningRules::default();
        rules.channel_percent.insert(channel("app"), 200);
        // 199.99 × 2 (app) × 1.25 (gold) = 499.975 → 499. Rounding at each step would give 497.
        assert_eq!(
            rules.points_for(cny(19_999), &channel("app"), Tier::Gold),
            Ok(499)
        );
        // 199.99 × 1.5 = 299.985 → 299 on an unconfigured channel.
        assert_eq!(
            rules.points_for(cny(19_999), &channel("pos"), Tier::Platinum),
            Ok(299)
        );
    }

    #[test]
    fn currencies_without_minor_units_are_configurable() {
        let mut rules = EarningRules::default();
        let jpy = Currency::parse("JPY").unwrap();
        rules.currency_minor_units.insert(jpy, 1);
        assert_eq!(
            rules.points_for(Money::new(1_500, jpy), &channel("web"), Tier::Base),
            Ok(1_500)
        );
    }

    #[test]
    fn rules_load_from_json_with_defaults() {
        let rules: EarningRules =
            serde_json::from_str(r#"{"channel_percent":{"tmall":50}}"#).unwrap();
        assert_eq!(rules.points_per_unit, 1);
        assert_eq!(
            rules.points_for(cny(10_000), &channel("tmall"), Tier::Base),
            Ok(50)
        );
        assert!(rules.validate().is_ok());
        let bad: EarningRules = serde_json::from_str(r#"{"minor_units_per_unit":0}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn reversal_is_pro_rata_rounded_down() {
        // 100 points on 300.00; returning 100.00 → 33.33 → 33.
        assert_eq!(reversal_points(100, 30_000, 0, 10_000), Ok(33));
        // The second third: floor(66.67) − 33 = 33; the last third takes the remainder, 34.
        assert_eq!(reversal_points(100, 30_000, 10_000, 10_000), Ok(33));
        assert_eq!(reversal_points(100, 30_000, 20_000, 10_000), Ok(34));
        assert_eq!(reversal_points(100, 30_000, 0, 30_000), Ok(100));
        assert_eq!(reversal_points(0, 30_000, 0, 30_000), Ok(0));
        assert_eq!(reversal_points(100, 0, 0, 0), Ok(0));
    }

    #[test]
    fn reversal_refuses_returning_more_than_the_order() {
        assert!(matches!(
            reversal_points(100, 30_000, 20_000, 10_001),
            Err(RulesError::ReturnExceedsOrder { .. })
        ));
        assert!(reversal_points(100, 30_000, 0, -1).is_err());
        assert!(reversal_points(-1, 30_000, 0, 1).is_err());
    }

    proptest! {
        #[test]
        fn parts_of_a_full_return_reverse_exactly_what_was_earned(
            earned in 0i64..1_000_000,
            parts in proptest::collection::vec(1i64..100_000, 1..8),
        ) {
            let order: i64 = parts.iter().sum();
            let mut already = 0;
            let mut reversed = 0;
            for part in parts {
                let points = reversal_points(earned, order, already, part).unwrap();
                prop_assert!(points >= 0);
                reversed += points;
                already += part;
            }
            prop_assert_eq!(reversed, earned);
        }

        #[test]
        fn earning_is_monotonic_in_the_amount(a in 0i64..10_000_000, b in 0i64..10_000_000) {
            let rules = EarningRules::default();
            let web = channel("web");
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(rules.points_for(cny(lo), &web, Tier::Gold)? <= rules.points_for(cny(hi), &web, Tier::Gold)?);
        }
    }
}
