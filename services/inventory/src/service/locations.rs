//! Locations and channel pools, served from an in-memory catalogue.
//!
//! Every reservation and availability read needs them, and they change rarely: reading them from
//! PostgreSQL per call would put the database on the path a flash sale must keep free of it. The
//! catalogue is reloaded by the first call that finds it older than [`CATALOGUE_TTL`] (the
//! others go on with it meanwhile), and at once on this replica after a change; other replicas see
//! a change within the TTL plus one load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omni_types::{ChannelId, LocationId};

use super::{Inventory, InventoryError};
use crate::domain::{FieldViolation, InvalidRequest, Location};

/// Page size bounds of every list.
pub const MAX_PAGE_SIZE: u64 = 500;
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// How stale another replica's view of locations and pools may be.
pub const CATALOGUE_TTL: Duration = Duration::from_secs(5);

/// Locations (by id, in id order) and channel pools as last loaded.
#[derive(Debug)]
pub struct Catalogue {
    /// Shared, so an availability answer over 200 locations or a Reserve's check of each line's
    /// location copies pointers, not every location's name and address.
    locations: Vec<Arc<Location>>,
    by_id: HashMap<LocationId, usize>,
    pools: HashMap<ChannelId, Vec<LocationId>>,
    /// The active locations, and those of each channel's pool, in catalogue order: worked out
    /// once per load instead of searching the pool for each of 200 locations in every
    /// availability call (5 % of its CPU).
    active: Vec<Arc<Location>>,
    active_by_channel: HashMap<ChannelId, Vec<Arc<Location>>>,
    loaded_at: Instant,
}

impl Catalogue {
    fn fresh(&self) -> bool {
        self.loaded_at.elapsed() < CATALOGUE_TTL
    }

    /// `channel`'s pool, sorted; empty for a channel without one.
    fn pool(&self, channel: &ChannelId) -> &[LocationId] {
        self.pools.get(channel).map_or(&[], Vec::as_slice)
    }

    /// The active locations, all of them or those of `channel`'s pool (none without a pool).
    fn active_in(&self, channel: Option<&ChannelId>) -> &[Arc<Location>] {
        match channel {
            None => &self.active,
            Some(c) => self.active_by_channel.get(c).map_or(&[], Vec::as_slice),
        }
    }
}

/// The catalogue as last loaded, and who is loading the next one.
///
/// A stale catalogue is refreshed by the one caller that finds it stale first; every other caller
/// keeps answering from the stale one meanwhile. Making them all wait on that PostgreSQL load put
/// a stall into every call in flight once per TTL, which a reservation path must not have. Only a
/// replica with no catalogue at all (at start, or after a change made here) waits for the load.
#[derive(Debug, Default)]
pub(super) struct CatalogueCache {
    /// Held for a clone of the `Arc` only, never across an await.
    current: std::sync::RwLock<Option<Arc<Catalogue>>>,
    loading: tokio::sync::Mutex<()>,
    /// Bumped by every change made on this replica, so a load that read PostgreSQL before the
    /// change cannot put its older view back after the change dropped the catalogue.
    generation: AtomicU64,
}

impl CatalogueCache {
    fn current(&self) -> Option<Arc<Catalogue>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn store(&self, loaded: &Arc<Catalogue>, generation: u64) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Ordering::SeqCst) == generation {
            *current = Some(Arc::clone(loaded));
        }
    }
}

impl Inventory {
    async fn catalogue(&self) -> Result<Arc<Catalogue>, InventoryError> {
        let cache = &self.catalogue;
        match cache.current() {
            Some(current) if current.fresh() => Ok(current),
            Some(stale) => {
                let Ok(_loading) = cache.loading.try_lock() else {
                    return Ok(stale);
                };
                if let Some(current) = cache.current().filter(|c| c.fresh()) {
                    return Ok(current);
                }
                match self.load_catalogue().await {
                    Ok(loaded) => Ok(loaded),
                    Err(error) => {
                        // Locations change rarely; an answer from the last good view beats
                        // failing every call while PostgreSQL is away.
                        tracing::warn!(%error, "catalogue reload failed; serving the last one loaded");
                        Ok(stale)
                    }
                }
            }
            None => {
                let _loading = cache.loading.lock().await;
                if let Some(current) = cache.current() {
                    return Ok(current);
                }
                self.load_catalogue().await
            }
        }
    }

