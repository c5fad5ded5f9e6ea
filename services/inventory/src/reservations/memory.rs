//! In-process adapter of the reservation gate, for the embedded default (one process).
//!
//! All state sits behind one mutex, so each operation is atomic exactly as a Lua script is in
//! Redis; the change feed is a broadcast channel, and a receiver that falls behind gets `Gap`.
//! The transitions themselves are the domain's ([`Reservation::commit`] and friends), so this
//! adapter is also the reference the Redis scripts are tested against.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omni_types::{LocationId, ReservationId, Sku};
use tokio::sync::broadcast;

use super::{
    AvailabilityChange, CapacityClaim, ConvertOutcome, ConvertRequest, Epoch, FeedEvent,
    FeedStream, GateError, GateStatus, HoldOutcome, HoldRecord, HoldRequest, HoldState,
    RebuildSnapshot, ReservationGate, Shortfall, TOMBSTONE_TTL, fingerprint,
};
use crate::domain::{
    CapacityDay, LineEffect, LineSelection, Reservation, ReservationLine, ReservationStatus,
    StateError, StockLevel,
};

type Key = (Sku, LocationId);

/// Enough for a burst of changes; a slower watcher gets `Gap` and re-snapshots.
const FEED_CAPACITY: usize = 4096;

struct Entry {
    record: HoldRecord,
    /// When it finished, to forget tombstones after [`TOMBSTONE_TTL`] like Redis does.
    finished_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    epoch: Option<Epoch>,
    rebuilding: bool,
    lock_until: Option<Instant>,
    levels: HashMap<Key, StockLevel>,
    records: HashMap<ReservationId, Entry>,
    capacity: HashMap<(LocationId, CapacityDay), u32>,
}

pub struct MemoryGate {
    state: Mutex<State>,
    feed: broadcast::Sender<FeedEvent>,
}

impl Default for MemoryGate {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryGate {
    /// An empty gate with no epoch: like a fresh Redis, it must be rebuilt before it holds stock.
    pub fn new() -> Self {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        Self {
            state: Mutex::new(State::default()),
            feed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied step: every operation
        // checks before it writes, so the state is still consistent and worth using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, sku: &Sku, location: &LocationId, level: StockLevel) {
        // No receivers is not an error: nobody is watching.
        let _ = self.feed.send(FeedEvent::Change(AvailabilityChange {
            sku: sku.clone(),
            location: location.clone(),
            level,
        }));
    }

    /// Runs `f` on writable state, publishing the counters of the keys it reports as changed.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<(T, Vec<Key>), GateError>,
    ) -> Result<T, GateError> {
        let mut state = self.lock();
        if state.rebuilding {
            return Err(GateError::Unavailable("rebuilding".into()));
        }
        if state.epoch.is_none() {
            return Err(GateError::Unavailable("epoch missing".into()));
        }
        state.forget_old_tombstones();
        let (value, changed) = f(&mut state)?;
        // Published under the lock so watchers see changes in the order they were made.
        for key in changed {
            let level = state.level(&key);
            self.publish(&key.0, &key.1, level);
        }
        Ok(value)
    }
}

impl State {
    fn level(&self, key: &Key) -> StockLevel {
        self.levels.get(key).copied().unwrap_or_default()
    }

    fn level_mut(&mut self, key: Key) -> &mut StockLevel {
        self.levels.entry(key).or_default()
    }

    fn forget_old_tombstones(&mut self) {
        self.records
            .retain(|_, e| e.finished_at.is_none_or(|at| at.elapsed() < TOMBSTONE_TTL));
    }

    fn check_epoch(&self, epoch: Epoch) -> Result<(), GateError> {
        if self.epoch == Some(epoch) {
            Ok(())
        } else {
            Err(GateError::EpochMismatch {
                current: self.epoch,
            })
        }
    }

    fn duplicate(
        &self,
        id: &ReservationId,
        lines: &[ReservationLine],
    ) -> Option<(HoldState, bool)> {
        self.records.get(id).map(|e| {
            let same = fingerprint(&e.record.reservation.requested_lines()) == fingerprint(lines);
            (e.record.state, same)
        })
    }

    fn full_locations(&self, claims: &[(LocationId, CapacityDay, u32)]) -> Vec<LocationId> {
        claims
            .iter()
            .filter(|(l, d, limit)| {
                self.capacity.get(&(l.clone(), *d)).copied().unwrap_or(0) + 1 > *limit
            })
            .map(|(l, _, _)| l.clone())
            .collect()
    }

