//! Closed-loop load: `concurrency` workers, each issuing its next call as soon as the previous one
//! answered, first through a warm-up whose figures are thrown away, then through the measured
//! phase (a fixed duration or a fixed number of calls). With a rate, open loop instead: each call
//! is due at its place in a fixed schedule.
//!
//! Closed loop on purpose: the question is "how much can N concurrent clients get through", and
//! the comparison with a baseline is only fair when both are driven the same way.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::stats::{Outcome, Recorder, Summary};

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    /// Exactly this many measured calls, shared among the workers (a flash sale of N buyers).
    Requests(u64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadPlan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub stop: Stop,
    /// `Some(r)`: open loop at `r` calls per second (call `i` of the measured phase is due at
    /// `i / r` s), latency counted from when the call was due, so a stalled server is charged
    /// for the calls it delayed (no coordinated omission). `None`: closed loop.
    pub rate: Option<f64>,
}

/// What a call is told about itself, so a scenario can make ids unique and keep warm-up calls
/// away from the state it measures (a flash sale warms up on another SKU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Unique over the whole run, warm-up included.
    pub seq: u64,
    pub worker: usize,
    pub warmup: bool,
}

/// How a paced worker waits for its call's due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// An OS thread releases each call at its due time, to within the kernel's timer slack.
    /// tokio's timers round a deadline up to the next millisecond: every paced call went out
    /// 0–1 ms late, and that lateness was counted in the system's latency.
    Thread,
    /// tokio's timers, which the driver's paused-clock tests can drive.
    #[cfg(test)]
    Tokio,
}

/// Runs `call` under `plan` and returns the measured phase's figures.
pub async fn run<F, Fut>(plan: LoadPlan, call: F) -> Summary
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    run_with(plan, call, Timer::Thread, false).await.0
}

/// Like [`run`], but waits for the machine to settle ([`crate::settle`]) between the warm-up
/// and the measured phase, and says how long it waited. For a measured phase far lighter than
/// its warm-up: a flash sale warms up on a second of accepted holds, and relaying and expiring
/// them filled the few hundred milliseconds of the sale measured after it (several times the
/// sale's own durable work), while a closed loop's warm-up leaves the backlog its own steady
/// state keeps anyway.
pub async fn run_settling<F, Fut>(plan: LoadPlan, call: F) -> (Summary, Duration)
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    run_with(plan, call, Timer::Thread, true).await
}

async fn run_with<F, Fut>(
    plan: LoadPlan,
    call: F,
    timer: Timer,
    settle_after_warmup: bool,
) -> (Summary, Duration)
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let call = Arc::new(call);
    let seq = Arc::new(AtomicU64::new(0));
    let concurrency = plan.concurrency.max(1);

    let rate = plan.rate.filter(|r| r.is_finite() && *r > 0.0);
    if !plan.warmup.is_zero() {
        // At the measured phase's own pace: an unpaced warm-up before an open-loop phase ran the
        // system flat out for a second and left the measured calls queued behind its backlog
        // (relays and consumers still catching up), charging them for load they did not make.
        let start = Instant::now();
        let pace = rate.map(|r| Pace::new(start, r, timer));
        phase(
            concurrency,
            &call,
            &seq,
            true,
            Budget::Until(start + plan.warmup),
            pace,
        )
        .await;
    }
    let settled = if settle_after_warmup {
        crate::settle::settle().await
    } else {
        Duration::ZERO
    };

    let started = Instant::now();
    let budget = match plan.stop {
        Stop::After(d) => Budget::Until(started + d),
        Stop::Requests(n) => Budget::Count {
            taken: Arc::new(AtomicU64::new(0)),
            limit: n,
        },
    };
    let pace = rate.map(|r| Pace::new(started, r, timer));
    let recorder = phase(concurrency, &call, &seq, false, budget, pace).await;
    (recorder.summary(started.elapsed()), settled)
}

#[derive(Clone)]
enum Budget {
    Until(Instant),
    Count { taken: Arc<AtomicU64>, limit: u64 },
}

impl Budget {
    /// Whether one more call may start; a counted budget hands each call out once.
    fn take(&self) -> bool {
        match self {
            Self::Until(deadline) => Instant::now() < *deadline,
            Self::Count { taken, limit } => taken.fetch_add(1, Ordering::Relaxed) < *limit,
        }
    }

    /// Whether a paced call due at `due` belongs to this phase: one due after a timed phase's
    /// end would run into the next phase.
    fn admits_due(&self, due: Instant) -> bool {
        match self {
            Self::Until(deadline) => due < *deadline,
            Self::Count { .. } => true,
        }
    }
}

/// The schedule of an open-loop phase: call `i` is due at `start + i × interval`.
#[derive(Clone)]
struct Pace {
    start: Instant,
    interval: Duration,
    next: Arc<AtomicU64>,
    timer: Timer,
}

