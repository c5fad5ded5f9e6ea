//! How domain enums are spelled in the database. Unknown spellings are corruption, not a
//! default: a row nobody can interpret must stop the operation, not be guessed at.

use crate::domain::{EntryKind, IdentityType, RedemptionStatus, Tier};

use super::StoreError;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

pub fn tier(value: &str) -> Result<Tier, StoreError> {
    [Tier::Base, Tier::Silver, Tier::Gold, Tier::Platinum]
        .into_iter()
        .find(|t| t.as_str() == value)
        .ok_or_else(|| corrupt("tier", value))
}

pub fn identity_type(value: &str) -> Result<IdentityType, StoreError> {
    value.parse().map_err(|_| corrupt("identity type", value))
}

pub const REDEMPTION_STATUSES: [(RedemptionStatus, &str); 3] = [
    (RedemptionStatus::Pending, "PENDING"),
    (RedemptionStatus::Confirmed, "CONFIRMED"),
    (RedemptionStatus::Released, "RELEASED"),
];

pub fn redemption_status_str(status: RedemptionStatus) -> &'static str {
    REDEMPTION_STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("PENDING", |(_, name)| name)
}

pub fn redemption_status(value: &str) -> Result<RedemptionStatus, StoreError> {
    REDEMPTION_STATUSES
        .iter()
        .find(|(_, name)| *name == value)
        .map(|(s, _)| *s)
        .ok_or_else(|| corrupt("redemption status", value))
}

pub const ENTRY_KINDS: [(EntryKind, &str); 9] = [
    (EntryKind::Earn, "EARN"),
    (EntryKind::Redeem, "REDEEM"),
    (EntryKind::RedeemConfirmed, "REDEEM_CONFIRMED"),
    (EntryKind::RedeemReleased, "REDEEM_RELEASED"),
    (EntryKind::RedeemRefunded, "REDEEM_REFUNDED"),
    (EntryKind::Reverse, "REVERSE"),
    (EntryKind::Expire, "EXPIRE"),
    (EntryKind::MergeIn, "MERGE_IN"),
    (EntryKind::MergeOut, "MERGE_OUT"),
];

pub fn entry_kind_str(kind: EntryKind) -> &'static str {
    ENTRY_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("EARN", |(_, name)| name)
}

pub fn entry_kind(value: &str) -> Result<EntryKind, StoreError> {
    ENTRY_KINDS
        .iter()
        .find(|(_, name)| *name == value)
        .map(|(k, _)| *k)
        .ok_or_else(|| corrupt("ledger entry kind", value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips() {
        for (kind, name) in ENTRY_KINDS {
            assert_eq!(entry_kind(entry_kind_str(kind)).unwrap(), kind);
            assert_eq!(entry_kind_str(kind), name);
        }
        for (status, _) in REDEMPTION_STATUSES {
            assert_eq!(
                redemption_status(redemption_status_str(status)).unwrap(),
                status
            );
        }
        for t in [Tier::Base, Tier::Silver, Tier::Gold, Tier::Platinum] {
            assert_eq!(tier(t.as_str()).unwrap(), t);
        }
        assert!(tier("DIAMOND").is_err());
        assert!(identity_type("FAX").is_err());
    }
}
