//! What ListLedger and ListMembers page tokens are bound to. A token continues exactly the
//! listing that issued it: the same RPC, the same member or the same segment filter. The page
//! size may change between pages.

use omni_platform::grpc::FieldViolation;
use omni_platform::paging::{PageScope, PageTokenError};

use super::convert;
use crate::domain::MemberId;
use crate::ops::MemberFilter;

const LIST_LEDGER: &str = "omni.member.v1.MemberService/ListLedger";
const LIST_MEMBERS: &str = "omni.member.v1.MemberService/ListMembers";

pub fn ledger_scope(member: MemberId) -> PageScope {
    PageScope::new(LIST_LEDGER).with("member_id", member)
}

/// Sets are sorted and deduplicated, and stages and tiers are written as their proto numbers
/// (stable by contract), so the same segment asked in another order continues the same listing.
pub fn members_scope(filter: &MemberFilter) -> PageScope {
    let mut lifecycles: Vec<i32> = filter
        .lifecycles
        .iter()
        .map(|s| i32::from(convert::stage(*s)))
        .collect();
    lifecycles.sort_unstable();
    lifecycles.dedup();
    let mut tiers: Vec<i32> = filter
        .tiers
        .iter()
        .map(|t| i32::from(convert::tier(*t)))
        .collect();
    tiers.sort_unstable();
    tiers.dedup();
    let join = |values: &[i32]| {
        values
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let cross_channel = match filter.cross_channel {
        None => "any",
        Some(true) => "true",
        Some(false) => "false",
    };
    PageScope::new(LIST_MEMBERS)
        .with("lifecycles", join(&lifecycles))
        .with("tiers", join(&tiers))
        .with("min_recency", filter.min_recency)
        .with("min_frequency", filter.min_frequency)
        .with("min_monetary", filter.min_monetary)
        .with("cross_channel", cross_channel)
        .with(
            "channel_id",
            filter.channel.as_ref().map(|c| c.as_str()).unwrap_or(""),
        )
}

pub fn refused(error: &PageTokenError) -> FieldViolation {
    FieldViolation::new("page_token", error.to_string())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use omni_platform::paging::{DEFAULT_TTL, PageTokenKey, PageTokens};

    use super::*;
    use crate::domain::{LifecycleStage, Tier};

    fn opens(issued_for: &PageScope, asked: &PageScope) -> Result<i64, PageTokenError> {
        let tokens = PageTokens::new(&PageTokenKey::random(), DEFAULT_TTL);
        let now = Utc.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap();
        let token = tokens.issue(issued_for, &7_i64, now).unwrap();
        tokens.open(asked, &token, now)
    }

    #[test]
    fn the_same_segment_in_another_order_continues_the_listing() {
        let a = MemberFilter {
            lifecycles: vec![LifecycleStage::New, LifecycleStage::Core],
            tiers: vec![Tier::Gold, Tier::Silver, Tier::Gold],
            ..MemberFilter::default()
        };
        let b = MemberFilter {
            lifecycles: vec![LifecycleStage::Core, LifecycleStage::New],
            tiers: vec![Tier::Silver, Tier::Gold],
            ..MemberFilter::default()
        };
        assert_eq!(opens(&members_scope(&a), &members_scope(&b)), Ok(7));
    }

    #[test]
    fn every_criterion_is_part_of_the_binding() {
        let base = MemberFilter::default();
        let variants = [
            MemberFilter {
                lifecycles: vec![LifecycleStage::Dormant],
                ..MemberFilter::default()
            },
            MemberFilter {
                tiers: vec![Tier::Platinum],
                ..MemberFilter::default()
            },
            MemberFilter {
                min_recency: 1,
                ..MemberFilter::default()
            },
            MemberFilter {
                min_frequency: 1,
                ..MemberFilter::default()
            },
            MemberFilter {
                min_monetary: 1,
                ..MemberFilter::default()
            },
            MemberFilter {
                cross_channel: Some(false),
                ..MemberFilter::default()
            },
            MemberFilter {
                channel: Some(omni_types::ChannelId::parse("web").unwrap()),
                ..MemberFilter::default()
            },
        ];
        for variant in variants {
            assert_eq!(
                opens(&members_scope(&base), &members_scope(&variant)),
                Err(PageTokenError::OtherRequest),
                "{variant:?}"
            );
        }
        let member = MemberId::new();
        assert_eq!(
            opens(&ledger_scope(member), &ledger_scope(MemberId::new())),
            Err(PageTokenError::OtherRequest)
        );
        assert_eq!(opens(&ledger_scope(member), &ledger_scope(member)), Ok(7));
    }
}
