//! Routing profiles: the per-channel policy the planner follows. Policy is data, not code: a
//! profile is stored, versioned and changed through the API, and every order records the version
//! that routed it.
//!
//! There is no distance weight: the planner's objective is lexicographic (fewest shipments, then
//! distance, then preference, then id), so a weight would have nothing to trade against. A future
//! weighted objective would add a field here and a new version of the profile.

use std::collections::BTreeSet;

use omni_types::{ChannelId, LocationId};
use serde::{Deserialize, Serialize};

/// Most shipments (allocations) one order may be split into under any profile. Beyond this a
/// customer receives a pile of parcels and the greedy cover stops being worth its explanation.
pub const MAX_SPLITS_LIMIT: u8 = 10;
/// Most locations a profile may exclude; keeps profiles readable and the stored row small.
pub const MAX_EXCLUDED: usize = 1_000;

/// The editable part of a profile, as an operator sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSpec {
    pub channel: ChannelId,
    pub version: u32,
    /// Most allocations (shipments, or pickup plus transfers) one order may use; 1 = never split.
    pub max_splits: u8,
    /// Among equally good plans, ship from warehouses before stores (store staff are for customers).
    pub prefer_warehouses: bool,
    /// Stores with the `ship_from_store` capability may ship to customers and send transfers.
    pub allow_ship_from_store: bool,
    /// A pickup store missing lines may receive them from other locations instead of refusing.
    pub allow_transfer_to_store: bool,
    /// Locations this channel must never route to (closing stores, a troubled warehouse).
    pub excluded: BTreeSet<LocationId>,
}

/// A valid routing profile. Built by [`RoutingProfile::parse`] or [`RoutingProfile::default_for`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProfileSpec", into = "ProfileSpec")]
pub struct RoutingProfile(ProfileSpec);

/// The profile cannot be stored as sent; fix the named field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidProfile {
    #[error("max_splits must be between 1 and {MAX_SPLITS_LIMIT}, got {0}")]
    MaxSplits(u8),
    #[error("excluded may list at most {MAX_EXCLUDED} locations, got {0}")]
    TooManyExcluded(usize),
    #[error("version must be at least 1")]
    Version,
}

impl InvalidProfile {
    /// The field to name in a `BadRequest` field violation.
    pub fn field(&self) -> &'static str {
        match self {
            Self::MaxSplits(_) => "max_splits",
            Self::TooManyExcluded(_) => "excluded",
            Self::Version => "version",
        }
    }
}

impl RoutingProfile {
    pub fn parse(spec: ProfileSpec) -> Result<Self, InvalidProfile> {
        if !(1..=MAX_SPLITS_LIMIT).contains(&spec.max_splits) {
            return Err(InvalidProfile::MaxSplits(spec.max_splits));
        }
        if spec.excluded.len() > MAX_EXCLUDED {
            return Err(InvalidProfile::TooManyExcluded(spec.excluded.len()));
        }
        if spec.version == 0 {
            return Err(InvalidProfile::Version);
        }
        Ok(Self(spec))
    }

    /// What a channel routes with until an operator changes it: up to three shipments,
    /// warehouses first, stores may ship, pickups refuse rather than wait for a transfer.
    pub fn default_for(channel: ChannelId) -> Self {
        Self(ProfileSpec {
            channel,
            version: 1,
            max_splits: 3,
            prefer_warehouses: true,
            allow_ship_from_store: true,
            allow_transfer_to_store: false,
            excluded: BTreeSet::new(),
        })
    }

    /// The next version of this profile with the operator's changes. The channel and version in
    /// `changes` are ignored: a profile never moves channel, and versions only go up by one.
    pub fn revise(&self, changes: ProfileSpec) -> Result<Self, InvalidProfile> {
        Self::parse(ProfileSpec {
            channel: self.0.channel.clone(),
            version: self.0.version.saturating_add(1),
            ..changes
        })
    }

    pub fn channel(&self) -> &ChannelId {
        &self.0.channel
    }
    pub fn version(&self) -> u32 {
        self.0.version
    }
    pub fn max_splits(&self) -> usize {
        usize::from(self.0.max_splits)
    }
    pub fn prefer_warehouses(&self) -> bool {
        self.0.prefer_warehouses
    }
    pub fn allow_ship_from_store(&self) -> bool {
        self.0.allow_ship_from_store
    }
    pub fn allow_transfer_to_store(&self) -> bool {
        self.0.allow_transfer_to_store
    }
    pub fn excluded(&self) -> &BTreeSet<LocationId> {
        &self.0.excluded
    }
    pub fn is_excluded(&self, location: &LocationId) -> bool {
        self.0.excluded.contains(location)
    }
    pub fn spec(&self) -> &ProfileSpec {
        &self.0
    }
}

impl TryFrom<ProfileSpec> for RoutingProfile {
    type Error = InvalidProfile;
    fn try_from(spec: ProfileSpec) -> Result<Self, InvalidProfile> {
        Self::parse(spec)
    }
}

impl From<RoutingProfile> for ProfileSpec {
    fn from(profile: RoutingProfile) -> Self {
        profile.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> ChannelId {
        ChannelId::parse("web").unwrap()
    }

    #[test]
    fn default_is_valid_and_versioned_from_one() {
        let p = RoutingProfile::default_for(web());
        assert_eq!(p.version(), 1);
        assert_eq!(RoutingProfile::parse(p.spec().clone()), Ok(p));
    }

    #[test]
    fn refuses_out_of_range_splits_and_names_the_field() {
        let mut spec = RoutingProfile::default_for(web()).spec().clone();
        spec.max_splits = 0;
        let err = RoutingProfile::parse(spec.clone()).unwrap_err();
        assert_eq!(err.field(), "max_splits");
        spec.max_splits = MAX_SPLITS_LIMIT + 1;
        assert!(RoutingProfile::parse(spec).is_err());
    }

    #[test]
    fn revise_bumps_the_version_and_keeps_the_channel() {
        let p = RoutingProfile::default_for(web());
        let mut changes = p.spec().clone();
        changes.channel = ChannelId::parse("app").unwrap();
        changes.version = 42;
        changes.max_splits = 1;
        let next = p.revise(changes).unwrap();
        assert_eq!(next.version(), 2);
        assert_eq!(next.channel(), &web());
        assert_eq!(next.max_splits(), 1);
    }

    #[test]
    fn deserialising_validates() {
        let mut json = serde_json::to_value(RoutingProfile::default_for(web())).unwrap();
        json["max_splits"] = 0.into();
        assert!(serde_json::from_value::<RoutingProfile>(json).is_err());
    }
}
