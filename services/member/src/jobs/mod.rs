//! Scheduled work: lot expiry, release of unconfirmed redemptions, tier downgrade. Each is safe
//! in several replicas (members are claimed with `FOR UPDATE SKIP LOCKED`), and tests drive
//! them through [`Jobs::run_once`] with the time they choose.

use std::time::Duration;

use chrono::{DateTime, Utc};
use omni_platform::clock::SharedClock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ops::{MemberOps, OpError};

/// What one run changed, member counts per job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub holds_released: usize,
    pub lots_expired: usize,
    pub tiers_changed: usize,
}

#[derive(Clone)]
pub struct Jobs {
    ops: MemberOps,
}

impl Jobs {
    pub fn new(ops: MemberOps) -> Self {
        Self { ops }
    }

    /// Runs every job once as of `now`. Holds go first: points they give back may then expire
    /// in the same run if their lot is past its date.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<RunReport, OpError> {
        Ok(RunReport {
            holds_released: self.ops.release_expired_holds(now).await?,
            lots_expired: self.ops.expire_lots(now).await?,
            tiers_changed: self.ops.downgrade_tiers(now).await?,
        })
    }

    /// Runs every `interval` until `shutdown`; a run in progress finishes first.
    pub fn spawn(
        self,
        clock: SharedClock,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                match self.run_once(clock.now()).await {
                    Ok(report) if report != RunReport::default() => {
                        tracing::info!(?report, "member jobs changed members");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "member jobs failed; retrying next interval")
                    }
                }
            }
        })
    }
}