    fn take_capacity(
        &mut self,
        claims: &[(LocationId, CapacityDay, u32)],
    ) -> Vec<(LocationId, CapacityDay)> {
        claims
            .iter()
            .map(|(l, d, _)| {
                *self.capacity.entry((l.clone(), *d)).or_default() += 1;
                (l.clone(), *d)
            })
            .collect()
    }

    fn give_back_capacity(&mut self, taken: &[(LocationId, CapacityDay)]) {
        for (l, d) in taken {
            if let Some(used) = self.capacity.get_mut(&(l.clone(), *d)) {
                *used = used.saturating_sub(1);
            }
        }
    }

    fn held_entry(&mut self, id: &ReservationId) -> Result<&mut Entry, GateError> {
        self.records.get_mut(id).ok_or(GateError::NotFound)
    }

    /// Applies a settled transition's effects to the counters.
    fn apply_effects(&mut self, effects: &[LineEffect], commit: bool) -> Vec<Key> {
        effects
            .iter()
            .map(|e| {
                let key = (e.sku.clone(), e.location.clone());
                let level = self.level_mut(key.clone());
                level.reserved -= i64::from(e.qty);
                if commit {
                    level.on_hand -= i64::from(e.qty);
                }
                key
            })
            .collect()
    }
}

/// One unit per (location, day), however many claims name it.
fn dedup_claims(claims: &[CapacityClaim]) -> Vec<(LocationId, CapacityDay, u32)> {
    let mut out: Vec<(LocationId, CapacityDay, u32)> = Vec::with_capacity(claims.len());
    for c in claims {
        if !out.iter().any(|(l, d, _)| *l == c.location && *d == c.day) {
            out.push((c.location.clone(), c.day, c.daily_limit));
        }
    }
    out
}

fn finish(entry: &mut Entry) {
    if entry.record.reservation.status != ReservationStatus::Held {
        entry.record.state = HoldState::Finished(entry.record.reservation.status);
        entry.finished_at = Some(Instant::now());
    }
}

impl MemoryGate {
    fn settle(
        &self,
        id: &ReservationId,
        commit: bool,
        transition: impl FnOnce(&mut Reservation) -> Result<Vec<LineEffect>, StateError>,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.write(|state| {
            let entry = state.held_entry(id)?;
            let mut next = entry.record.reservation.clone();
            let effects = transition(&mut next)?;
            let expired = next.status == ReservationStatus::Expired;
            entry.record.reservation = next;
            finish(entry);
            let taken = entry.record.capacity.clone();
            if expired {
                state.give_back_capacity(&taken);
            }
            let changed = state.apply_effects(&effects, commit);
            Ok((effects, changed))
        })
    }

    fn counters(
        &self,
        sku: &Sku,
        location: &LocationId,
        change: impl FnOnce(&mut StockLevel),
    ) -> Result<StockLevel, GateError> {
        self.write(|state| {
            let key = (sku.clone(), location.clone());
            let level = state.level_mut(key.clone());
            change(level);
            Ok((*level, vec![key]))
        })
    }
}

#[async_trait]
impl ReservationGate for MemoryGate {
    async fn reserve(&self, request: HoldRequest) -> Result<HoldOutcome, GateError> {
        self.write(|state| {
            state.check_epoch(request.epoch)?;
            if let Some((dup, same_lines)) = state.duplicate(&request.id, &request.lines) {
                return Ok((
                    HoldOutcome::Duplicate {
                        state: dup,
                        same_lines,
                    },
                    vec![],
                ));
            }
            // Summed per key, so even a request that names a key twice cannot oversell.
            let mut need: Vec<(Key, u32)> = Vec::with_capacity(request.lines.len());
            for l in &request.lines {
                let key = (l.sku.clone(), l.location.clone());
                match need.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += l.qty.get(),
                    None => need.push((key, l.qty.get())),
                }
            }
            let short: Vec<Shortfall> = need
                .into_iter()
                .filter_map(|(key, requested)| {
                    let available = state.level(&key).available();
                    (i64::from(requested) > available).then_some(Shortfall {
                        sku: key.0,
                        location: key.1,
                        requested,
                        available,
                    })
                })
                .collect();
            if !short.is_empty() {
                return Ok((HoldOutcome::Insufficient(short), vec![]));
            }
            let claims = dedup_claims(&request.capacity);
            let full = state.full_locations(&claims);
            if !full.is_empty() {
                return Ok((HoldOutcome::CapacityExhausted(full), vec![]));
            }
            let mut changed = Vec::with_capacity(request.lines.len());
            for l in &request.lines {
                let key = (l.sku.clone(), l.location.clone());
                state.level_mut(key.clone()).reserved += l.qty.as_i64();
                changed.push(key);
            }
            let capacity = state.take_capacity(&claims);
            let reservation =
                Reservation::hold(request.id.clone(), request.lines, request.expires_at);
            state.records.insert(
                request.id,
                Entry {
                    record: HoldRecord {
                        reservation,
                        state: HoldState::Pending,
                        epoch: request.epoch,
                        created_at: request.now,
                        capacity,
                    },
                    finished_at: None,
                },
            );
            let mut levels: Vec<(Sku, LocationId, StockLevel)> = Vec::new();
            for key in &changed {
                if !levels.iter().any(|(s, l, _)| (s, l) == (&key.0, &key.1)) {
                    levels.push((key.0.clone(), key.1.clone(), state.level(key)));
                }
            }
            Ok((HoldOutcome::Held { levels }, changed))
        })
    }

