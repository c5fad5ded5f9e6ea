use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValueError;

/// A positive count of units on one line. The upper bound keeps arithmetic on counters far from
/// overflow and catches fat-fingered quantities before they reserve a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 100_000;

    pub fn parse(value: i64) -> Result<Self, ValueError> {
        if value < 1 || value > i64::from(Self::MAX) {
            return Err(ValueError::OutOfRange {
                min: 1,
                max: i64::from(Self::MAX),
                value,
            });
        }
        Ok(Self(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ValueError;
    fn try_from(value: i64) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl From<Quantity> for i64 {
    fn from(value: Quantity) -> i64 {
        value.as_i64()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-3).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(100_000).unwrap().get(), 100_000);
        assert!(Quantity::parse(100_001).is_err());
    }
}
