//! The reservation gate: the port in front of real-time shared stock (ARCHITECTURE §2 Inventory,
//! §3), with a Redis adapter for production and an in-process adapter for the embedded default.
//!
//! The gate holds, per (sku, location), the counters `on_hand`, `reserved` and `safety`, one record
//! per reservation, and per (location, local day) the capacity used. PostgreSQL stays the record;
//! the gate is the place where concurrent buyers meet, so every operation that checks and then
//! writes does both in one atomic step (one Lua script in Redis, one mutex section in process).
//!
//! ## The saga around `reserve`
//! 1. [`ReservationGate::reserve`] holds all lines (or none) and marks the hold PENDING.
//! 2. The service writes the reservation row and its outbox event to PostgreSQL.
//! 3. [`ReservationGate::mark_durable`] — the hold is now backed by a row, and a duplicate request
//!    may be answered with the first answer.
//! 4. On a *definite* rollback of step 2, [`ReservationGate::undo`]; on an ambiguous failure nothing:
//!    the reaper finds the hold with [`ReservationGate::pending_older_than`], checks PostgreSQL, and
//!    then either marks it durable or undoes it.
//!
//! ## Epochs
//! Redis is a cache that can be lost. The gate carries an epoch; the service learns it from
//! [`ReservationGate::status`] and passes it with every hold, and a hold written under another
//! epoch is refused ([`GateError::EpochMismatch`]), so a write racing a rebuild fails instead of
//! landing in counters that are being replaced. While a rebuild runs, every write is refused with
//! [`GateError::Unavailable`].

mod level_cache;
mod memory;
mod redis;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;
use omni_types::{LocationId, ReservationId, Sku};

use crate::domain::{
    CapacityDay, LineEffect, LineSelection, Reservation, ReservationLine, ReservationStatus,
    StateError, StockLevel,
};

pub use self::memory::MemoryGate;
pub use self::redis::{DEFAULT_LEVEL_CACHE_ENTRIES, RedisGate, RedisGateConfig};

/// How long a finished reservation is remembered, so a late replay of its request is answered
/// with what happened instead of holding the stock a second time.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a capacity counter outlives its day: long enough for every time zone's day to be over
/// and for an operator to look at yesterday, short enough that keys do not pile up.
pub const CAPACITY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

/// Identifies one generation of the gate's contents; a new one is written by every rebuild.
pub type Epoch = u64;

/// One unit of a location's daily fulfilment capacity, claimed by an order in the same atomic step
/// as its stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityClaim {
    pub location: LocationId,
    pub day: CapacityDay,
    pub daily_limit: u32,
}

/// Hold stock for a reservation: all lines or none.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub id: ReservationId,
    /// Validated lines, one per (sku, location) (see [`crate::domain::ReserveRequest`]).
    pub lines: Vec<ReservationLine>,
    /// `None` only for a reservation that never expires by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// Capacity units to take; empty for checkout holds, one per location for an order.
    pub capacity: Vec<CapacityClaim>,
    /// The epoch the caller read from [`ReservationGate::status`].
    pub epoch: Epoch,
    /// The caller's clock; orders the PENDING holds for the reaper.
    pub now: DateTime<Utc>,
}

/// What a reservation's record says about its progress through the saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Held, but PostgreSQL may not have the row yet: never answer a duplicate with success.
    Pending,
    /// Held and backed by a PostgreSQL row.
    Durable,
    /// COMMITTED, RELEASED or EXPIRED; kept as a tombstone.
    Finished(ReservationStatus),
}

/// Why a line could not be held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub sku: Sku,
    pub location: LocationId,
    pub requested: u32,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Every line is held and the hold is PENDING. `levels` are the counters the hold left on
    /// each key it touched, once per key in the order of the lines: what `stock.changed` reports,
    /// without a second read.
    Held {
        levels: Vec<(Sku, LocationId, StockLevel)>,
    },
    /// Nothing was written; these lines lacked stock.
    Insufficient(Vec<Shortfall>),
    /// Nothing was written; these locations have no capacity left that day.
    CapacityExhausted(Vec<LocationId>),
    /// The id is taken. `same_lines` says whether the first request asked for the same lines.
    Duplicate { state: HoldState, same_lines: bool },
}

/// Move a checkout hold's lines to an order's reservation.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    pub hold_id: ReservationId,
    pub order_id: ReservationId,
    pub expires_at: Option<DateTime<Utc>>,
    pub capacity: Vec<CapacityClaim>,
    pub epoch: Epoch,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertOutcome {
    /// The order's reservation holds what the hold held (PENDING); the hold id is free again.
    Converted,
    /// Nothing changed; these locations have no capacity left that day.
    CapacityExhausted(Vec<LocationId>),
    /// The order's reservation already exists; `same_lines` compares it with the hold's lines.
    Duplicate { state: HoldState, same_lines: bool },
}

