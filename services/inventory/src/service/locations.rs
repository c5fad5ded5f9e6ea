//! Locations and channel pools.

use omni_types::{ChannelId, LocationId};

use super::{Inventory, InventoryError};
use crate::domain::{FieldViolation, InvalidRequest, Location};

/// Page size bounds of every list.
pub const MAX_PAGE_SIZE: u64 = 500;
pub const DEFAULT_PAGE_SIZE: u64 = 100;

impl Inventory {
    pub async fn upsert_location(&self, location: Location) -> Result<Location, InventoryError> {
        self.store.upsert_location(&location).await?;
        self.locations
            .write()
            .await
            .insert(location.id.clone(), location.clone());
        Ok(location)
    }

    /// A location by id, from the cache or the database.
    pub async fn location(&self, id: &LocationId) -> Result<Option<Location>, InventoryError> {
        if let Some(found) = self.locations.read().await.get(id) {
            return Ok(Some(found.clone()));
        }
        let found = self.store.location(id).await?;
        if let Some(location) = &found {
            self.locations
                .write()
                .await
                .insert(id.clone(), location.clone());
        }
        Ok(found)
    }

    /// Every location (for availability over "all locations").
    pub async fn all_locations(&self) -> Result<Vec<Location>, InventoryError> {
        let all = self.store.all_locations().await?;
        let mut cache = self.locations.write().await;
        for location in &all {
            cache.insert(location.id.clone(), location.clone());
        }
        Ok(all)
    }

    pub async fn list_locations(
        &self,
        after: Option<&str>,
        page_size: u64,
    ) -> Result<Vec<Location>, InventoryError> {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        Ok(self.store.list_locations(after, limit).await?)
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
        Ok(members)
    }

    /// The locations a channel sells from. A channel without a pool sees nothing: pools are
    /// explicit, so a new marketplace cannot sell store stock by accident.
    pub async fn pool(&self, channel: &ChannelId) -> Result<Vec<LocationId>, InventoryError> {
        Ok(self.store.pool(channel).await?.unwrap_or_default())
    }
}
