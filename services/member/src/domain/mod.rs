//! Pure member rules: identities, the points ledger, earning rules, tiers, segments and the
//! channel report. No I/O and no clock: every rule that depends on time takes `now`.

pub mod identity;
pub mod ledger;
pub mod member;
pub mod purchase;
pub mod report;
pub mod rules;
pub mod segments;
pub mod tier;

#[cfg(test)]
mod fixture_tests;

pub use identity::{Identity, IdentityError, IdentityType};
pub use ledger::{
    EntryKind, Ledger, LedgerConfig, LedgerEntry, LedgerError, LedgerParts, Lot, LotId,
    LotMovement, MergeEntries, Points, Redemption, RedemptionStatus,
};
pub use member::{Member, MemberError, MemberId, MemberStatus, MergeOutcome, PersonalData};
pub use purchase::Purchase;
pub use report::{ChannelFigures, ChannelReport, Period, Ratio, ReportError, channel_report};
pub use rules::{EarningRules, RulesError, reversal_points};
pub use segments::{
    LifecycleStage, MemberActivity, MemberSegment, Rfm, lifecycle_stage, segment_members,
};
pub use tier::{Tier, TierChange, TierDirection, TierThresholds, rolling_spend, tier_change};