/// A reservation as the gate knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord {
    pub reservation: Reservation,
    pub state: HoldState,
    pub epoch: Epoch,
    pub created_at: DateTime<Utc>,
    /// The capacity units it took, given back if it is undone or expires. A release keeps them:
    /// the location planned its day around the order.
    pub capacity: Vec<(LocationId, CapacityDay)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateStatus {
    Ready {
        epoch: Epoch,
    },
    /// No epoch: the gate is empty or was lost (restart, failover, FLUSHALL); rebuild it.
    Missing,
    Rebuilding,
}

/// Everything a rebuild puts back, read from PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct RebuildSnapshot {
    pub epoch: Epoch,
    pub levels: Vec<(Sku, LocationId, StockLevel)>,
    /// HELD reservations (and any tombstones worth keeping), with their epoch set to `epoch`.
    pub holds: Vec<HoldRecord>,
    pub capacity: Vec<(LocationId, CapacityDay, u32)>,
}

/// A counter changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityChange {
    pub sku: Sku,
    pub location: LocationId,
    pub level: StockLevel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    Change(AvailabilityChange),
    /// Changes may have been missed (reconnect, lag, rebuild): take a fresh snapshot.
    Gap,
}

pub type FeedStream = Pin<Box<dyn Stream<Item = FeedEvent> + Send>>;

/// Errors, named by what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// Retry later (UNAVAILABLE): connection lost, timeout, rebuild running, epoch missing.
    #[error("reservation gate unavailable: {0}")]
    Unavailable(String),
    #[error("reservation not found")]
    NotFound,
    /// The reservation is not in a state that allows this (FAILED_PRECONDITION).
    #[error("{0}")]
    InvalidState(#[from] StateError),
    /// The caller's epoch is stale: re-read [`ReservationGate::status`] (ABORTED, retry).
    #[error("epoch mismatch: the gate is at {current:?}")]
    EpochMismatch { current: Option<Epoch> },
}

/// The reservation gate. Every method is one atomic step against the shared counters.
#[async_trait]
pub trait ReservationGate: Send + Sync {
    /// Holds every line or none, and takes one capacity unit per claim; see [`HoldOutcome`].
    /// Refused with `Unavailable` while rebuilding and `EpochMismatch` under a stale epoch.
    async fn reserve(&self, request: HoldRequest) -> Result<HoldOutcome, GateError>;

    /// PostgreSQL committed the reservation row: PENDING → DURABLE. Idempotent; a no-op on a
    /// finished reservation.
    async fn mark_durable(&self, id: &ReservationId) -> Result<(), GateError>;

    /// Definite rollback of a PENDING hold: gives its units and capacity back and forgets the id.
    /// Refused ([`StateError::Durable`]) once durable.
    async fn undo(&self, id: &ReservationId) -> Result<(), GateError>;

    /// The owner is durable: drop the expiry. Idempotent.
    async fn confirm(&self, id: &ReservationId) -> Result<(), GateError>;

    /// Moves an unconfirmed hold's expiry.
    async fn extend(&self, id: &ReservationId, expires_at: DateTime<Utc>) -> Result<(), GateError>;

