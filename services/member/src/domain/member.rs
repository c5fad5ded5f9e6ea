//! A member's lifecycle: active, merged into another member, or erased on request.
//!
//! Merging keeps the source member as a tombstone pointing at the target, so events and orders
//! that still name the old id can be redirected instead of failing. Erasing removes what
//! identifies the person (personal fields and identities) and keeps the id, the tier and the
//! points ledger, which hold no personal data and which the books need.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::identity::Identity;
use super::ledger::{Ledger, LedgerError, MergeEntries};
use super::tier::Tier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberId(Uuid);

impl MemberId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, MemberError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| MemberError::BadMemberId {
                value: value.to_owned(),
            })
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for MemberId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for MemberId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberStatus {
    Active,
    Merged { into: MemberId, at: DateTime<Utc> },
    Erased { at: DateTime<Utc> },
}

/// What the member told us about themselves; everything here is erased on request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub name: Option<String>,
    pub birth_date: Option<NaiveDate>,
}

/// Longest accepted name; keeps rows and exports bounded.
pub const NAME_MAX_LEN: usize = 200;

impl PersonalData {
    pub fn new(name: Option<&str>, birth_date: Option<NaiveDate>) -> Result<Self, MemberError> {
        let name = match name.map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                let len = name.chars().count();
                if len > NAME_MAX_LEN {
                    return Err(MemberError::NameTooLong {
                        max: NAME_MAX_LEN,
                        len,
                    });
                }
                if name.chars().any(char::is_control) {
                    return Err(MemberError::NameHasControlCharacters);
                }
                Some(name.to_owned())
            }
        };
        Ok(Self { name, birth_date })
    }
}

/// Named by what the caller should do: fix the input, pick another member, or stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("member_id: must be a UUID, got {value:?}")]
    BadMemberId { value: String },
    #[error("name: must be at most {max} characters, got {len}")]
    NameTooLong { max: usize, len: usize },
    #[error("name: must not contain control characters")]
    NameHasControlCharacters,
    #[error("member {member} is not active ({state}); use the member it was merged into")]
    NotActive {
        member: MemberId,
        state: &'static str,
    },
    #[error("a member cannot be merged into itself")]
    MergeIntoSelf,
    #[error("identity {identity} belongs to member {owner}; merge the members to move it")]
    IdentityOwnedByOther { identity: String, owner: MemberId },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub status: MemberStatus,
    pub personal: PersonalData,
    pub identities: Vec<Identity>,
    pub tier: Tier,
    pub enrolled_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a merge changed, for the repository to write and the outbox to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    pub moved_identities: Vec<Identity>,
    pub ledger: MergeEntries,
}

impl Member {
    pub fn enroll(
        id: MemberId,
        identities: Vec<Identity>,
        personal: PersonalData,
        now: DateTime<Utc>,
    ) -> Self {
        let mut member = Self {
            id,
            status: MemberStatus::Active,
            personal,
            identities: Vec::new(),
            tier: Tier::Base,
            enrolled_at: now,
            updated_at: now,
        };
        for identity in identities {
            member.add_identity(identity);
        }
        member
    }

    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }

    fn state_name(&self) -> &'static str {
        match self.status {
            MemberStatus::Active => "active",
            MemberStatus::Merged { .. } => "merged",
            MemberStatus::Erased { .. } => "erased",
        }
    }

    fn require_active(&self) -> Result<(), MemberError> {
        if self.is_active() {
            Ok(())
        } else {
            Err(MemberError::NotActive {
                member: self.id,
                state: self.state_name(),
            })
        }
    }

    fn add_identity(&mut self, identity: Identity) -> bool {
        if self.identities.contains(&identity) {
            return false;
        }
        self.identities.push(identity);
        true
    }

    /// Links an identity. `current_owner` is who holds it now (from the identity index): linking
    /// one that another member owns is refused, because only an explicit merge may join two
    /// people. Linking one this member already has is a no-op; returns whether anything changed.
    pub fn link_identity(
        &mut self,
        identity: Identity,
        current_owner: Option<MemberId>,
        now: DateTime<Utc>,
    ) -> Result<bool, MemberError> {
        self.require_active()?;
        if let Some(owner) = current_owner.filter(|owner| *owner != self.id) {
            return Err(MemberError::IdentityOwnedByOther {
                identity: identity.to_string(),
                owner,
            });
        }
        let changed = self.add_identity(identity);
        if changed {
            self.updated_at = now;
        }
        Ok(changed)
    }

    /// Erases personal data and identities; returns the identities removed so the caller deletes
    /// them from its index. The ledger is untouched: it references the member id only.
    /// Erasing twice is harmless and returns nothing the second time.
    pub fn erase(&mut self, now: DateTime<Utc>) -> Vec<Identity> {
        self.personal = PersonalData::default();
        let removed = std::mem::take(&mut self.identities);
        if !matches!(self.status, MemberStatus::Erased { .. }) {
            self.status = MemberStatus::Erased { at: now };
            self.updated_at = now;
        }
        removed
    }
}