impl Pace {
    fn new(start: Instant, calls_per_second: f64, timer: Timer) -> Self {
        Self {
            start,
            interval: Duration::from_secs_f64(1.0 / calls_per_second),
            next: Arc::new(AtomicU64::new(0)),
            timer,
        }
    }

    fn due(&self, i: u64) -> Instant {
        self.start + self.interval.mul_f64(i as f64)
    }

    fn next_due(&self) -> Instant {
        self.due(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// With [`Timer::Thread`], the thread that releases one permit at each due time of this
    /// phase, until its budget's end or until the ticker is dropped.
    fn ticker(&self, budget: &Budget) -> Option<Ticker> {
        if self.timer != Timer::Thread {
            return None;
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pace, budget) = (self.clone(), budget.clone());
        let (released, stopped) = (Arc::clone(&permits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for i in 0.. {
                let due = pace.due(i);
                if stopped.load(Ordering::Relaxed) || !budget.admits_due(due) {
                    return;
                }
                // Behind schedule, the calls due meanwhile are released at once: open loop.
                let wait = due
                    .into_std()
                    .saturating_duration_since(std::time::Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                released.add_permits(1);
            }
        });
        Some(Ticker {
            permits,
            stop,
            thread: Some(thread),
        })
    }
}

struct Ticker {
    permits: Arc<tokio::sync::Semaphore>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Sleeping at most one interval; a panic in it has nothing to report.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `due`, by `ticker`'s permits when there is one.
async fn wait_until(due: Instant, ticker: Option<&tokio::sync::Semaphore>) {
    if let Some(permits) = ticker
        && let Ok(permit) = permits.acquire().await
    {
        permit.forget();
    }
    // A permit handed to an earlier worker's due time may come before this one's.
    if Instant::now() < due {
        tokio::time::sleep_until(due).await;
    }
}

async fn phase<F, Fut>(
    concurrency: usize,
    call: &Arc<F>,
    seq: &Arc<AtomicU64>,
    warmup: bool,
    budget: Budget,
    pace: Option<Pace>,
) -> Recorder
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let ticker = pace.as_ref().and_then(|p| p.ticker(&budget));
    let permits = ticker.as_ref().map(|t| Arc::clone(&t.permits));
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let call = Arc::clone(call);
            let seq = Arc::clone(seq);
            let budget = budget.clone();
            let pace = pace.clone();
            let permits = permits.clone();
            tokio::spawn(async move {
                let mut recorder = Recorder::new();
                while budget.take() {
                    let c = Call {
                        seq: seq.fetch_add(1, Ordering::Relaxed),
                        worker,
                        warmup,
                    };
                    let sent = match &pace {
                        Some(p) => {
                            let due = p.next_due();
                            if !budget.admits_due(due) {
                                break;
                            }
                            wait_until(due, permits.as_deref()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    let outcome = call(c).await;
                    recorder.record(sent.elapsed(), outcome);
                }
                recorder
            })
        })
        .collect();
    let mut total = Recorder::new();
    for worker in workers {
        match worker.await {
            Ok(r) => total.merge(&r),
            // A panicking call is a bug in the scenario; count it rather than lose the run.
            Err(_) => total.record(Duration::ZERO, Outcome::Failed("panic".into())),
        }
    }
    drop(ticker);
    total
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// Equal within the histogram's three significant figures.
    fn about(measured: Duration, expected: Duration) -> bool {
        measured.abs_diff(expected) <= expected / 1_000
    }

    #[tokio::test]
    async fn a_counted_run_makes_exactly_that_many_measured_calls() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let plan = LoadPlan {
            concurrency: 7,
            warmup: Duration::ZERO,
            stop: Stop::Requests(1_000),
            rate: None,
        };
        let s = run(plan, move |c| {
            log.lock().unwrap().push(c);
            async { Outcome::Accepted }
        })
        .await;
        assert_eq!((s.requests, s.accepted), (1_000, 1_000));
        let calls = seen.lock().unwrap();
        let seqs: BTreeSet<u64> = calls.iter().map(|c| c.seq).collect();
        assert_eq!(seqs.len(), 1_000, "every call has its own sequence number");
        assert!(calls.iter().all(|c| !c.warmup && c.worker < 7));
    }

    #[tokio::test(start_paused = true)]
    async fn warm_up_calls_are_marked_and_left_out_of_the_figures() {
        let warm = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&warm);
        let plan = LoadPlan {
            concurrency: 2,
            warmup: Duration::from_millis(100),
            stop: Stop::Requests(10),
            rate: None,
        };
        let s = run(plan, move |c| {
            if c.warmup {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if c.warmup {
                    Outcome::Failed("WARMUP".into())
                } else {
                    Outcome::Refused
                }
            }
        })
        .await;
        assert!(warm.load(Ordering::Relaxed) >= 2, "warm-up ran");
        assert_eq!((s.requests, s.refused, s.error_count()), (10, 10, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_settling_run_waits_after_its_warm_up_and_not_in_its_figures() {
        let plan = LoadPlan {
            concurrency: 2,
            warmup: Duration::from_millis(100),
            stop: Stop::Requests(10),
            rate: None,
        };
        let last_warm_up = Arc::new(Mutex::new(None::<tokio::time::Instant>));
        let first_measured = Arc::new(Mutex::new(None::<tokio::time::Instant>));
        let (warm, measured) = (Arc::clone(&last_warm_up), Arc::clone(&first_measured));
        let (s, settled) = run_settling(plan, move |c| {
            let now = tokio::time::Instant::now();
            if c.warmup {
                *warm.lock().unwrap() = Some(now);
            } else {
                measured.lock().unwrap().get_or_insert(now);
            }
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Outcome::Accepted
            }
        })
        .await;
        assert_eq!(s.requests, 10);
        let gap = first_measured.lock().unwrap().unwrap() - last_warm_up.lock().unwrap().unwrap();
        // A paused clock passes no CPU time, so the wait runs to its bound; either way the
        // measured calls start after it and their figures do not include it.
        assert!(settled >= crate::settle::WINDOW, "{settled:?}");
        assert!(gap >= settled, "{gap:?} < {settled:?}");
        assert!(s.elapsed < settled, "{:?}", s.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_run_warms_up_at_its_own_rate() {
        let warm = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&warm);
        let plan = LoadPlan {
            concurrency: 8,
            warmup: Duration::from_secs(1),
            stop: Stop::Requests(10),
            rate: Some(50.0),
        };
        let s = run_with(
            plan,
            move |c| {
                if c.warmup {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                async {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Outcome::Accepted
                }
            },
            Timer::Tokio,
            false,
        )
        .await
        .0;
        // 50 calls due in the warm-up second (at 0, 20, … 980 ms), not as many as 8 workers
        // could make closed loop (8,000).
        assert_eq!(warm.load(Ordering::Relaxed), 50);
        assert_eq!(s.requests, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_run_stops_starting_calls_at_its_deadline() {
        let plan = LoadPlan {
            concurrency: 4,
            warmup: Duration::ZERO,
            stop: Stop::After(Duration::from_secs(1)),
            rate: None,
        };
        let s = run(plan, |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Outcome::Accepted
        })
        .await;
        // 4 workers × 10 calls of 100 ms in one (virtual) second.
        assert_eq!(s.requests, 40);
        assert!(about(s.p50, Duration::from_millis(100)), "{:?}", s.p50);
    }

    async fn answer_in_50ms(_: Call) -> Outcome {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Outcome::Accepted
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_run_keeps_its_rate_and_charges_queueing_to_latency() {
        // 100 calls/s for 1 s, but the server takes 50 ms and only one worker can wait on it:
        // calls fall behind schedule, and the delay they waited is part of their latency.
        let plan = LoadPlan {
            concurrency: 1,
            warmup: Duration::ZERO,
            stop: Stop::Requests(20),
            rate: Some(100.0),
        };
        let (s, _) = run_with(plan, answer_in_50ms, Timer::Tokio, false).await;
        assert_eq!(s.requests, 20);
        assert!(s.max >= Duration::from_millis(500), "{:?}", s.max);

        let relaxed = LoadPlan {
            concurrency: 8,
            ..plan
        };
        let (s, _) = run_with(relaxed, answer_in_50ms, Timer::Tokio, false).await;
        assert!(
            about(s.max, Duration::from_millis(50)),
            "enough workers, no queueing: {:?}",
            s.max
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thread_paced_run_sends_each_call_when_due_and_never_before() {
        // Real time: 200 calls at 2,000/s over 8 workers. Each call records how long after the
        // phase's start it was sent; the k-th call sent cannot leave before k × 0.5 ms.
        let started = Arc::new(Mutex::new(None::<Instant>));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (start, log) = (Arc::clone(&started), Arc::clone(&sent));
        *start.lock().unwrap() = Some(Instant::now());
        let plan = LoadPlan {
            concurrency: 8,
            warmup: Duration::ZERO,
            stop: Stop::Requests(200),
            rate: Some(2_000.0),
        };
        let s = run(plan, move |_| {
            log.lock().unwrap().push(Instant::now());
            async { Outcome::Accepted }
        })
        .await;
        assert_eq!(s.requests, 200);
        let mut times = sent.lock().unwrap().clone();
        times.sort();
        let origin = started.lock().unwrap().unwrap();
        for (k, at) in times.iter().enumerate() {
            let due = Duration::from_micros(500) * k as u32;
            assert!(
                at.duration_since(origin) >= due,
                "call {k} sent {:?} after the start, due at {due:?}",
                at.duration_since(origin)
            );
        }
    }
}
