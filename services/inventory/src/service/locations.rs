//! Locations and channel pools, served from an in-memory catalogue.
//!
//! Every reservation and availability read needs them, and they change rarely: reading them from
//! PostgreSQL per call would put the database on the path a flash sale must keep free of it. The
//! catalogue is reloaded at most every [`CATALOGUE_TTL`] (one load at a time), and at once on this
//! replica after a change; other replicas see a change within the TTL.

use std::collections::HashMap;
use std::sync::Arc;
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
}

impl Inventory {
    async fn catalogue(&self) -> Result<Arc<Catalogue>, InventoryError> {
        if let Some(current) = self.catalogue.read().await.as_ref()
            && current.fresh()
        {
            return Ok(current.clone());
        }
        // One load at a time: a burst of callers waits for the first one's result.
        let _loading = self.catalogue_load.lock().await;
        if let Some(current) = self.catalogue.read().await.as_ref()
            && current.fresh()
        {
            return Ok(current.clone());
        }
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
        let loaded = Arc::new(Catalogue {
            locations,
            by_id,
            pools,
            loaded_at: Instant::now(),
        });
        *self.catalogue.write().await = Some(loaded.clone());
        Ok(loaded)
    }

    async fn forget_catalogue(&self) {
        *self.catalogue.write().await = None;
    }

    pub async fn upsert_location(&self, location: Location) -> Result<Location, InventoryError> {
        self.store.upsert_location(&location).await?;
        self.forget_catalogue().await;
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
        let catalogue = self.catalogue().await?;
        let pool = channel.map(|c| catalogue.pool(c));
        Ok(catalogue
            .locations
            .iter()
            .filter(|l| l.active && pool.is_none_or(|p| p.binary_search(&l.id).is_ok()))
            .cloned()
            .collect())
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
        self.forget_catalogue().await;
        Ok(members)
    }

    /// The locations a channel sells from. A channel without a pool sees nothing: pools are
    /// explicit, so a new marketplace cannot sell store stock by accident.
    pub async fn pool(&self, channel: &ChannelId) -> Result<Vec<LocationId>, InventoryError> {
        Ok(self.catalogue().await?.pool(channel).to_vec())
    }
}
