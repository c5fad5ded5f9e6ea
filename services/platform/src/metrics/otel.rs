//! The OpenTelemetry side of every instrument: the same values, recorded into an SDK meter
//! provider when one is installed (OTLP export), and skipped at the cost of one atomic load
//! when none is.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use super::registry::Labels;

static METER: OnceLock<Meter> = OnceLock::new();
/// Instruments by metric name, created on first use: building one per record would be wasteful.
static INSTRUMENTS: Mutex<BTreeMap<&'static str, Instrument>> = Mutex::new(BTreeMap::new());

#[derive(Clone)]
enum Instrument {
    Counter(Counter<u64>),
    Gauge(Gauge<f64>),
    Histogram(Histogram<f64>),
}

/// Sends every instrument's values to `provider` from now on. The first provider installed in
/// the process wins (telemetry is set up once, in `main`); later calls return `false`.
pub fn install_meter_provider(provider: &SdkMeterProvider) -> bool {
    METER.set(provider.meter("omni")).is_ok()
}

fn instrument(name: &'static str, create: impl FnOnce(&Meter) -> Instrument) -> Option<Instrument> {
    let meter = METER.get()?;
    let mut instruments = INSTRUMENTS.lock().unwrap_or_else(PoisonError::into_inner);
    Some(
        instruments
            .entry(name)
            .or_insert_with(|| create(meter))
            .clone(),
    )
}

fn attributes(labels: Labels<'_>) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(k, v)| KeyValue::new(*k, (*v).to_owned()))
        .collect()
}

pub(super) fn counter_add(name: &'static str, help: &'static str, labels: Labels<'_>, n: u64) {
    let created = instrument(name, |m| {
        Instrument::Counter(m.u64_counter(name).with_description(help).build())
    });
    if let Some(Instrument::Counter(c)) = created {
        c.add(n, &attributes(labels));
    }
}

pub(super) fn gauge_set(name: &'static str, help: &'static str, labels: Labels<'_>, x: f64) {
    let created = instrument(name, |m| {
        Instrument::Gauge(m.f64_gauge(name).with_description(help).build())
    });
    if let Some(Instrument::Gauge(g)) = created {
        g.record(x, &attributes(labels));
    }
}

pub(super) fn histogram_record(
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    labels: Labels<'_>,
    x: f64,
) {
    let created = instrument(name, |m| {
        Instrument::Histogram(
            m.f64_histogram(name)
                .with_description(help)
                .with_boundaries(bounds.to_vec())
                .build(),
        )
    });
    if let Some(Instrument::Histogram(h)) = created {
        h.record(x, &attributes(labels));
    }
}
