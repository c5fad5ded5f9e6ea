//! Waiting for the machine to settle before each measurement.
//!
//! A scenario leaves work behind it (relays draining, holds expiring, autovacuum), and on two
//! shared cores the next measurement pays for it, system and baseline alike: the untouched
//! two-transaction baseline did 982/s at 16 clients in one full run and 1,375/s in the next.
//! So each measurement starts once the machine's CPUs have been mostly idle for a moment, or
//! after a bound, and the run reports how long it waited in all.

use std::time::Duration;

/// Busy below this share of all CPUs over one [`WINDOW`] counts as settled.
pub const QUIET_SHARE: f64 = 0.15;
pub const WINDOW: Duration = Duration::from_millis(500);
/// The longest one wait: background work that never stops must not stall the run.
pub const MAX_WAIT: Duration = Duration::from_secs(8);

/// `(busy, total)` jiffies of all CPUs from the `cpu` line of `/proc/stat`.
pub fn cpu_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

fn read_jiffies() -> Option<(u64, u64)> {
    cpu_jiffies(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Waits until one [`WINDOW`] passes with the CPUs busy less than [`QUIET_SHARE`], at most
/// [`MAX_WAIT`]; returns how long it waited. Without `/proc/stat` it does not wait.
pub async fn settle() -> Duration {
    let started = tokio::time::Instant::now();
    let Some(mut before) = read_jiffies() else {
        return Duration::ZERO;
    };
    while started.elapsed() < MAX_WAIT {
        tokio::time::sleep(WINDOW).await;
        let Some(now) = read_jiffies() else { break };
        let (busy, total) = (now.0 - before.0, now.1 - before.1);
        if total > 0 && (busy as f64) < QUIET_SHARE * total as f64 {
            break;
        }
        before = now;
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_iowait_are_not_busy() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(cpu_jiffies(stat), Some((160, 1000)));
    }

    #[test]
    fn a_stat_without_the_cpu_line_gives_none() {
        assert_eq!(cpu_jiffies("intr 1 2 3\n"), None);
        assert_eq!(cpu_jiffies("cpu  x y\n"), None);
    }
}
