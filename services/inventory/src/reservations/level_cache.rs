//! This replica's copy of the stock counters it has read, kept current by the gate's change
//! feed, so an availability answer over 20 SKUs × 200 locations reads memory instead of 4,000
//! Redis hashes (which kept Redis's one core busy at ~110 such answers a second).
//!
//! Every counter change in Redis takes the next number of one sequence (`P:seq`) in the same
//! script step, and is published with it; a read from Redis returns the sequence number it saw.
//! An entry therefore knows how new it is, and a value only ever replaces an older one:
//! - a published change updates an entry it is newer than;
//! - a read from Redis fills the keys that were missing, unless an entry is already newer;
//! - a write made by this replica updates its entries from the script's own reply, before any
//!   message arrives: a caller reads its own writes.
//!
//! Dropping entries is the one thing that can lose news: a change published while its key was
//! absent (never read, or evicted) is not kept, and a read that was in flight then would fill
//! the older value it saw. So every drop raises its shard's generation, and a fill is kept only
//! into shards whose generation did not move while it read. A lost subscription drops
//! everything and turns the cache off until the feed is back; a gap (rebuild) drops everything.
//! Absent entries are always safe: they are read from Redis.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use omni_platform::metrics::Counter;
use omni_types::{LocationId, Sku};

use crate::domain::StockLevel;

const SHARDS: usize = 16;

static LOOKUPS: Counter = Counter::new(
    "inventory_level_cache_lookups_total",
    "Stock counters asked of the replica's level cache, by result (hit, miss).",
);

/// One counter change as the gate's scripts announce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versioned {
    pub level: StockLevel,
    /// The change's number in the gate's sequence; `None` from scripts older than the sequence.
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    level: StockLevel,
    seq: u64,
}

/// Seeded per process, so keys a client chooses cannot be made to collide.
type Hasher = foldhash::fast::RandomState;

/// Locations this cache numbers at most; counters at any further location are read from Redis
/// every time, which is always correct. A retailer's catalogue of locations is far smaller.
const MAX_LOCATIONS: usize = 1 << 16;

/// One SKU's counters, indexed by location number from `base`: an availability answer over
/// 200 locations reads each SKU's row as an array instead of looking up 4,000 entries (hash
/// look-ups were ~16 % of the service's CPU for such answers). Locations are numbered in the
/// order they are first read, and a product list reads the same locations for every SKU, so a
/// row's span is dense; the cache's capacity counts slots, so a sparse row costs entries, not
/// memory.
#[derive(Default)]
struct Row {
    base: u32,
    slots: Vec<Option<Entry>>,
    filled: usize,
}

impl Row {
    fn slot(&self, location: u32) -> Option<&Option<Entry>> {
        self.slots.get(location.checked_sub(self.base)? as usize)
    }

    fn get(&self, location: u32) -> Option<&Entry> {
        self.slot(location)?.as_ref()
    }

    fn get_mut(&mut self, location: u32) -> Option<&mut Entry> {
        let index = location.checked_sub(self.base)? as usize;
        self.slots.get_mut(index)?.as_mut()
    }

    /// How many slots the row must add to hold `location`.
    fn growth_for(&self, location: u32) -> usize {
        if self.slots.is_empty() {
            return 1;
        }
        let last = self.base as usize + self.slots.len() - 1;
        let first = self.base.min(location) as usize;
        last.max(location as usize) - first + 1 - self.slots.len()
    }

    /// Sets the entry of `location`.
    fn set(&mut self, location: u32, entry: Entry) {
        if self.slots.is_empty() {
            self.base = location;
        } else if location < self.base {
            let before = (self.base - location) as usize;
            self.slots.splice(0..0, std::iter::repeat_n(None, before));
            self.base = location;
        }
        let index = (location - self.base) as usize;
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        if self.slots[index].replace(entry).is_none() {
            self.filled += 1;
        }
    }

    fn remove(&mut self, location: u32) -> bool {
        let Some(index) = location.checked_sub(self.base) else {
            return false;
        };
        let removed = self
            .slots
            .get_mut(index as usize)
            .is_some_and(|slot| slot.take().is_some());
        self.filled -= usize::from(removed);
        removed
    }
}

