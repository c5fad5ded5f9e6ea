//! Metrics: counters, gauges and histograms declared as statics where they are counted,
//! exposed as Prometheus text on the service's admin port and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exported over OTLP as well.
//!
//! ```
//! use omni_platform::metrics::Counter;
//! static HELD: Counter = Counter::new("demo_reservations_total", "Reservations, by outcome.");
//! HELD.inc(&[("outcome", "held")]);
//! ```
//!
//! The registry is per process: with `omni up` hosting all three services, each admin port shows
//! every service's series, which the metric names (`inventory_…`, `orders_…`) and the `service`
//! label keep apart. Label values must come from small sets (codes, reasons, store ids), never
//! from request ids, or the series count grows without bound.

mod endpoint;
mod otel;
mod registry;

pub use endpoint::{MetricsError, MetricsServer, scrape, serve_metrics};
pub use otel::install_meter_provider;
pub use registry::{Labels, Registry};

static GLOBAL: Registry = Registry::new();

/// The process-wide registry that instruments record into and `/metrics` renders.
pub fn global() -> &'static Registry {
    &GLOBAL
}

/// Latency buckets in seconds, from a Redis-only reservation (~1 ms) to a call near its deadline.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A monotonically increasing count (`…_total`).
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
}

impl Counter {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help }
    }

    pub fn inc(&self, labels: Labels<'_>) {
        self.add(1, labels);
    }

    pub fn add(&self, n: u64, labels: Labels<'_>) {
        GLOBAL.counter_add(self.name, self.help, labels, n);
        otel::counter_add(self.name, self.help, labels, n);
    }

    /// The current value of one series (0 if never counted), for tests.
    pub fn value(&self, labels: Labels<'_>) -> u64 {
        GLOBAL.counter_value(self.name, labels).unwrap_or(0)
    }
}

/// A value that goes up and down (a queue length, a backlog).
#[derive(Debug)]
pub struct Gauge {
    name: &'static str,
    help: &'static str,
}

impl Gauge {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help }
    }

    pub fn set(&self, value: f64, labels: Labels<'_>) {
        GLOBAL.gauge_set(self.name, self.help, labels, value);
        otel::gauge_set(self.name, self.help, labels, value);
    }
}

/// A distribution (latencies), with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
}

impl Histogram {
    /// `bounds` must be sorted ascending; `+Inf` is implied.
    pub const fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        Self { name, help, bounds }
    }

    pub fn observe(&self, value: f64, labels: Labels<'_>) {
        GLOBAL.histogram_observe(self.name, self.help, self.bounds, labels, value);
        otel::histogram_record(self.name, self.help, self.bounds, labels, value);
    }
}
