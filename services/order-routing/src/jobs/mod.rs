//! Scheduled jobs: pickup expiry and the confirmation sweeper. Each loop calls a `run_once(now)`
//! that claims its rows with `FOR UPDATE SKIP LOCKED`, so replicas split the work; tests call
//! `run_once` directly with the time they want.

use std::time::Duration;

use chrono::{DateTime, Utc};
use omni_platform::clock::SharedClock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::service::{Orders, ServiceError};

const BATCH: u64 = 50;
/// Orders younger than this are still being confirmed by their own PlaceOrder.
pub const SWEEP_GRACE: Duration = Duration::from_secs(10);

pub struct PickupExpiry {
    pub orders: Orders,
}

impl PickupExpiry {
    /// Expires every ready pickup past its hold at `now`; returns how many.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let mut total = 0;
        loop {
            let n = self.orders.expire_pickups(now, BATCH).await?;
            total += n;
            if (n as u64) < BATCH {
                return Ok(total);
            }
        }
    }
}

pub struct ConfirmationSweeper {
    pub orders: Orders,
}

impl ConfirmationSweeper {
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        self.orders
            .sweep_confirmations(now, SWEEP_GRACE, BATCH)
            .await
    }
}

/// Runs `job` every `interval` until `stop`.
pub fn spawn_every<F, Fut>(
    name: &'static str,
    interval: Duration,
    clock: SharedClock,
    stop: CancellationToken,
    job: F,
) -> JoinHandle<()>
where
    F: Fn(DateTime<Utc>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<usize, ServiceError>> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match job(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(job = name, items = n, "scheduled job did work"),
                Err(e) => tracing::warn!(job = name, error = %e, "scheduled job failed"),
            }
        }
    })
}
