//! Reads (orders, pickups, routing records) and routing profiles (get, update, simulate).

use chrono::{DateTime, Utc};
use omni_types::ChannelId;

use super::Orders;
use super::error::ServiceError;
use super::record::OrderRecord;
use crate::domain::profile::{ProfileSpec, RoutingProfile};
use crate::domain::simulate::{self, SimulationReport};
use crate::store::orders::{self, OrderFilter};
use crate::store::routing_records::{self, RoutingRecord};
use crate::store::{StoreError, profiles};

pub const DEFAULT_PAGE: u64 = 50;
pub const MAX_PAGE: u64 = 500;
const MAX_REPLAY: u32 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: OrderFilter,
    pub page_size: i32,
    pub page_token: String,
}

/// A profile as the API shows it: version 0 is the built-in default, never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileView {
    pub profile: RoutingProfile,
    pub version: u32,
    pub updated_at: Option<DateTime<Utc>>,
}

fn page(q: &ListQuery) -> Result<(u64, u64), ServiceError> {
    let size = match q.page_size {
        0 => DEFAULT_PAGE,
        n if n < 0 || n as u64 > MAX_PAGE => {
            return Err(ServiceError::invalid(
                "page_size",
                format!("must be 0-{MAX_PAGE}"),
            ));
        }
        n => n as u64,
    };
    let offset = if q.page_token.is_empty() {
        0
    } else {
        q.page_token
            .parse::<u64>()
            .map_err(|_| ServiceError::invalid("page_token", "not a token from a previous page"))?
    };
    Ok((offset, size))
}

impl Orders {
    pub async fn get(&self, id: uuid::Uuid) -> Result<OrderRecord, ServiceError> {
        orders::load(&self.db, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                resource: "order",
                id: id.to_string(),
            })
    }

    /// A page and the token of the next one (empty at the end).
    pub async fn list(
        &self,
        q: &ListQuery,
        newest_first: bool,
    ) -> Result<(Vec<OrderRecord>, String), ServiceError> {
        let (offset, size) = page(q)?;
        let mut rows = orders::list(&self.db, &q.filter, newest_first, offset, size + 1).await?;
        let next = if rows.len() as u64 > size {
            rows.truncate(size as usize);
            (offset + size).to_string()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    pub async fn explain(&self, id: uuid::Uuid) -> Result<Vec<RoutingRecord>, ServiceError> {
        self.get(id).await?;
        Ok(routing_records::list(&self.db, id).await?)
    }

    pub async fn profile(
        &self,
        channel: &ChannelId,
        version: u32,
    ) -> Result<ProfileView, ServiceError> {
        let stored = if version == 0 {
            profiles::live(&self.db, channel).await?
        } else {
            Some(
                profiles::version(&self.db, channel, version)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound {
                        resource: "routing profile version",
                        id: format!("{channel}@{version}"),
                    })?,
            )
        };
        Ok(match stored {
            Some(s) => ProfileView {
                version: s.profile.version(),
                profile: s.profile,
                updated_at: Some(s.updated_at),
            },
            None => ProfileView {
                profile: RoutingProfile::default_for(channel.clone()),
                version: 0,
                updated_at: None,
            },
        })
    }

    /// Stores the next version if `expected_version` is still the live one.
    pub async fn update_profile(
        &self,
        spec: ProfileSpec,
        expected_version: u32,
    ) -> Result<ProfileView, ServiceError> {
        let live = profiles::live(&self.db, &spec.channel).await?;
        let live_version = live.as_ref().map_or(0, |p| p.profile.version());
        if live_version != expected_version {
            return Err(ServiceError::Refused {
                reason: "VERSION_MISMATCH",
                message: format!(
                    "the live version is {live_version}, not {expected_version}; re-read and retry"
                ),
                metadata: vec![("live_version".into(), live_version.to_string())],
            });
        }
        let next = RoutingProfile::parse(ProfileSpec {
            version: live_version + 1,
            ..spec
        })
        .map_err(|e| ServiceError::invalid(format!("profile.{}", e.field()), e.to_string()))?;
        let now = self.clock.now();
        let stored = profiles::insert(&self.db, &next, now).await;
        // Also after an error: the write may have committed before the failure was reported.
        self.profiles.forget(next.channel());
        match stored {
            Ok(()) => Ok(ProfileView {
                version: next.version(),
                profile: next,
                updated_at: Some(now),
            }),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Refused {
                reason: "VERSION_MISMATCH",
                message: "someone else changed the profile; re-read and retry".into(),
                metadata: Vec::new(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Replays the channel's last `n` orders through the live profile and `candidate`.
    pub async fn simulate(
        &self,
        candidate: ProfileSpec,
        n: u32,
    ) -> Result<SimulationReport, ServiceError> {
        if !(1..=MAX_REPLAY).contains(&n) {
            return Err(ServiceError::invalid(
                "last_n_orders",
                format!("must be 1-{MAX_REPLAY}"),
            ));
        }
        let live = self.profile(&candidate.channel, 0).await?;
        let candidate = RoutingProfile::parse(ProfileSpec {
            version: live.profile.version(),
            ..candidate
        })
        .map_err(|e| ServiceError::invalid(format!("candidate.{}", e.field()), e.to_string()))?;
        let inputs = orders::recent_planner_inputs(
            &self.db,
            &self.catalogues,
            candidate.channel().as_str(),
            u64::from(n),
        )
        .await?;
        let mut report = simulate::simulate(&inputs, &live.profile, &candidate);
        report.live.profile_version = live.version;
        report.candidate.profile_version = 0;
        Ok(report)
    }
}
