//! Capacity is counted per location per *local* day: a store in Shanghai and a warehouse in Berlin
//! start a new day of fulfilment capacity at their own midnight.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown IANA time zone {0:?}")]
pub struct TimeZoneError(pub String);

/// Parses an IANA zone name such as `Asia/Shanghai`.
pub fn parse_time_zone(name: &str) -> Result<Tz, TimeZoneError> {
    name.parse::<Tz>()
        .map_err(|_| TimeZoneError(name.to_owned()))
}

/// A location's local calendar day, the unit capacity is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapacityDay(pub NaiveDate);

impl fmt::Display for CapacityDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // NaiveDate's own Display is "YYYY-MM-DD" without parsing a format string, which
        // showed in profiles: every availability answer formats a day per location.
        fmt::Display::fmt(&self.0, f)
    }
}

/// The local date at `zone` for the instant `now`.
pub fn local_date(zone: Tz, now: DateTime<Utc>) -> CapacityDay {
    CapacityDay(now.with_timezone(&zone).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_instant_is_a_different_day_in_different_zones() {
        // 2026-03-01 20:30 UTC is already 2 March in Shanghai, still 1 March in New York.
        let now = DateTime::parse_from_rfc3339("2026-03-01T20:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let shanghai = parse_time_zone("Asia/Shanghai").unwrap();
        let new_york = parse_time_zone("America/New_York").unwrap();
        assert_eq!(local_date(shanghai, now).to_string(), "2026-03-02");
        assert_eq!(local_date(new_york, now).to_string(), "2026-03-01");
        assert_eq!(local_date(Tz::UTC, now).to_string(), "2026-03-01");
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert_eq!(
            parse_time_zone("Mars/Olympus"),
            Err(TimeZoneError("Mars/Olympus".into()))
        );
    }
}
