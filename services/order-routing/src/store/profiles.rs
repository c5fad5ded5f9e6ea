//! Routing profiles, one row per (channel, version). The live profile is the highest version.

use chrono::{DateTime, Utc};
use omni_types::ChannelId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::routing_profiles::{self, Column, Entity};
use super::{StoreError, from_json, to_json};
use crate::domain::profile::RoutingProfile;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredProfile {
    pub profile: RoutingProfile,
    pub updated_at: DateTime<Utc>,
}

fn decode(row: routing_profiles::Model) -> Result<StoredProfile, StoreError> {
    Ok(StoredProfile {
        profile: from_json(&row.spec)?,
        updated_at: row.updated_at,
    })
}

pub async fn live<C: ConnectionTrait>(
    db: &C,
    channel: &ChannelId,
) -> Result<Option<StoredProfile>, StoreError> {
    Entity::find()
        .filter(Column::ChannelId.eq(channel.to_string()))
        .order_by_desc(Column::Version)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

pub async fn version<C: ConnectionTrait>(
    db: &C,
    channel: &ChannelId,
    version: u32,
) -> Result<Option<StoredProfile>, StoreError> {
    Entity::find_by_id((channel.to_string(), i64::from(version)))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Inserts a new version; [`StoreError::Conflict`] if that version exists already (someone
/// else updated first).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    profile: &RoutingProfile,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    Entity::insert(routing_profiles::ActiveModel {
        channel_id: Set(profile.channel().to_string()),
        version: Set(i64::from(profile.version())),
        spec: Set(to_json(profile)?),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}