#[derive(Default)]
struct Shard {
    rows: HashMap<Box<str>, Row, Hasher>,
    /// Slots of every row: what the capacity bounds.
    slots: usize,
    /// Raised whenever entries are dropped; see the module docs.
    generation: u64,
}

impl Shard {
    fn drop_all(&mut self) {
        self.rows.clear();
        self.slots = 0;
        self.generation += 1;
    }

    fn entry_mut(&mut self, sku: &str, location: u32) -> Option<&mut Entry> {
        self.rows.get_mut(sku)?.get_mut(location)
    }

    fn remove(&mut self, sku: &str, location: u32) -> bool {
        let Some(row) = self.rows.get_mut(sku) else {
            return false;
        };
        if !row.remove(location) {
            return false;
        }
        if row.filled == 0 {
            self.slots -= row.slots.len();
            self.rows.remove(sku);
        }
        true
    }

    /// Slots an insert of `location` into `sku`'s row would add.
    fn growth_for(&self, sku: &str, location: u32) -> usize {
        self.rows.get(sku).map_or(1, |row| row.growth_for(location))
    }

    fn insert(&mut self, sku: &str, location: u32, entry: Entry) {
        let row = match self.rows.get_mut(sku) {
            Some(row) => row,
            None => self.rows.entry(sku.into()).or_default(),
        };
        let before = row.slots.len();
        row.set(location, entry);
        self.slots += row.slots.len() - before;
    }
}

/// The shard generations a read from Redis started under; none while the cache was dark.
#[derive(Debug, Clone)]
pub struct ReadTicket(Option<[u64; SHARDS]>);

/// A look-up's answer: counts its hits and misses, and hands out the ticket taken under the
/// same locks as the look-ups.
fn answered(
    found: Vec<Option<StockLevel>>,
    generations: [u64; SHARDS],
) -> (Vec<Option<StockLevel>>, ReadTicket) {
    let hits = found.iter().filter(|level| level.is_some()).count() as u64;
    LOOKUPS.add(hits, &[("result", "hit")]);
    LOOKUPS.add(found.len() as u64 - hits, &[("result", "miss")]);
    (found, ReadTicket(Some(generations)))
}

pub struct LevelCache {
    /// By SKU: one SKU's row lives in one shard.
    shards: Box<[RwLock<Shard>]>,
    /// Location id → its number in the rows. Only ever grows; never held with a shard's lock.
    locations: RwLock<HashMap<Box<str>, u32, Hasher>>,
    hasher: Hasher,
    per_shard: usize,
    live: AtomicBool,
}

