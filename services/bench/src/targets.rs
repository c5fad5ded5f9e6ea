//! The targets, judged from a run's rows. Printed, never asserted: a miss is a finding
//! to explain, not a failed build.

use std::time::Duration;

use crate::scenarios::Row;
use crate::stats::ms;

/// One target and what the run measured for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    /// `None` when the run has no figure for it (scenario skipped or failed).
    pub met: Option<bool>,
    /// "by how much": measured relative to the goal, e.g. `1.8× the goal` or `42 % short`.
    pub margin: String,
}

/// Figures measured outside the rows.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub relay_events_per_sec: Option<f64>,
    /// (service, peak RSS KiB) during place-order.
    pub peak_rss_kib: Vec<(String, Option<u64>)>,
    /// How long the run waited in all for the machine to settle before its measurements.
    pub settled: std::time::Duration,
}

/// `measured / goal` for "at least" goals, `goal / measured` for "at most" ones: > 1 is met.
fn margin(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "-".to_owned();
    }
    if ratio >= 1.0 {
        format!("met, {ratio:.2}× the goal")
    } else {
        format!("missed, {:.0} % short", (1.0 - ratio) * 100.0)
    }
}

fn at_least(target: String, measured: String, value: Option<f64>, goal: f64) -> Verdict {
    match value {
        Some(v) => Verdict {
            target,
            measured,
            met: Some(v >= goal),
            margin: margin(v / goal),
        },
        None => missing(target),
    }
}

fn below(target: String, value: Option<Duration>, goal: Duration) -> Verdict {
    match value {
        Some(v) => Verdict {
            target,
            measured: format!("{} ms", ms(v)),
            met: Some(v < goal),
            margin: margin(goal.as_secs_f64() / v.as_secs_f64().max(1e-9)),
        },
        None => missing(target),
    }
}

fn missing(target: String) -> Verdict {
    Verdict {
        target,
        measured: "not measured".to_owned(),
        met: None,
        margin: "-".to_owned(),
    }
}

