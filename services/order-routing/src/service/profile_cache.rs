//! Each channel's live routing profile, kept for a second.
//!
//! Every order reads its channel's profile: one of the four round trips an order costs the
//! orders database (statement log of the place-order benchmark). A profile changes when an
//! operator stores a new version, rarely. This replica forgets its copy the moment it stores
//! one; another replica's orders route with the old version for at most [`PROFILE_TTL`], and
//! every order records the version that routed it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use omni_types::ChannelId;

use crate::domain::profile::RoutingProfile;

pub const PROFILE_TTL: Duration = Duration::from_secs(1);

/// A profile and its version (0: the channel has none stored and routes with the default).
pub type LiveProfile = (Arc<RoutingProfile>, u32);

#[derive(Default)]
pub struct ProfileCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_channel: HashMap<ChannelId, (Instant, LiveProfile)>,
    /// Bumped by every [`ProfileCache::forget`]: a read from the database that began before a
    /// new version was stored must not put the old one back.
    generation: u64,
}

/// Taken before reading the database; [`ProfileCache::keep`] stores the read only if no profile
/// was stored meanwhile.
pub struct ReadTicket(u64);

impl ProfileCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh copy, or a ticket for reading the database.
    pub fn get(&self, channel: &ChannelId) -> Result<LiveProfile, ReadTicket> {
        let entries = self.entries();
        match entries.by_channel.get(channel) {
            Some((at, live)) if at.elapsed() < PROFILE_TTL => Ok(live.clone()),
            _ => Err(ReadTicket(entries.generation)),
        }
    }

    pub fn keep(&self, ticket: ReadTicket, channel: &ChannelId, live: LiveProfile) {
        let mut entries = self.entries();
        if entries.generation == ticket.0 {
            entries
                .by_channel
                .insert(channel.clone(), (Instant::now(), live));
        }
    }

    /// After storing a new version of `channel`'s profile.
    pub fn forget(&self, channel: &ChannelId) {
        let mut entries = self.entries();
        entries.by_channel.remove(channel);
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelId {
        ChannelId::parse("web").unwrap()
    }

    fn live(version: u32) -> LiveProfile {
        (Arc::new(RoutingProfile::default_for(channel())), version)
    }

    #[test]
    fn a_kept_profile_is_served_until_forgotten() {
        let cache = ProfileCache::default();
        let ticket = cache.get(&channel()).unwrap_err();
        cache.keep(ticket, &channel(), live(3));
        assert_eq!(cache.get(&channel()).ok().map(|(_, v)| v), Some(3));
        cache.forget(&channel());
        assert!(cache.get(&channel()).is_err());
    }

    #[test]
    fn a_read_that_began_before_a_new_version_was_stored_is_not_kept() {
        let cache = ProfileCache::default();
        let slow_read = cache.get(&channel()).unwrap_err();
        cache.forget(&channel());
        cache.keep(slow_read, &channel(), live(1));
        assert!(
            cache.get(&channel()).is_err(),
            "version 1 must not come back"
        );
    }
}