    /// Goods left: lowers `on_hand` and `reserved` by the selected amounts, which it returns so the
    /// caller writes exactly these COMMIT ledger rows.
    async fn commit(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError>;

    /// Cancelled: lowers `reserved` by the selected amounts, which it returns.
    async fn release(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError>;

    /// Releases an unconfirmed hold whose expiry is at or before `now` and gives its capacity
    /// back. A hold extended or confirmed since the reaper listed it is refused, not expired.
    async fn expire(
        &self,
        id: &ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LineEffect>, GateError>;

    /// Moves a HELD checkout hold's lines to a new PENDING order reservation in one step: the
    /// counters do not move, so no other buyer can take the stock in between.
    async fn convert(&self, request: ConvertRequest) -> Result<ConvertOutcome, GateError>;

    /// Adds `delta` to `on_hand` (a movement); returns the new counters.
    async fn apply_on_hand(
        &self,
        sku: &Sku,
        location: &LocationId,
        delta: i64,
    ) -> Result<StockLevel, GateError>;

    /// Overwrites `on_hand` and `safety` (the reconciler's repair); `reserved` is left alone
    /// because it belongs to the reservations.
    async fn set_counters(
        &self,
        sku: &Sku,
        location: &LocationId,
        on_hand: i64,
        safety: i64,
    ) -> Result<StockLevel, GateError>;

    async fn set_safety(
        &self,
        sku: &Sku,
        location: &LocationId,
        safety: i64,
    ) -> Result<StockLevel, GateError>;

    /// Counters for many keys in one round trip, in the order asked; unknown keys are zero.
    /// May be answered from this replica's copy of the counters, which is never older than the
    /// replica's own writes and follows other replicas' writes as the change feed delivers them.
    async fn levels(&self, keys: &[(Sku, LocationId)]) -> Result<Vec<StockLevel>, GateError>;

    /// [`ReservationGate::levels`] of every SKU at every location, SKU by SKU: what an
    /// availability answer reads. A gate with a cache answers it without building the
    /// `skus × locations` keys.
    async fn levels_grid(
        &self,
        skus: &[Sku],
        locations: &[&LocationId],
    ) -> Result<Vec<StockLevel>, GateError> {
        let keys: Vec<(Sku, LocationId)> = skus
            .iter()
            .flat_map(|sku| locations.iter().map(|l| (sku.clone(), (*l).clone())))
            .collect();
        self.levels(&keys).await
    }

    /// [`ReservationGate::levels`] as stored in the gate right now, never from a cache: what the
    /// reconciler compares with PostgreSQL.
    async fn stored_levels(
        &self,
        keys: &[(Sku, LocationId)],
    ) -> Result<Vec<StockLevel>, GateError> {
        self.levels(keys).await
    }

    /// Capacity units taken, per (location, local day), in one round trip, in the order asked.
    async fn capacities_used(
        &self,
        claims: &[(LocationId, CapacityDay)],
    ) -> Result<Vec<u32>, GateError>;

    async fn capacity_used(
        &self,
        location: &LocationId,
        day: CapacityDay,
    ) -> Result<u32, GateError> {
        let used = self.capacities_used(&[(location.clone(), day)]).await?;
        Ok(used.first().copied().unwrap_or(0))
    }

    async fn get(&self, id: &ReservationId) -> Result<Option<HoldRecord>, GateError>;

    /// Unconfirmed holds whose expiry is at or before `now`, oldest first.
    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError>;

    /// PENDING holds created at or before `before`, oldest first: candidates for the reaper,
    /// which checks PostgreSQL before undoing anything.
    async fn pending_older_than(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError>;

    async fn status(&self) -> Result<GateStatus, GateError>;

    /// Takes the rebuild lock for `lock_ttl`, writes `epoch` and raises the rebuilding flag.
    /// `false` when another rebuild holds the lock.
    async fn begin_rebuild(&self, epoch: Epoch, lock_ttl: Duration) -> Result<bool, GateError>;

    /// Replaces every counter, reservation and capacity counter with the snapshot. Only while
    /// rebuilding under `snapshot.epoch`.
    async fn load(&self, snapshot: RebuildSnapshot) -> Result<(), GateError>;

    /// Lowers the rebuilding flag and the lock, and tells subscribers to re-snapshot.
    async fn finish_rebuild(&self, epoch: Epoch) -> Result<(), GateError>;

    /// Every counter change, from every replica, once the subscription is live.
    async fn subscribe(&self) -> Result<FeedStream, GateError>;
}

/// Lines as a set: two requests are the same when they hold the same amounts on the same keys,
/// in whatever order they were written.
pub fn fingerprint(lines: &[ReservationLine]) -> String {
    let mut parts: Vec<String> = lines
        .iter()
        .map(|l| format!("{}|{}|{}", l.sku, l.location, l.qty))
        .collect();
    parts.sort();
    parts.join(";")
}

/// The fingerprint as stored in PostgreSQL: a SHA-256 of it, so a 100-line reservation fits the
/// column (the gate keeps the text, which its Lua scripts compute themselves).
pub fn fingerprint_digest(lines: &[ReservationLine]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fingerprint(lines).as_bytes()))
}

#[cfg(test)]
mod tests {
    use omni_types::{LocationId, Quantity, Sku};

    use super::*;

    #[test]
    fn the_stored_fingerprint_fits_its_column_whatever_the_lines() {
        let lines: Vec<ReservationLine> = (0..100)
            .map(|i| {
                ReservationLine::new(
                    Sku::parse(format!("SKU-{i:060}")).unwrap(),
                    LocationId::parse(format!("store-{i}")).unwrap(),
                    Quantity::parse(1).unwrap(),
                )
            })
            .collect();
        let digest = fingerprint_digest(&lines);
        assert_eq!(digest.len(), 64);
        let mut reversed = lines.clone();
        reversed.reverse();
        assert_eq!(
            fingerprint_digest(&reversed),
            digest,
            "order does not matter"
        );
    }
}
