//! Locations and channel pools.

use std::time::Duration;

use chrono::Utc;
use omni_types::{ChannelId, GeoPoint, LocationId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::entities::{channel_pools, locations};
use super::{Store, StoreError};
use crate::domain::{Capabilities, Location, LocationKind, parse_time_zone};

impl Store {
    pub async fn upsert_location(&self, location: &Location) -> Result<(), StoreError> {
        let now = Utc::now();
        let row = locations::ActiveModel {
            id: Set(location.id.to_string()),
            kind: Set(location.kind.as_str().to_owned()),
            name: Set(location.name.clone()),
            lat: Set(location.point.lat()),
            lon: Set(location.point.lon()),
            ships: Set(location.capabilities.ships),
            pickup: Set(location.capabilities.pickup),
            ship_from_store: Set(location.capabilities.ship_from_store),
            daily_capacity: Set(location.daily_capacity.map_or(0, |c| c as i32)),
            time_zone: Set(location.time_zone.name().to_owned()),
            pickup_hold_secs: Set(location.pickup_hold.as_secs() as i64),
            active: Set(location.active),
            address: Set(location.address.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        locations::Entity::insert(row)
            .on_conflict(
                OnConflict::column(locations::Column::Id)
                    .update_columns([
                        locations::Column::Kind,
                        locations::Column::Name,
                        locations::Column::Lat,
                        locations::Column::Lon,
                        locations::Column::Ships,
                        locations::Column::Pickup,
                        locations::Column::ShipFromStore,
                        locations::Column::DailyCapacity,
                        locations::Column::TimeZone,
                        locations::Column::PickupHoldSecs,
                        locations::Column::Active,
                        locations::Column::Address,
                        locations::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn location(&self, id: &LocationId) -> Result<Option<Location>, StoreError> {
        locations::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(to_location)
            .transpose()
    }

    /// Every location, ordered by id (the set is small: hundreds to a few thousand).
    pub async fn all_locations(&self) -> Result<Vec<Location>, StoreError> {
        locations::Entity::find()
            .order_by_asc(locations::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_location)
            .collect()
    }

    /// A page of locations after `after` (keyset pagination on the id).
    pub async fn list_locations(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Location>, StoreError> {
        let mut query = locations::Entity::find().order_by_asc(locations::Column::Id);
        if let Some(after) = after {
            query = query.filter(locations::Column::Id.gt(after));
        }
        query
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_location)
            .collect()
    }

    /// Replaces a channel's pool in one transaction.
    pub async fn set_pool(
        &self,
        channel: &ChannelId,
        members: &[LocationId],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        channel_pools::Entity::delete_many()
            .filter(channel_pools::Column::ChannelId.eq(channel.as_str()))
            .exec(&txn)
            .await?;
        if !members.is_empty() {
            channel_pools::Entity::insert_many(members.iter().map(|location| {
                channel_pools::ActiveModel {
                    channel_id: Set(channel.to_string()),
                    location_id: Set(location.to_string()),
                }
            }))
            .exec(&txn)
            .await?;
        }
        txn.commit().await.map_err(StoreError::at_commit)
    }

    /// The locations a channel sells from; `None` when the channel has no pool (it sees every
    /// active location).
    pub async fn pool(&self, channel: &ChannelId) -> Result<Option<Vec<LocationId>>, StoreError> {
        let rows = channel_pools::Entity::find()
            .filter(channel_pools::Column::ChannelId.eq(channel.as_str()))
            .order_by_asc(channel_pools::Column::LocationId)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.into_iter()
            .map(|r| {
                LocationId::parse(r.location_id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

impl Store {
    /// Every channel pool, for the in-memory catalogue.
    pub async fn all_pools(
        &self,
    ) -> Result<std::collections::HashMap<ChannelId, Vec<LocationId>>, StoreError> {
        let rows = channel_pools::Entity::find()
            .order_by_asc(channel_pools::Column::ChannelId)
            .order_by_asc(channel_pools::Column::LocationId)
            .all(&self.db)
            .await?;
        let mut pools: std::collections::HashMap<ChannelId, Vec<LocationId>> =
            std::collections::HashMap::new();
        for row in rows {
            let channel =
                ChannelId::parse(row.channel_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let location = LocationId::parse(row.location_id)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            pools.entry(channel).or_default().push(location);
        }
        Ok(pools)
    }
}

fn to_location(row: locations::Model) -> Result<Location, StoreError> {
    let corrupt = |what: &str, detail: String| {
        StoreError::Corrupt(format!("location {} {what}: {detail}", row.id))
    };
    Ok(Location {
        id: LocationId::parse(row.id.clone()).map_err(|e| corrupt("id", e.to_string()))?,
        kind: LocationKind::parse(&row.kind).ok_or_else(|| corrupt("kind", row.kind.clone()))?,
        name: row.name.clone(),
        point: GeoPoint::parse(row.lat, row.lon).map_err(|e| corrupt("point", e.to_string()))?,
        capabilities: Capabilities {
            ships: row.ships,
            pickup: row.pickup,
            ship_from_store: row.ship_from_store,
        },
        daily_capacity: u32::try_from(row.daily_capacity).ok().filter(|c| *c > 0),
        time_zone: parse_time_zone(&row.time_zone)
            .map_err(|e| corrupt("time_zone", e.to_string()))?,
        pickup_hold: Duration::from_secs(u64::try_from(row.pickup_hold_secs).unwrap_or(0)),
        active: row.active,
        address: row.address.clone(),
    })
}
