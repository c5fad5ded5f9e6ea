//! The channel report: orders, GMV, AOV and repurchase per channel, and the cross-channel rate.
//!
//! Money is never summed across currencies: GMV and AOV are per currency. AOV is rounded down to
//! the minor unit. Rates are exact fractions; the transport layer turns them into percentages.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, Currency};
use serde::{Deserialize, Serialize};

use super::member::MemberId;
use super::purchase::Purchase;

/// `[from, to)`: an order at exactly `to` belongs to the next period, so consecutive periods
/// never count an order twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("period: from ({from}) must be before to ({to})")]
    EmptyPeriod {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

impl Period {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, ReportError> {
        if from >= to {
            return Err(ReportError::EmptyPeriod { from, to });
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.to
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }
}

/// An exact rate; `denominator` 0 means "no one to measure" (shown as n/a, not 0 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    pub fn as_f64(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelFigures {
    /// Guest orders included.
    pub orders: u64,
    pub gmv: BTreeMap<Currency, i64>,
    pub aov: BTreeMap<Currency, i64>,
    /// Members with ≥ 2 orders in this channel / members with ≥ 1 (guests excluded).
    pub repurchase: Ratio,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReport {
    pub period: Period,
    pub channels: BTreeMap<ChannelId, ChannelFigures>,
    pub orders: u64,
    pub gmv: BTreeMap<Currency, i64>,
    /// Members who bought in ≥ 2 channels / members who bought.
    pub cross_channel: Ratio,
    /// Members with ≥ 2 orders in any channels / members who bought.
    pub repurchase: Ratio,
}

#[derive(Default)]
struct Tally {
    orders: u64,
    gmv: BTreeMap<Currency, i64>,
    orders_by_currency: BTreeMap<Currency, i64>,
    member_orders: BTreeMap<MemberId, u64>,
}

impl Tally {
    fn add(&mut self, purchase: &Purchase) {
        self.orders += 1;
        let gmv = self.gmv.entry(purchase.amount.currency).or_default();
        *gmv = gmv.saturating_add(purchase.amount.minor_units);
        *self
            .orders_by_currency
            .entry(purchase.amount.currency)
            .or_default() += 1;
        if let Some(member) = purchase.member {
            *self.member_orders.entry(member).or_default() += 1;
        }
    }

    fn repurchase(&self) -> Ratio {
        Ratio {
            numerator: self.member_orders.values().filter(|n| **n >= 2).count() as u64,
            denominator: self.member_orders.len() as u64,
        }
    }

    fn aov(&self) -> BTreeMap<Currency, i64> {
        self.gmv
            .iter()
            .map(|(currency, gmv)| {
                let orders = self
                    .orders_by_currency
                    .get(currency)
                    .copied()
                    .unwrap_or(1)
                    .max(1);
                (*currency, gmv.div_euclid(orders))
            })
            .collect()
    }
}

pub fn channel_report(purchases: &[Purchase], period: Period) -> ChannelReport {
    let mut total = Tally::default();
    let mut per_channel: BTreeMap<ChannelId, Tally> = BTreeMap::new();
    let mut member_channels: BTreeMap<MemberId, BTreeSet<&ChannelId>> = BTreeMap::new();
    for purchase in purchases.iter().filter(|p| period.contains(p.at)) {
        total.add(purchase);
        per_channel
            .entry(purchase.channel.clone())
            .or_default()
            .add(purchase);
        if let Some(member) = purchase.member {
            member_channels
                .entry(member)
                .or_default()
                .insert(&purchase.channel);
        }
    }
    let channels = per_channel
        .into_iter()
        .map(|(channel, tally)| {
            let figures = ChannelFigures {
                orders: tally.orders,
                aov: tally.aov(),
                repurchase: tally.repurchase(),
                gmv: tally.gmv,
            };
            (channel, figures)
        })
        .collect();
    ChannelReport {
        period,
        channels,
        orders: total.orders,
        cross_channel: Ratio {
            numerator: member_channels.values().filter(|c| c.len() >= 2).count() as u64,
            denominator: member_channels.len() as u64,
        },
        repurchase: total.repurchase(),
        gmv: total.gmv,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use omni_types::Money;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, hour, 0, 0).unwrap()
    }

    fn buy(member: Option<MemberId>, channel: &str, amount: Money, at: DateTime<Utc>) -> Purchase {
        Purchase {
            member,
            channel: ChannelId::parse(channel).unwrap(),
            amount,
            at,
        }
    }

    #[test]
    fn periods_are_half_open() {
        let period = Period::new(at(0), at(10)).unwrap();
        assert!(period.contains(at(0)));
        assert!(!period.contains(at(10)));
        assert!(Period::new(at(10), at(10)).is_err());
    }

    #[test]
    fn money_stays_per_currency_and_aov_rounds_down() {
        let eur = Currency::parse("EUR").unwrap();
        let cny = Currency::parse("CNY").unwrap();
        let m = MemberId::new();
        let purchases = [
            buy(Some(m), "web", Money::new(1_000, eur), at(1)),
            buy(Some(m), "web", Money::new(1_001, eur), at(2)),
            buy(None, "web", Money::new(5_000, cny), at(3)),
            buy(None, "web", Money::new(9_999, cny), at(10)), // outside the period
        ];
        let report = channel_report(&purchases, Period::new(at(0), at(10)).unwrap());
        let web = &report.channels[&ChannelId::parse("web").unwrap()];
        assert_eq!(web.orders, 3);
        assert_eq!(web.gmv, BTreeMap::from([(eur, 2_001), (cny, 5_000)]));
        assert_eq!(web.aov, BTreeMap::from([(eur, 1_000), (cny, 5_000)]));
        // The guest order is not a member: one member, who bought twice.
        assert_eq!(
            web.repurchase,
            Ratio {
                numerator: 1,
                denominator: 1
            }
        );
        assert_eq!(
            report.cross_channel,
            Ratio {
                numerator: 0,
                denominator: 1
            }
        );
    }

    #[test]
    fn an_empty_period_has_no_rates() {
        let report = channel_report(&[], Period::new(at(0), at(0) + TimeDelta::days(1)).unwrap());
        assert_eq!(report.orders, 0);
        assert!(report.channels.is_empty());
        assert_eq!(report.cross_channel.as_f64(), None);
    }
}