impl LevelCache {
    /// A cache of at most `capacity` counter slots (a SKU's row spans its lowest to its
    /// highest location number); off until [`LevelCache::go_live`].
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            locations: RwLock::default(),
            hasher: Hasher::default(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            live: AtomicBool::new(false),
        }
    }

    fn shard_of(&self, sku: &str) -> usize {
        // The modulo keeps the result below SHARDS, so the cast cannot truncate.
        (self.hasher.hash_one(sku) % SHARDS as u64) as usize
    }

    fn write(&self, shard: usize) -> RwLockWriteGuard<'_, Shard> {
        // A panic while holding the lock leaves at worst a missing entry, which is safe.
        self.shards[shard]
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self, shard: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[shard]
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every shard's lock, taken in index order (as everywhere), once per call rather than
    /// once per key: an availability call looks up thousands.
    fn read_all(&self) -> Vec<RwLockReadGuard<'_, Shard>> {
        (0..SHARDS).map(|s| self.read(s)).collect()
    }

    fn write_all(&self) -> Vec<RwLockWriteGuard<'_, Shard>> {
        (0..SHARDS).map(|s| self.write(s)).collect()
    }

    /// The numbers of `locations`, `None` for one not numbered (and, with `number_new`, not
    /// numbered now because the cache names [`MAX_LOCATIONS`] already).
    fn numbers<'k>(
        &self,
        locations: impl Iterator<Item = &'k LocationId> + Clone,
        number_new: bool,
    ) -> Vec<Option<u32>> {
        let known: Vec<Option<u32>> = {
            let numbers = self
                .locations
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locations
                .clone()
                .map(|l| numbers.get(l.as_str()).copied())
                .collect()
        };
        if !number_new || known.iter().all(Option::is_some) {
            return known;
        }
        let mut numbers = self
            .locations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locations
            .map(|l| {
                if let Some(n) = numbers.get(l.as_str()) {
                    return Some(*n);
                }
                let next = u32::try_from(numbers.len())
                    .ok()
                    .filter(|n| (*n as usize) < MAX_LOCATIONS)?;
                numbers.insert(l.as_str().into(), next);
                Some(next)
            })
            .collect()
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The feed is subscribed: every change from now on will arrive. Starts from empty, since
    /// changes before the subscription may have been missed.
    pub fn go_live(&self) {
        self.drop_all();
        self.live.store(true, Ordering::SeqCst);
    }

    /// The feed is lost: nothing here can be trusted to be current any more.
    pub fn go_dark(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.drop_all();
    }

    /// Drops every entry (a gap in the feed: a rebuild replaced the counters).
    pub fn drop_all(&self) {
        for shard in 0..SHARDS {
            self.write(shard).drop_all();
        }
    }

    /// A change announced on the feed.
    pub fn changed(&self, sku: &str, location: &str, change: Versioned) {
        self.update(sku, location, change, true);
    }

    /// A change this replica's own script made (its reply), possibly before the feed told.
    pub fn wrote(&self, sku: &str, location: &str, change: Versioned) {
        self.update(sku, location, change, false);
    }

    fn update(&self, sku: &str, location: &str, change: Versioned, from_feed: bool) {
        if !self.is_live() {
            return;
        }
        // A location without a number has no entry anywhere.
        let number = self
            .locations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(location)
            .copied();
        let mut shard = self.write(self.shard_of(sku));
        let Some(seq) = change.seq else {
            // No order to compare by: forget the key, and any fill racing this change.
            let removed = number.is_some_and(|n| shard.remove(sku, n));
            if removed || from_feed {
                shard.generation += 1;
            }
            return;
        };
        match number.and_then(|n| shard.entry_mut(sku, n)) {
            Some(entry) if entry.seq < seq => {
                *entry = Entry {
                    level: change.level,
                    seq,
                };
            }
            Some(_) => {}
            // Not kept (memory stays proportional to what is read), so a fill in flight may
            // hold an older value of this key: it must not be kept either.
            None if from_feed => shard.generation += 1,
            // Our own write, absent here: the next read fetches it from Redis.
            None => {}
        }
    }

    /// The cached counters of `keys`, `None` where absent, and the ticket a read from Redis of
    /// the absent ones must fill with.
    pub fn lookup(&self, keys: &[(Sku, LocationId)]) -> (Vec<Option<StockLevel>>, ReadTicket) {
        if !self.is_live() {
            return (vec![None; keys.len()], ReadTicket(None));
        }
        let numbers = self.numbers(keys.iter().map(|(_, l)| l), false);
        let shards = self.read_all();
        // Under the same locks as the lookups: a drop after them voids the fill.
        let generations: [u64; SHARDS] = std::array::from_fn(|s| shards[s].generation);
        // Callers ask SKU by SKU over many locations: find each SKU's row once per run.
        let mut current: Option<(&str, Option<&Row>)> = None;
        let found: Vec<Option<StockLevel>> = keys
            .iter()
            .zip(numbers)
            .map(|((sku, _), number)| {
                let row = match current {
                    Some((seen, row)) if seen == sku.as_str() => row,
                    _ => {
                        let row = shards[self.shard_of(sku.as_str())].rows.get(sku.as_str());
                        current = Some((sku.as_str(), row));
                        row
                    }
                };
                number
                    .and_then(|n| row.and_then(|r| r.get(n)))
                    .map(|e| e.level)
            })
            .collect();
        drop(shards);
        answered(found, generations)
    }

    /// [`LevelCache::lookup`] of every SKU at every location, SKU by SKU: each location is
    /// numbered and each SKU's row found once, not once per key.
    pub fn lookup_grid(
        &self,
        skus: &[Sku],
        locations: &[&LocationId],
    ) -> (Vec<Option<StockLevel>>, ReadTicket) {
        let cells = skus.len() * locations.len();
        if !self.is_live() {
            return (vec![None; cells], ReadTicket(None));
        }
        let numbers = self.numbers(locations.iter().copied(), false);
        let shards = self.read_all();
        let generations: [u64; SHARDS] = std::array::from_fn(|s| shards[s].generation);
        let mut found = Vec::with_capacity(cells);
        for sku in skus {
            let row = shards[self.shard_of(sku.as_str())].rows.get(sku.as_str());
            found.extend(numbers.iter().map(|number| {
                number
                    .and_then(|n| row.and_then(|r| r.get(n)))
                    .map(|e| e.level)
            }));
        }
        drop(shards);
        answered(found, generations)
    }

    /// Keeps what a read from Redis saw (`levels[i]` of `keys[i]`, at sequence `seq`), where
    /// nothing newer is known and no entry of the shard was dropped since `ticket` was taken.
    pub fn fill<'a>(
        &self,
        ticket: &ReadTicket,
        seq: u64,
        read: impl IntoIterator<Item = (&'a (Sku, LocationId), StockLevel)>,
    ) {
        let Some(generations) = ticket.0.filter(|_| self.is_live()) else {
            return;
        };
        let read: Vec<_> = read.into_iter().collect();
        let numbers = self.numbers(read.iter().map(|((_, l), _)| l), true);
        let mut shards = self.write_all();
        for (((sku, _), level), number) in read.into_iter().zip(numbers) {
            let Some(number) = number else { continue };
            let shard_index = self.shard_of(sku.as_str());
            let shard = &mut shards[shard_index];
            if shard.generation != generations[shard_index] {
                continue;
            }
            if let Some(entry) = shard.entry_mut(sku.as_str(), number) {
                if entry.seq < seq {
                    *entry = Entry { level, seq };
                }
                continue;
            }
            let growth = shard.growth_for(sku.as_str(), number);
            if growth > self.per_shard {
                // A row this sparse would never fit: that key is read from Redis each time.
                continue;
            }
            if shard.slots + growth > self.per_shard {
                // Full: start the shard afresh rather than track recency on every hit.
                shard.drop_all();
                continue;
            }
            shard.insert(sku.as_str(), number, Entry { level, seq });
        }
    }

    /// Slots held, filled or not: what the capacity bounds.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|s| self.read(s).slots).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sku: &str, location: &str) -> (Sku, LocationId) {
        (
            Sku::parse(sku.to_owned()).unwrap(),
            LocationId::parse(location.to_owned()).unwrap(),
        )
    }

    fn level(on_hand: i64) -> StockLevel {
        StockLevel::new(on_hand, 0, 0)
    }

    fn at(on_hand: i64, seq: u64) -> Versioned {
        Versioned {
            level: level(on_hand),
            seq: Some(seq),
        }
    }

    fn live(capacity: usize) -> LevelCache {
        let cache = LevelCache::new(capacity);
        cache.go_live();
        cache
    }

    fn cached(cache: &LevelCache, k: &(Sku, LocationId)) -> Option<StockLevel> {
        cache.lookup(std::slice::from_ref(k)).0[0]
    }

    #[test]
    fn a_dark_cache_answers_nothing_and_keeps_nothing() {
        let cache = LevelCache::new(100);
        let k = key("SKU-1", "wh-1");
        let (found, ticket) = cache.lookup(std::slice::from_ref(&k));
        assert_eq!(found, vec![None]);
        cache.fill(&ticket, 1, [(&k, level(5))]);
        cache.go_live();
        assert_eq!(cached(&cache, &k), None);
    }

    #[test]
    fn a_fill_is_kept_and_newer_changes_replace_it() {
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.fill(&ticket, 10, [(&k, level(5))]);
        assert_eq!(cached(&cache, &k), Some(level(5)));

        cache.changed("SKU-1", "wh-1", at(4, 9));
        assert_eq!(
            cached(&cache, &k),
            Some(level(5)),
            "an older change is ignored"
        );
        cache.changed("SKU-1", "wh-1", at(3, 11));
        assert_eq!(cached(&cache, &k), Some(level(3)));
        cache.wrote("SKU-1", "wh-1", at(2, 12));
        assert_eq!(
            cached(&cache, &k),
            Some(level(2)),
            "own writes are read back"
        );
    }

    #[test]
    fn a_fill_never_replaces_a_newer_entry() {
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.fill(&ticket, 10, [(&k, level(5))]);
        let (_, late) = cache.lookup(std::slice::from_ref(&k));
        cache.changed("SKU-1", "wh-1", at(7, 12));
        cache.fill(&late, 11, [(&k, level(6))]);
        assert_eq!(cached(&cache, &k), Some(level(7)));
    }

    #[test]
    fn a_change_to_an_absent_key_voids_a_fill_in_flight() {
        // The read saw seq 10; the change (seq 11) arrived before the fill, while the key was
        // absent: keeping the fill would keep the older value.
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.changed("SKU-1", "wh-1", at(4, 11));
        cache.fill(&ticket, 10, [(&k, level(5))]);
        assert_eq!(cached(&cache, &k), None);
    }

    #[test]
    fn an_unnumbered_change_forgets_the_key() {
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.fill(&ticket, 10, [(&k, level(5))]);
        cache.changed(
            "SKU-1",
            "wh-1",
            Versioned {
                level: level(1),
                seq: None,
            },
        );
        assert_eq!(cached(&cache, &k), None);
    }

    #[test]
    fn own_writes_to_absent_keys_are_not_kept() {
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        cache.wrote("SKU-1", "wh-1", at(4, 11));
        assert_eq!(cached(&cache, &k), None);
    }

    #[test]
    fn a_gap_or_a_lost_feed_drops_everything_and_voids_fills() {
        let cache = live(100);
        let k = key("SKU-1", "wh-1");
        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.fill(&ticket, 10, [(&k, level(5))]);
        let (_, in_flight) = cache.lookup(std::slice::from_ref(&k));
        cache.drop_all();
        assert_eq!(cached(&cache, &k), None);
        cache.fill(&in_flight, 12, [(&k, level(6))]);
        assert_eq!(cached(&cache, &k), None);

        let (_, ticket) = cache.lookup(std::slice::from_ref(&k));
        cache.fill(&ticket, 13, [(&k, level(6))]);
        cache.go_dark();
        assert!(!cache.is_live());
        assert_eq!(cached(&cache, &k), None);
        cache.changed("SKU-1", "wh-1", at(1, 14));
        cache.go_live();
        assert!(cache.is_empty());
    }

    #[test]
    fn each_key_answers_its_own_counter_over_many_skus_and_locations() {
        let cache = live(10_000);
        let keys: Vec<_> = (0..20)
            .flat_map(|s| (0..50).map(move |l| key(&format!("SKU-{s}"), &format!("wh-{l}"))))
            .collect();
        let expected = |i: usize| level(i as i64 + 1);
        let (_, ticket) = cache.lookup(&keys);
        // Filled in another order than it is asked in, and every other key only.
        cache.fill(
            &ticket,
            1,
            keys.iter()
                .enumerate()
                .rev()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(i, k)| (k, expected(i))),
        );
        let (found, _) = cache.lookup(&keys);
        for (i, level) in found.into_iter().enumerate() {
            assert_eq!(level, (i % 2 == 0).then(|| expected(i)), "key {i}");
        }
        cache.changed("SKU-3", "wh-8", at(99, 2));
        assert_eq!(cached(&cache, &key("SKU-3", "wh-8")), Some(level(99)));
        assert_eq!(cached(&cache, &key("SKU-7", "wh-3")), None);
        assert_eq!(cached(&cache, &key("SKU-3", "wh-unseen")), None);
    }

    #[test]
    fn a_grid_lookup_answers_as_the_same_keys_looked_up_one_by_one() {
        let cache = live(1_000);
        let skus: Vec<Sku> = (0..4)
            .map(|s| Sku::parse(format!("SKU-{s}")).unwrap())
            .collect();
        let locations: Vec<LocationId> = (0..6)
            .map(|l| LocationId::parse(format!("wh-{l}")).unwrap())
            .collect();
        let keys: Vec<(Sku, LocationId)> = skus
            .iter()
            .flat_map(|s| locations.iter().map(|l| (s.clone(), l.clone())))
            .collect();
        let locations: Vec<&LocationId> = locations.iter().collect();
        let (dark, _) = cache.lookup_grid(&skus, &locations);
        assert_eq!(dark, vec![None; 24]);
        let (_, ticket) = cache.lookup_grid(&skus, &locations);
        // Every third key filled: the grid must place hits and misses where they belong.
        cache.fill(
            &ticket,
            1,
            keys.iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == 0)
                .map(|(i, k)| (k, level(i as i64 + 1))),
        );
        let (grid, _) = cache.lookup_grid(&skus, &locations);
        let (one_by_one, _) = cache.lookup(&keys);
        assert_eq!(grid, one_by_one);
        assert_eq!(grid[9], Some(level(10)));
        assert_eq!(grid[10], None);
        let (none_asked, _) = cache.lookup_grid(&skus, &[]);
        assert!(none_asked.is_empty());
    }

    /// Fills `keys` in one read, each with `level(on_hand)` of its position.
    fn fill_all(cache: &LevelCache, keys: &[(Sku, LocationId)], on_hand: impl Fn(usize) -> i64) {
        let (_, ticket) = cache.lookup(keys);
        cache.fill(
            &ticket,
            1,
            keys.iter().enumerate().map(|(i, k)| (k, level(on_hand(i)))),
        );
    }

    #[test]
    fn a_row_grows_towards_lower_numbers_and_keeps_what_it_held() {
        let cache = live(1_000);
        let numbered: Vec<_> = (0..5).map(|i| key("SKU-B", &format!("wh-{i}"))).collect();
        fill_all(&cache, &numbered, |i| i as i64 + 1);
        // SKU-A's row starts at wh-3's number, then takes wh-0 below it and wh-4 above.
        for (location, on_hand) in [("wh-3", 30), ("wh-0", 0), ("wh-4", 40)] {
            fill_all(&cache, &[key("SKU-A", location)], |_| on_hand);
        }
        let skus = [Sku::parse("SKU-A".to_owned()).unwrap()];
        let locations: Vec<_> = numbered.iter().map(|(_, l)| l).collect();
        let (row, _) = cache.lookup_grid(&skus, &locations);
        assert_eq!(
            row,
            vec![Some(level(0)), None, None, Some(level(30)), Some(level(40))]
        );
        let (b, _) = cache.lookup(&numbered);
        assert_eq!(b, (1..=5).map(|n| Some(level(n))).collect::<Vec<_>>());
    }

    #[test]
    fn a_row_too_sparse_for_a_shard_is_not_kept_and_drops_nothing() {
        let cache = live(8 * SHARDS);
        // Numbers wh-0 to wh-19; whatever of this row stays takes at most 2 of a shard's 8.
        let numbering: Vec<_> = (0..20).map(|i| key("SKU-N", &format!("wh-{i}"))).collect();
        fill_all(&cache, &numbering, |_| 1);
        let near = key("SKU-X", "wh-0");
        let sparse = key("SKU-X", "wh-19");
        fill_all(&cache, std::slice::from_ref(&near), |_| 7);
        fill_all(&cache, std::slice::from_ref(&sparse), |_| 8);
        assert_eq!(cached(&cache, &near), Some(level(7)));
        assert_eq!(cached(&cache, &sparse), None, "20 slots exceed a shard's 8");
    }

    #[test]
    fn forgetting_every_entry_of_a_row_gives_its_slots_back() {
        let cache = live(1_000);
        let keys: Vec<_> = (0..3).map(|i| key("SKU-1", &format!("wh-{i}"))).collect();
        fill_all(&cache, &keys, |_| 1);
        assert_eq!(cache.len(), 3);
        let unnumbered = Versioned {
            level: level(0),
            seq: None,
        };
        for (_, location) in &keys {
            cache.changed("SKU-1", location.as_str(), unnumbered);
        }
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn memory_stays_within_capacity() {
        let cache = live(64);
        let keys: Vec<_> = (0..1_000)
            .map(|i| key(&format!("SKU-{i}"), "wh-1"))
            .collect();
        for chunk in keys.chunks(50) {
            let (_, ticket) = cache.lookup(chunk);
            cache.fill(&ticket, 1, chunk.iter().map(|k| (k, level(1))));
            assert!(cache.len() <= 64 + SHARDS, "{} entries", cache.len());
        }
        // What is kept is still right.
        let (found, _) = cache.lookup(&keys);
        assert!(found.iter().flatten().all(|l| *l == level(1)));
    }
}
