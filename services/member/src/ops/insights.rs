//! Segments, profiles, member listings and the channel report, computed by the domain from
//! the purchases table. Figures are derived on request, not stored as truth; RFM scores rank a
//! member among all active members who bought.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Months, Utc};
use omni_types::ChannelId;

use super::{MemberOps, OpError};
use crate::domain::{
    ChannelReport, LifecycleStage, MemberId, MemberSegment, Period, Purchase, Rfm, Tier,
    channel_report, segment_members,
};
use crate::store::members::{self, StoredMember};
use crate::store::purchases;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub member: MemberId,
    pub stage: LifecycleStage,
    pub rfm: Option<Rfm>,
    pub channels_used: BTreeSet<ChannelId>,
    pub cross_channel: bool,
    pub spend_12m: i64,
    pub tier: Tier,
    pub orders_12m: u32,
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    pub computed_at: DateTime<Utc>,
}

/// Every set criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFilter {
    pub lifecycles: Vec<LifecycleStage>,
    pub tiers: Vec<Tier>,
    pub min_recency: u8,
    pub min_frequency: u8,
    pub min_monetary: u8,
    pub cross_channel: Option<bool>,
    pub channel: Option<ChannelId>,
}

impl MemberFilter {
    fn matches(&self, profile: &Profile) -> bool {
        let rfm = profile.rfm.unwrap_or(Rfm {
            recency: 0,
            frequency: 0,
            monetary: 0,
        });
        (self.lifecycles.is_empty() || self.lifecycles.contains(&profile.stage))
            && (self.tiers.is_empty() || self.tiers.contains(&profile.tier))
            && rfm.recency >= self.min_recency
            && rfm.frequency >= self.min_frequency
            && rfm.monetary >= self.min_monetary
            && self
                .cross_channel
                .is_none_or(|wanted| wanted == profile.cross_channel)
            && self
                .channel
                .as_ref()
                .is_none_or(|c| profile.channels_used.contains(c))
    }
}

#[derive(Debug, Clone)]
pub struct ListedPage {
    pub members: Vec<(StoredMember, Profile)>,
    /// The last member id of this page, when there may be more.
    pub next_after: Option<MemberId>,
}

/// Everything needed to profile members at one instant.
struct Base {
    segments: BTreeMap<MemberId, MemberSegment>,
    purchases: BTreeMap<MemberId, Vec<Purchase>>,
    now: DateTime<Utc>,
}

impl MemberOps {
    async fn base(&self, active: &[StoredMember]) -> Result<Base, OpError> {
        let now = self.now();
        let rows = purchases::of_all_members(self.db()).await?;
        let all: Vec<Purchase> = rows
            .iter()
            .map(purchases::to_domain)
            .collect::<Result<_, _>>()?;
        let ids: Vec<MemberId> = active.iter().map(|m| m.member.id).collect();
        let segments = segment_members(&ids, &all, self.policy.book_currency, now);
        let mut by_member: BTreeMap<MemberId, Vec<Purchase>> = BTreeMap::new();
        for purchase in all {
            if let Some(member) = purchase.member {
                by_member.entry(member).or_default().push(purchase);
            }
        }
        Ok(Base {
            segments,
            purchases: by_member,
            now,
        })
    }

    fn profile_in(&self, base: &Base, member: &StoredMember) -> Profile {
        let id = member.member.id;
        let now = base.now;
        let own: &[Purchase] = base.purchases.get(&id).map_or(&[], Vec::as_slice);
        let year_ago = now.checked_sub_months(Months::new(12)).unwrap_or(now);
        let recent: Vec<&Purchase> = own
            .iter()
            .filter(|p| p.at > year_ago && p.at <= now)
            .collect();
        let segment = base.segments.get(&id);
        Profile {
            member: id,
            stage: segment.map_or(LifecycleStage::Prospect, |s| s.stage),
            rfm: segment.and_then(|s| s.rfm),
            channels_used: recent.iter().map(|p| p.channel.clone()).collect(),
            cross_channel: segment.is_some_and(|s| s.cross_channel),
            spend_12m: crate::domain::rolling_spend(
                recent
                    .iter()
                    .filter(|p| p.amount.currency == self.policy.book_currency)
                    .map(|p| (p.at, p.amount.minor_units)),
                now,
            ),
            tier: member.member.tier,
            orders_12m: u32::try_from(recent.len()).unwrap_or(u32::MAX),
            first_order_at: own.iter().map(|p| p.at).min(),
            last_order_at: own.iter().map(|p| p.at).max(),
            computed_at: now,
        }
    }

    pub(super) async fn profile_of(&self, member: &StoredMember) -> Result<Profile, OpError> {
        let active = members::active(self.db()).await?;
        let base = self.base(&active).await?;
        Ok(self.profile_in(&base, member))
    }

    pub async fn profile(&self, id: MemberId) -> Result<Profile, OpError> {
        let member = self.member(id).await?;
        self.profile_of(&member).await
    }

    /// Active members matching `filter`, by id, `size` at a time after `after`.
    pub async fn list_members(
        &self,
        filter: &MemberFilter,
        after: Option<MemberId>,
        size: usize,
    ) -> Result<ListedPage, OpError> {
        let active = members::active(self.db()).await?;
        let base = self.base(&active).await?;
        let mut matching = active
            .into_iter()
            .filter(|m| after.is_none_or(|a| m.member.id > a))
            .map(|m| {
                let profile = self.profile_in(&base, &m);
                (m, profile)
            })
            .filter(|(_, p)| filter.matches(p));
        let members: Vec<_> = matching.by_ref().take(size).collect();
        let next_after = if matching.next().is_some() {
            members.last().map(|(m, _)| m.member.id)
        } else {
            None
        };
        Ok(ListedPage {
            members,
            next_after,
        })
    }

    pub async fn report(&self, period: Period) -> Result<ChannelReport, OpError> {
        let rows = purchases::between(self.db(), period.from(), period.to()).await?;
        let all: Vec<Purchase> = rows
            .iter()
            .map(purchases::to_domain)
            .collect::<Result<_, _>>()?;
        Ok(channel_report(&all, period))
    }
}