/// The worst ratio `system / baselines[index]` over the rows of `scenario`, with its concurrency.
fn worst_ratio(rows: &[Row], scenario: &str, baseline: usize) -> Option<(f64, usize)> {
    rows.iter()
        .filter(|r| r.scenario == scenario && r.rate.is_none())
        .filter_map(|r| {
            let b = r.baselines.get(baseline)?;
            (b.summary.throughput > 0.0)
                .then(|| (r.system.throughput / b.summary.throughput, r.concurrency))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

fn p99_of(rows: &[Row], scenario: &str) -> Option<Duration> {
    rows.iter()
        .find(|r| r.scenario == scenario)
        .map(|r| r.system.p99)
}

pub fn judge(rows: &[Row], extra: &Extra) -> Vec<Verdict> {
    let mut out = Vec::new();
    let ratio_verdict = |target: &str, scenario: &str, baseline: usize, goal: f64| {
        let worst = worst_ratio(rows, scenario, baseline);
        at_least(
            target.to_owned(),
            worst.map_or_else(
                || "-".to_owned(),
                |(r, c)| format!("worst {:.0} % (at {c} clients)", r * 100.0),
            ),
            worst.map(|w| w.0),
            goal,
        )
    };
    out.push(ratio_verdict(
        "flash-sale Reserve ≥ 35 % of the raw script, same concurrency",
        "flash-sale Reserve",
        0,
        0.35,
    ));
    let flash: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario.starts_with("flash-sale"))
        .collect();
    let exact = flash.iter().all(|r| !r.note.contains('≠'));
    out.push(Verdict {
        target: "flash sale: exactly K accepted (service, script and PG-only)".to_owned(),
        measured: format!(
            "{} runs, {}",
            flash.len(),
            if exact { "all exact" } else { "see notes" }
        ),
        met: (!flash.is_empty()).then_some(exact),
        margin: "-".to_owned(),
    });
    let gate = worst_ratio(rows, "flash-sale Reserve", 1);
    out.push(at_least(
        "Redis gate (service Reserve) ≥ 5× PostgreSQL-only reservation, hot SKU".to_owned(),
        gate.map_or_else(
            || "-".to_owned(),
            |(r, c)| format!("worst {r:.1}× (at {c} clients)"),
        ),
        gate.map(|g| g.0),
        5.0,
    ));
    out.push(ratio_verdict(
        "place-order ≥ 50 % of the two-transaction baseline",
        "place-order",
        0,
        0.5,
    ));
    out.push(below(
        "place-order p99 < 25 ms at half the peak rate".to_owned(),
        p99_of(rows, "place-order @ ½ peak"),
        Duration::from_millis(25),
    ));
    out.push(below(
        "availability p99 < 5 ms at half the peak rate".to_owned(),
        p99_of(rows, "availability @ ½ peak"),
        Duration::from_millis(5),
    ));
    out.push(at_least(
        "outbox relay ≥ 10k events/s".to_owned(),
        extra
            .relay_events_per_sec
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0} events/s")),
        extra.relay_events_per_sec,
        10_000.0,
    ));
    let planner = rows
        .iter()
        .filter(|r| r.scenario.starts_with("planner"))
        .map(|r| r.system.p99)
        .max();
    out.push(below(
        "planner p99 < 1 ms (10 lines × 1,000 candidates)".to_owned(),
        planner,
        Duration::from_millis(1),
    ));
    for (service, kib) in &extra.peak_rss_kib {
        let mib = kib.map(|k| k as f64 / 1024.0);
        out.push(match mib {
            Some(m) => Verdict {
                target: format!("{service} peak RSS < 64 MiB during place-order"),
                measured: format!("{m:.1} MiB"),
                met: Some(m < 64.0),
                margin: margin(64.0 / m.max(1e-9)),
            },
            None => missing(format!("{service} peak RSS < 64 MiB during place-order")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::Baseline;
    use crate::stats::{Outcome, Recorder, Summary};

    fn summary(calls: u64, latency: Duration) -> Summary {
        let mut r = Recorder::new();
        for _ in 0..calls {
            r.record(latency, Outcome::Accepted);
        }
        r.summary(Duration::from_secs(1))
    }

    fn row(scenario: &str, concurrency: usize, calls: u64, baselines: &[u64]) -> Row {
        let mut row = Row::new(
            scenario,
            concurrency,
            summary(calls, Duration::from_millis(1)),
        );
        row.baselines = baselines
            .iter()
            .map(|&b| Baseline {
                name: "b",
                summary: summary(b, Duration::from_millis(1)),
            })
            .collect();
        row
    }

    #[test]
    fn ratio_targets_are_judged_at_the_worst_concurrency() {
        let rows = vec![
            row("place-order", 1, 60, &[100]),
            row("place-order", 8, 40, &[100]),
        ];
        let v = judge(&rows, &Extra::default());
        let po = v
            .iter()
            .find(|v| v.target.starts_with("place-order ≥"))
            .unwrap();
        assert_eq!(po.met, Some(false));
        assert!(
            po.measured.contains("40 %") && po.measured.contains("8 clients"),
            "{po:?}"
        );
        assert_eq!(po.margin, "missed, 20 % short");
    }

    #[test]
    fn latency_targets_read_the_paced_rows() {
        let mut paced = Row::new(
            "availability @ ½ peak",
            8,
            summary(10, Duration::from_millis(2)),
        );
        paced.rate = Some(100.0);
        let v = judge(&[paced], &Extra::default());
        let a = v
            .iter()
            .find(|v| v.target.starts_with("availability"))
            .unwrap();
        assert_eq!(a.met, Some(true));
        assert_eq!(a.margin, "met, 2.50× the goal");
        let p = v
            .iter()
            .find(|v| v.target.starts_with("place-order p99"))
            .unwrap();
        assert_eq!(
            p.met, None,
            "no paced place-order row: not measured, not failed"
        );
    }

    #[test]
    fn a_flash_sale_that_oversold_is_not_met() {
        let mut r = row("flash-sale Reserve", 4, 100, &[100, 10]);
        r.note = "**accepted 101 ≠ K = 100**".into();
        let v = judge(&[r], &Extra::default());
        let exact = v.iter().find(|v| v.target.contains("exactly K")).unwrap();
        assert_eq!(exact.met, Some(false));
        let gate = v.iter().find(|v| v.target.contains("Redis gate")).unwrap();
        assert_eq!(gate.met, Some(true), "{gate:?}");
    }

    #[test]
    fn rss_is_judged_per_service() {
        let extra = Extra {
            relay_events_per_sec: Some(5_000.0),
            peak_rss_kib: vec![
                ("inventory".into(), Some(32 * 1024)),
                ("member".into(), None),
            ],
            ..Extra::default()
        };
        let v = judge(&[], &extra);
        let inv = v
            .iter()
            .find(|v| v.target.starts_with("inventory"))
            .unwrap();
        assert_eq!(
            (inv.met, inv.margin.as_str()),
            (Some(true), "met, 2.00× the goal")
        );
        assert_eq!(
            v.iter()
                .find(|v| v.target.starts_with("member"))
                .unwrap()
                .met,
            None
        );
        let relay = v.iter().find(|v| v.target.starts_with("outbox")).unwrap();
        assert_eq!(relay.margin, "missed, 50 % short");
    }
}