    async fn mark_durable(&self, id: &ReservationId) -> Result<(), GateError> {
        self.write(|state| {
            let entry = state.held_entry(id)?;
            if entry.record.state == HoldState::Pending {
                entry.record.state = HoldState::Durable;
            }
            Ok(((), vec![]))
        })
    }

    async fn undo(&self, id: &ReservationId) -> Result<(), GateError> {
        self.write(|state| {
            let entry = state.held_entry(id)?;
            match entry.record.state {
                HoldState::Pending => {}
                HoldState::Durable => return Err(StateError::Durable.into()),
                HoldState::Finished(from) => {
                    return Err(StateError::InvalidTransition {
                        from,
                        to: ReservationStatus::Released,
                    }
                    .into());
                }
            }
            let mut reservation = entry.record.reservation.clone();
            let taken = entry.record.capacity.clone();
            let effects = reservation.release(&LineSelection::All)?;
            state.records.remove(id);
            state.give_back_capacity(&taken);
            let changed = state.apply_effects(&effects, false);
            Ok(((), changed))
        })
    }

    async fn confirm(&self, id: &ReservationId) -> Result<(), GateError> {
        self.write(|state| {
            state.held_entry(id)?.record.reservation.confirm()?;
            Ok(((), vec![]))
        })
    }

    async fn extend(&self, id: &ReservationId, expires_at: DateTime<Utc>) -> Result<(), GateError> {
        self.write(|state| {
            state
                .held_entry(id)?
                .record
                .reservation
                .extend(expires_at)?;
            Ok(((), vec![]))
        })
    }

    async fn commit(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle(id, true, |r| r.commit(lines))
    }

    async fn release(
        &self,
        id: &ReservationId,
        lines: &LineSelection,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle(id, false, |r| r.release(lines))
    }

