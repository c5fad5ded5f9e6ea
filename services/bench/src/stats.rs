//! What one measured run produced: latencies, outcomes, errors by gRPC code, and the figures a
//! report prints. Pure: no clock, no I/O; the driver hands it durations it measured.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Slowest latency kept exactly; slower calls are recorded as this (a minute is already a failure
/// for every scenario here, and a bound keeps the histogram a few tens of KiB).
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Three significant figures: p99.9 of a 2 ms call is told apart from 2.01 ms.
const SIGNIFICANT_FIGURES: u8 = 3;

/// How one call ended, as the scenario judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The system did the work (reserved, placed, answered).
    Accepted,
    /// The system correctly said no (sold out): a business answer, not an error.
    Refused,
    /// Anything else, named by its gRPC code (or `io`, `timeout` for baselines).
    Failed(String),
}

/// Latencies and outcomes of one worker, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct Recorder {
    latency: Histogram<u64>,
    accepted: u64,
    refused: u64,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, SIGNIFICANT_FIGURES)
                .expect("constant histogram bounds are valid"),
            accepted: 0,
            refused: 0,
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency
            .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Failed(code) => *self.errors.entry(code).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail; saturate rather than
        // lose a whole worker's figures if it ever did.
        if self.latency.add(&other.latency).is_err() {
            for v in other.latency.iter_recorded() {
                self.latency
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.accepted += other.accepted;
        self.refused += other.refused;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }

    pub fn requests(&self) -> u64 {
        self.latency.len()
    }

    /// The figures of a run that took `elapsed` (measured phase only, warm-up excluded).
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let q = |quantile: f64| {
            if self.latency.is_empty() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.latency.value_at_quantile(quantile))
            }
        };
        let secs = elapsed.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Summary {
            requests: self.requests(),
            accepted: self.accepted,
            refused: self.refused,
            errors: self.errors.clone(),
            elapsed,
            throughput: rate(self.requests()),
            accepted_per_sec: rate(self.accepted),
            refused_per_sec: rate(self.refused),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: q(1.0),
        }
    }
}

/// The printed figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub accepted: u64,
    pub refused: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Calls per second, whatever their outcome.
    pub throughput: f64,
    pub accepted_per_sec: f64,
    pub refused_per_sec: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `CODE×n, …`, or `-` when every call ended as the scenario expects.
    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "-".to_owned();
        }
        self.errors
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Milliseconds with enough digits for sub-millisecond calls.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1_000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut r = Recorder::new();
        for i in 1..=1_000u64 {
            r.record(Duration::from_micros(i * 10), Outcome::Accepted);
        }
        let s = r.summary(Duration::from_secs(2));
        assert_eq!(s.requests, 1_000);
        assert!((s.throughput - 500.0).abs() < 1e-9);
        // Three significant figures: within 0.1 % of the exact rank.
        let close =
            |d: Duration, micros: f64| (d.as_micros() as f64 - micros).abs() <= micros * 0.001;
        assert!(close(s.p50, 5_000.0), "{:?}", s.p50);
        assert!(close(s.p99, 9_900.0), "{:?}", s.p99);
        assert!(close(s.p999, 9_990.0), "{:?}", s.p999);
    }

    #[test]
    fn outcomes_are_counted_apart_and_errors_by_code() {
        let mut a = Recorder::new();
        a.record(Duration::from_millis(1), Outcome::Accepted);
        a.record(Duration::from_millis(1), Outcome::Refused);
        a.record(
            Duration::from_millis(1),
            Outcome::Failed("UNAVAILABLE".into()),
        );
        let mut b = Recorder::new();
        b.record(
            Duration::from_millis(3),
            Outcome::Failed("UNAVAILABLE".into()),
        );
        b.record(Duration::from_millis(3), Outcome::Failed("ABORTED".into()));
        a.merge(&b);
        let s = a.summary(Duration::from_secs(1));
        assert_eq!((s.requests, s.accepted, s.refused), (5, 1, 1));
        assert_eq!(s.error_count(), 3);
        assert_eq!(s.errors_text(), "ABORTED×1, UNAVAILABLE×2");
    }

    #[test]
    fn an_empty_run_reports_zeros_not_a_panic() {
        let s = Recorder::new().summary(Duration::ZERO);
        assert_eq!((s.requests, s.throughput, s.p99), (0, 0.0, Duration::ZERO));
        assert_eq!(s.errors_text(), "-");
    }

    #[test]
    fn a_latency_beyond_the_bound_is_kept_at_the_bound() {
        let mut r = Recorder::new();
        r.record(Duration::from_secs(3_600), Outcome::Accepted);
        let s = r.summary(Duration::from_secs(1));
        assert!(s.max >= Duration::from_secs(59), "{:?}", s.max);
    }
}
