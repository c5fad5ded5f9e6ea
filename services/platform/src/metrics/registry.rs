//! Where recorded values live, and their Prometheus text rendering (exposition format 0.0.4).
//!
//! One mutex over all families: a record is a map lookup and an add, far below the cost of the
//! call it measures, and scrapes are rare. Families appear once something is recorded in them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Label names are fixed in code; values come from requests, so they are escaped on render.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Vec<(&'static str, String)>, Value>,
}

#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram {
        bounds: &'static [f64],
        /// Per bucket, not cumulative; cumulated when rendered.
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Registry {
    pub const fn new() -> Self {
        Self {
            families: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Family>> {
        // Every update is a single step, so the map is consistent even after a panic elsewhere.
        self.families.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `update` on the series, creating family and series on first use. A name already
    /// registered with another kind is a programming error; the value is dropped rather than
    /// rendering a family Prometheus would refuse.
    fn with_series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels<'_>,
        init: impl FnOnce() -> Value,
        update: impl FnOnce(&mut Value),
    ) {
        let mut families = self.lock();
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(
                metric = name,
                "metric recorded as {} and {}",
                family.kind.as_str(),
                kind.as_str()
            );
            return;
        }
        let mut key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        key.sort_unstable();
        update(family.series.entry(key).or_insert_with(init));
    }

    pub fn counter_add(&self, name: &'static str, help: &'static str, labels: Labels<'_>, n: u64) {
        self.with_series(
            name,
            help,
            Kind::Counter,
            labels,
            || Value::Counter(0),
            |v| {
                if let Value::Counter(c) = v {
                    *c = c.saturating_add(n);
                }
            },
        );
    }

    pub fn gauge_set(&self, name: &'static str, help: &'static str, labels: Labels<'_>, x: f64) {
        self.with_series(
            name,
            help,
            Kind::Gauge,
            labels,
            || Value::Gauge(0.0),
            |v| {
                if let Value::Gauge(g) = v {
                    *g = x;
                }
            },
        );
    }

    pub fn histogram_observe(
        &self,
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        labels: Labels<'_>,
        x: f64,
    ) {
        self.with_series(
            name,
            help,
            Kind::Histogram,
            labels,
            || Value::Histogram {
                bounds,
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            },
            |v| {
                if let Value::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                } = v
                {
                    // Above the last bound it only counts toward `+Inf` (= `count`).
                    if let Some(i) = bounds.iter().position(|b| x <= *b) {
                        counts[i] += 1;
                    }
                    *sum += x;
                    *count += 1;
                }
            },
        );
    }

    /// The value of one counter series, for tests and health checks.
    pub fn counter_value(&self, name: &str, labels: Labels<'_>) -> Option<u64> {
        let mut key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        key.sort_unstable();
        match self.lock().get(name)?.series.get(&key)? {
            Value::Counter(c) => Some(*c),
            _ => None,
        }
    }

    /// Everything recorded, in the Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.lock();
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, value) in &family.series {
                match value {
                    Value::Counter(c) => {
                        let _ = writeln!(out, "{name}{} {c}", label_text(labels, None));
                    }
                    Value::Gauge(g) => {
                        let _ = writeln!(out, "{name}{} {}", label_text(labels, None), number(*g));
                    }
                    Value::Histogram {
                        bounds,
                        counts,
                        sum,
                        count,
                    } => {
                        let mut cumulative = 0u64;
                        for (bound, n) in bounds.iter().zip(counts) {
                            cumulative += n;
                            let le = number(*bound);
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {cumulative}",
                                label_text(labels, Some(&le))
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            label_text(labels, Some("+Inf"))
                        );
                        let _ = writeln!(
                            out,
                            "{name}_sum{} {}",
                            label_text(labels, None),
                            number(*sum)
                        );
                        let _ = writeln!(out, "{name}_count{} {count}", label_text(labels, None));
                    }
                }
            }
        }
        out
    }
}

fn label_text(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_sorted_escaped_labels() {
        let r = Registry::new();
        r.counter_add(
            "jobs_total",
            "Jobs run.",
            &[("queue", "a\"b"), ("code", "OK")],
            2,
        );
        r.counter_add(
            "jobs_total",
            "Jobs run.",
            &[("code", "OK"), ("queue", "a\"b")],
            1,
        );
        assert_eq!(
            r.render(),
            "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\n\
             jobs_total{code=\"OK\",queue=\"a\\\"b\"} 3\n"
        );
        assert_eq!(
            r.counter_value("jobs_total", &[("queue", "a\"b"), ("code", "OK")]),
            Some(3)
        );
    }

    #[test]
    fn gauges_keep_the_last_value() {
        let r = Registry::new();
        r.gauge_set("queue_length", "Waiting.", &[], 5.0);
        r.gauge_set("queue_length", "Waiting.", &[], 2.5);
        assert!(r.render().ends_with("queue_length 2.5\n"), "{}", r.render());
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let r = Registry::new();
        static BOUNDS: &[f64] = &[0.1, 1.0];
        for x in [0.05, 0.5, 0.7, 3.0] {
            r.histogram_observe("latency_seconds", "Latency.", BOUNDS, &[("m", "x")], x);
        }
        let text = r.render();
        for line in [
            "latency_seconds_bucket{m=\"x\",le=\"0.1\"} 1",
            "latency_seconds_bucket{m=\"x\",le=\"1\"} 3",
            "latency_seconds_bucket{m=\"x\",le=\"+Inf\"} 4",
            "latency_seconds_sum{m=\"x\"} 4.25",
            "latency_seconds_count{m=\"x\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn a_name_reused_with_another_kind_is_not_rendered_twice() {
        let r = Registry::new();
        r.counter_add("x", "X.", &[], 1);
        r.gauge_set("x", "X.", &[], 9.0);
        assert_eq!(r.render(), "# HELP x X.\n# TYPE x counter\nx 1\n");
    }
}