    async fn expire(
        &self,
        id: &ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LineEffect>, GateError> {
        self.settle(id, false, |r| r.expire(now))
    }

    async fn convert(&self, request: ConvertRequest) -> Result<ConvertOutcome, GateError> {
        self.write(|state| {
            state.check_epoch(request.epoch)?;
            let hold = &state.held_entry(&request.hold_id)?.record;
            if let HoldState::Finished(from) = hold.state {
                return Err(StateError::InvalidTransition {
                    from,
                    to: ReservationStatus::Committed,
                }
                .into());
            }
            let lines: Vec<ReservationLine> = hold
                .reservation
                .lines
                .iter()
                .filter_map(|l| {
                    omni_types::Quantity::parse(i64::from(l.remaining()))
                        .ok()
                        .map(|qty| {
                            ReservationLine::new(l.line.sku.clone(), l.line.location.clone(), qty)
                        })
                })
                .collect();
            let hold_capacity = hold.capacity.clone();
            if let Some((dup, same_lines)) = state.duplicate(&request.order_id, &lines) {
                return Ok((
                    ConvertOutcome::Duplicate {
                        state: dup,
                        same_lines,
                    },
                    vec![],
                ));
            }
            let claims = dedup_claims(&request.capacity);
            let full = state.full_locations(&claims);
            if !full.is_empty() {
                return Ok((ConvertOutcome::CapacityExhausted(full), vec![]));
            }
            state.records.remove(&request.hold_id);
            state.give_back_capacity(&hold_capacity);
            let capacity = state.take_capacity(&claims);
            let reservation =
                Reservation::hold(request.order_id.clone(), lines, request.expires_at);
            state.records.insert(
                request.order_id,
                Entry {
                    record: HoldRecord {
                        reservation,
                        state: HoldState::Pending,
                        epoch: request.epoch,
                        created_at: request.now,
                        capacity,
                    },
                    finished_at: None,
                },
            );
            Ok((ConvertOutcome::Converted, vec![]))
        })
    }

    async fn apply_on_hand(
        &self,
        sku: &Sku,
        location: &LocationId,
        delta: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(sku, location, |l| l.on_hand += delta)
    }

    async fn set_counters(
        &self,
        sku: &Sku,
        location: &LocationId,
        on_hand: i64,
        safety: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(sku, location, |l| {
            l.on_hand = on_hand;
            l.safety_stock = safety;
        })
    }

    async fn set_safety(
        &self,
        sku: &Sku,
        location: &LocationId,
        safety: i64,
    ) -> Result<StockLevel, GateError> {
        self.counters(sku, location, |l| l.safety_stock = safety)
    }

    async fn levels(&self, keys: &[(Sku, LocationId)]) -> Result<Vec<StockLevel>, GateError> {
        let state = self.lock();
        Ok(keys.iter().map(|k| state.level(k)).collect())
    }

    async fn capacities_used(
        &self,
        claims: &[(LocationId, CapacityDay)],
    ) -> Result<Vec<u32>, GateError> {
        let state = self.lock();
        Ok(claims
            .iter()
            .map(|(location, day)| {
                state
                    .capacity
                    .get(&(location.clone(), *day))
                    .copied()
                    .unwrap_or(0)
            })
            .collect())
    }

    async fn get(&self, id: &ReservationId) -> Result<Option<HoldRecord>, GateError> {
        let state = self.lock();
        Ok(state.records.get(id).map(|e| e.record.clone()))
    }

    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError> {
        let state = self.lock();
        let mut due: Vec<(DateTime<Utc>, &ReservationId)> = state
            .records
            .iter()
            .filter(|(_, e)| e.record.reservation.status == ReservationStatus::Held)
            .filter_map(|(id, e)| e.record.reservation.expires_at.map(|at| (at, id)))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        Ok(due
            .into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn pending_older_than(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReservationId>, GateError> {
        let state = self.lock();
        let mut pending: Vec<(DateTime<Utc>, &ReservationId)> = state
            .records
            .iter()
            .filter(|(_, e)| e.record.state == HoldState::Pending && e.record.created_at <= before)
            .map(|(id, e)| (e.record.created_at, id))
            .collect();
        pending.sort();
        Ok(pending
            .into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn status(&self) -> Result<GateStatus, GateError> {
        let state = self.lock();
        Ok(match (state.rebuilding, state.epoch) {
            (true, _) => GateStatus::Rebuilding,
            (false, None) => GateStatus::Missing,
            (false, Some(epoch)) => GateStatus::Ready { epoch },
        })
    }

    async fn begin_rebuild(&self, epoch: Epoch, lock_ttl: Duration) -> Result<bool, GateError> {
        let mut state = self.lock();
        let now = Instant::now();
        if state.lock_until.is_some_and(|until| until > now) {
            return Ok(false);
        }
        state.lock_until = Some(now + lock_ttl);
        state.epoch = Some(epoch);
        state.rebuilding = true;
        Ok(true)
    }

    async fn load(&self, snapshot: RebuildSnapshot) -> Result<(), GateError> {
        let mut state = self.lock();
        if !state.rebuilding || state.epoch != Some(snapshot.epoch) {
            return Err(GateError::EpochMismatch {
                current: state.epoch,
            });
        }
        state.levels = snapshot
            .levels
            .into_iter()
            .map(|(sku, location, level)| ((sku, location), level))
            .collect();
        state.records = snapshot
            .holds
            .into_iter()
            .map(|record| {
                let finished_at = matches!(record.state, HoldState::Finished(_)).then(Instant::now);
                (
                    record.reservation.id.clone(),
                    Entry {
                        record,
                        finished_at,
                    },
                )
            })
            .collect();
        state.capacity = snapshot
            .capacity
            .into_iter()
            .map(|(l, d, used)| ((l, d), used))
            .collect();
        Ok(())
    }

    async fn finish_rebuild(&self, epoch: Epoch) -> Result<(), GateError> {
        let mut state = self.lock();
        state.check_epoch(epoch)?;
        state.rebuilding = false;
        state.lock_until = None;
        let _ = self.feed.send(FeedEvent::Gap);
        Ok(())
    }

    async fn subscribe(&self) -> Result<FeedStream, GateError> {
        let rx = self.feed.subscribe();
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((event, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((FeedEvent::Gap, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })))
    }
}