    /// Reads locations and pools from PostgreSQL and keeps them, unless a change on this replica
    /// happened meanwhile (its caller still gets what was read).
    async fn load_catalogue(&self) -> Result<Arc<Catalogue>, InventoryError> {
        let generation = self.catalogue.generation.load(Ordering::SeqCst);
        let locations: Vec<Arc<Location>> = self
            .store
            .all_locations()
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        let mut pools = self.store.all_pools().await?;
        // Sorted by Rust's order, not the database collation's, for `binary_search`.
        for pool in pools.values_mut() {
            pool.sort();
        }
        let by_id = locations
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id.clone(), i))
            .collect();
        let active: Vec<Arc<Location>> = locations.iter().filter(|l| l.active).cloned().collect();
        let active_by_channel = pools
            .iter()
            .map(|(channel, pool)| {
                let members = active
                    .iter()
                    .filter(|l| pool.binary_search(&l.id).is_ok())
                    .cloned()
                    .collect();
                (channel.clone(), members)
            })
            .collect();
        let loaded = Arc::new(Catalogue {
            locations,
            by_id,
            pools,
            active,
            active_by_channel,
            loaded_at: Instant::now(),
        });
        self.catalogue.store(&loaded, generation);
        Ok(loaded)
    }

    pub async fn upsert_location(&self, location: Location) -> Result<Location, InventoryError> {
        self.store.upsert_location(&location).await?;
        self.catalogue.forget();
        Ok(location)
    }

    pub async fn location(&self, id: &LocationId) -> Result<Option<Arc<Location>>, InventoryError> {
        let catalogue = self.catalogue().await?;
        Ok(catalogue
            .by_id
            .get(id)
            .map(|i| Arc::clone(&catalogue.locations[*i])))
    }

    /// Every location, in id order.
    pub async fn all_locations(&self) -> Result<Vec<Location>, InventoryError> {
        Ok(self
            .catalogue()
            .await?
            .locations
            .iter()
            .map(|l| Location::clone(l))
            .collect())
    }

    /// The active locations, within `channel`'s pool when one is given, in id order. Only
    /// those are copied out of the catalogue: an availability query asks this on every call.
    pub async fn active_locations(
        &self,
        channel: Option<&ChannelId>,
    ) -> Result<Vec<Arc<Location>>, InventoryError> {
        Ok(self.catalogue().await?.active_in(channel).to_vec())
    }

    /// The `requested` locations, within `channel`'s pool when one is given, all read from one
    /// snapshot of the catalogue; each id that does not exist is named by its index.
    pub async fn requested_locations(
        &self,
        requested: &[LocationId],
        channel: Option<&ChannelId>,
    ) -> Result<Vec<Arc<Location>>, InventoryError> {
        let catalogue = self.catalogue().await?;
        let pool = channel.map(|c| catalogue.pool(c));
        let mut out = Vec::new();
        let mut violations = Vec::new();
        for (i, id) in requested.iter().enumerate() {
            match catalogue.by_id.get(id) {
                None => violations.push(FieldViolation {
                    field: format!("location_ids[{i}]"),
                    description: format!("location {id} does not exist"),
                }),
                Some(&at) => {
                    if pool.is_none_or(|p| p.binary_search(id).is_ok()) {
                        out.push(Arc::clone(&catalogue.locations[at]));
                    }
                }
            }
        }
        if !violations.is_empty() {
            return Err(InvalidRequest(violations).into());
        }
        Ok(out)
    }

    /// A page of locations after `after`, in id order.
    pub async fn list_locations(
        &self,
        after: Option<&str>,
        page_size: u64,
    ) -> Result<Vec<Location>, InventoryError> {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let catalogue = self.catalogue().await?;
        Ok(catalogue
            .locations
            .iter()
            .filter(|l| after.is_none_or(|a| l.id.as_str() > a))
            .take(limit as usize)
            .map(|l| Location::clone(l))
            .collect())
    }

    /// Replaces a channel's pool; every member must be a known location.
    pub async fn set_pool(
        &self,
        channel: &ChannelId,
        members: Vec<LocationId>,
    ) -> Result<Vec<LocationId>, InventoryError> {
        let mut violations = Vec::new();
        for (i, id) in members.iter().enumerate() {
            if self.location(id).await?.is_none() {
                violations.push(FieldViolation {
                    field: format!("location_ids[{i}]"),
                    description: format!("location {id} does not exist"),
                });
            }
        }
        if !violations.is_empty() {
            return Err(InvalidRequest(violations).into());
        }
        let mut members = members;
        members.sort();
        members.dedup();
        self.store.set_pool(channel, &members).await?;
        self.catalogue.forget();
        Ok(members)
    }

    /// The locations a channel sells from. A channel without a pool sees nothing: pools are
    /// explicit, so a new marketplace cannot sell store stock by accident.
    pub async fn pool(&self, channel: &ChannelId) -> Result<Vec<LocationId>, InventoryError> {
        Ok(self.catalogue().await?.pool(channel).to_vec())
    }
}