/// Merges `source` into `target`: identities and the whole ledger move, the source becomes a
/// `MERGED` tombstone. Both must be active and different. The target keeps its own personal data
/// (the survivor is the caller's choice); the tier is re-evaluated by the caller from the
/// combined spend. Nothing changes when an error is returned.
pub fn merge(
    source: &mut Member,
    source_ledger: &mut Ledger,
    target: &mut Member,
    target_ledger: &mut Ledger,
    now: DateTime<Utc>,
) -> Result<MergeOutcome, MemberError> {
    if source.id == target.id {
        return Err(MemberError::MergeIntoSelf);
    }
    source.require_active()?;
    target.require_active()?;
    let ledger = target_ledger.absorb(source_ledger, target.id, source.id, now)?;
    let moved_identities = std::mem::take(&mut source.identities);
    for identity in &moved_identities {
        target.add_identity(identity.clone());
    }
    source.status = MemberStatus::Merged {
        into: target.id,
        at: now,
    };
    source.updated_at = now;
    target.updated_at = now;
    Ok(MergeOutcome {
        moved_identities,
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use omni_types::OrderId;

    use super::*;
    use crate::domain::identity::IdentityType;
    use crate::domain::ledger::{EntryKind, LedgerConfig};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap()
    }

    fn phone(value: &str) -> Identity {
        Identity::parse(IdentityType::Phone, value).unwrap()
    }

    fn member(phone_number: &str) -> Member {
        Member::enroll(
            MemberId::new(),
            vec![phone(phone_number)],
            PersonalData::new(Some("Ana"), NaiveDate::from_ymd_opt(1990, 5, 4)).unwrap(),
            now(),
        )
    }

    #[test]
    fn linking_an_identity_owned_by_someone_else_is_refused() {
        let mut ana = member("+8613800138000");
        let bob = member("+8613800138001");
        let email = Identity::parse(IdentityType::Email, "ana@example.com").unwrap();
        assert_eq!(ana.link_identity(email.clone(), None, now()), Ok(true));
        assert_eq!(
            ana.link_identity(email.clone(), Some(ana.id), now()),
            Ok(false)
        );
        let err = ana
            .link_identity(phone("+8613800138001"), Some(bob.id), now())
            .unwrap_err();
        assert!(matches!(err, MemberError::IdentityOwnedByOther { owner, .. } if owner == bob.id));
        assert_eq!(ana.identities.len(), 2);
    }

    #[test]
    fn merge_moves_identities_and_points_and_leaves_a_tombstone() {
        let cfg = LedgerConfig::default();
        let mut source = member("+8613800138000");
        let mut target = member("+8613800138001");
        let mut source_ledger = Ledger::new();
        let mut target_ledger = Ledger::new();
        source_ledger
            .earn(OrderId::new(), 120, now(), &cfg)
            .unwrap();
        target_ledger.earn(OrderId::new(), 30, now(), &cfg).unwrap();

        let outcome = merge(
            &mut source,
            &mut source_ledger,
            &mut target,
            &mut target_ledger,
            now(),
        )
        .unwrap();

        assert_eq!(target_ledger.balance(), 150);
        assert_eq!(source_ledger.balance(), 0);
        assert_eq!(outcome.ledger.source.kind, EntryKind::MergeOut);
        assert_eq!(outcome.ledger.source.points, -120);
        assert_eq!(outcome.ledger.target.points, 120);
        assert_eq!(outcome.moved_identities, vec![phone("+8613800138000")]);
        assert_eq!(target.identities.len(), 2);
        assert!(source.identities.is_empty());
        assert_eq!(
            source.status,
            MemberStatus::Merged {
                into: target.id,
                at: now()
            }
        );
    }

    #[test]
    fn merge_refuses_self_and_inactive_members() {
        let mut a = member("+8613800138000");
        let mut a_again = a.clone();
        let mut b = member("+8613800138001");
        let mut c = member("+8613800138002");
        let (mut la, mut lb, mut lc) = (Ledger::new(), Ledger::new(), Ledger::new());
        assert_eq!(
            merge(&mut a, &mut la, &mut a_again, &mut Ledger::new(), now()),
            Err(MemberError::MergeIntoSelf)
        );
        merge(&mut b, &mut lb, &mut c, &mut lc, now()).unwrap();
        // b is merged now: neither side of another merge.
        assert!(matches!(
            merge(&mut a, &mut la, &mut b, &mut lb, now()),
            Err(MemberError::NotActive {
                state: "merged",
                ..
            })
        ));
        assert!(matches!(
            merge(&mut b, &mut lb, &mut a, &mut la, now()),
            Err(MemberError::NotActive { .. })
        ));
        c.erase(now());
        assert!(matches!(
            merge(&mut a, &mut la, &mut c, &mut lc, now()),
            Err(MemberError::NotActive {
                state: "erased",
                ..
            })
        ));
        assert!(a.is_active());
        assert_eq!(a.identities.len(), 1);
    }

    #[test]
    fn erase_removes_personal_data_and_identities_and_keeps_the_ledger() {
        let cfg = LedgerConfig::default();
        let mut ana = member("+8613800138000");
        let mut ledger = Ledger::new();
        ledger.earn(OrderId::new(), 50, now(), &cfg).unwrap();

        let removed = ana.erase(now());

        assert_eq!(removed, vec![phone("+8613800138000")]);
        assert_eq!(ana.personal, PersonalData::default());
        assert!(ana.identities.is_empty());
        assert_eq!(ana.status, MemberStatus::Erased { at: now() });
        assert_eq!(ledger.balance(), 50);
        assert!(ana.erase(now()).is_empty());
        assert!(
            ana.link_identity(phone("+8613800138000"), None, now())
                .is_err()
        );
        let json = serde_json::to_string(&ana).unwrap();
        assert!(!json.contains("Ana") && !json.contains("138001380"));
    }

    #[test]
    fn personal_data_is_trimmed_and_bounded() {
        assert_eq!(PersonalData::new(Some("  "), None).unwrap().name, None);
        assert!(PersonalData::new(Some(&"x".repeat(201)), None).is_err());
        assert!(PersonalData::new(Some("a\u{0}b"), None).is_err());
        assert!(MemberId::parse("nope").is_err());
    }
}
