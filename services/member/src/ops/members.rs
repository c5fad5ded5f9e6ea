//! Enrolment, identities, merges and personal-data requests.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;

use super::ledger_txn::{LockedLedger, lock_following_merges};
use super::{MemberOps, OpError, Profile};
use crate::domain::{Identity, Member, MemberId, PersonalData, member::merge};
use crate::store::entities::{entry, merge as merge_row, purchase, redemption};
use crate::store::ledger::{self, EntryContext};
use crate::store::members::{self, StoredMember};
use crate::store::{StoreError, purchases};

/// How a request names a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Id(MemberId),
    Identity(Identity),
}

#[derive(Debug, Clone)]
pub struct EnrollRequest {
    pub idempotency_key: String,
    pub personal: PersonalData,
    pub identities: Vec<Identity>,
    pub channel: String,
}

/// Everything held about a person.
#[derive(Debug, Clone)]
pub struct Export {
    pub member: StoredMember,
    pub profile: Profile,
    pub entries: Vec<entry::Model>,
    pub redemptions: Vec<redemption::Model>,
    pub purchases: Vec<purchase::Model>,
    pub exported_at: DateTime<Utc>,
}

impl MemberOps {
    /// Enrols a member; the same idempotency key again returns the member it created.
    pub async fn enroll(&self, request: EnrollRequest) -> Result<StoredMember, OpError> {
        if let Some(existing) =
            members::find_by_enroll_key(self.db(), &request.idempotency_key).await?
        {
            return Ok(existing);
        }
        for identity in &request.identities {
            if let Some(owner) = members::owner_of(self.db(), identity).await? {
                return Err(OpError::IdentityTaken {
                    identity: identity.to_string(),
                    owner,
                });
            }
        }
        let now = self.now();
        let stored = StoredMember {
            member: Member::enroll(MemberId::new(), request.identities, request.personal, now),
            enrolled_channel: request.channel,
        };
        let txn = self.begin().await?;
        match members::insert(&txn, &stored, Some(&request.idempotency_key)).await {
            Ok(()) => {
                self.commit(txn).await?;
                Ok(stored)
            }
            // A concurrent enrolment won the key or an identity: answer from what it wrote.
            Err(StoreError::Conflict(_)) => {
                drop(txn);
                if let Some(existing) =
                    members::find_by_enroll_key(self.db(), &request.idempotency_key).await?
                {
                    return Ok(existing);
                }
                for identity in &stored.member.identities {
                    if let Some(owner) = members::owner_of(self.db(), identity).await? {
                        return Err(OpError::IdentityTaken {
                            identity: identity.to_string(),
                            owner,
                        });
                    }
                }
                Err(OpError::Busy("enrolment raced another; retry".to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The member as stored (a merged member is returned as the tombstone it is).
    pub async fn member(&self, id: MemberId) -> Result<StoredMember, OpError> {
        members::find(self.db(), id)
            .await?
            .ok_or_else(|| OpError::not_found("member", id))
    }

    pub async fn link_identity(
        &self,
        id: MemberId,
        identity: Identity,
    ) -> Result<StoredMember, OpError> {
        let now = self.now();
        let txn = self.begin().await?;
        let mut stored = members::lock(&txn, id)
            .await?
            .ok_or_else(|| OpError::not_found("member", id))?;
        let owner = members::owner_of(&txn, &identity).await?;
        if stored.member.link_identity(identity.clone(), owner, now)? {
            match members::add_identities(&txn, id, std::slice::from_ref(&identity), now).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    drop(txn);
                    let owner = members::owner_of(self.db(), &identity).await?;
                    return Err(match owner {
                        Some(owner) => OpError::IdentityTaken {
                            identity: identity.to_string(),
                            owner,
                        },
                        None => OpError::Busy("identity changed owner meanwhile".to_owned()),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            members::update(&txn, &stored.member, None).await?;
        }
        self.commit(txn).await?;
        Ok(stored)
    }

    /// The active member an identity belongs to.
    pub async fn resolve(&self, identity: &Identity) -> Result<StoredMember, OpError> {
        let owner = members::owner_of(self.db(), identity)
            .await?
            .ok_or_else(|| OpError::not_found("identity", identity))?;
        let mut member = self.member(owner).await?;
        // Identities move with a merge, so this only follows tombstones a hand edit left.
        for _ in 0..8 {
            match member.member.status {
                crate::domain::MemberStatus::Merged { into, .. } => {
                    member = self.member(into).await?;
                }
                _ => break,
            }
        }
        Ok(member)
    }

    /// Merges `merged` into `survivor`: identities, lots, redemptions and purchases move; the
    /// merged member stays as a MERGED tombstone. Returns the survivor and the points moved.
    pub async fn merge(
        &self,
        survivor: MemberId,
        merged: MemberId,
        reason: &str,
    ) -> Result<(StoredMember, i64), OpError> {
        if survivor == merged {
            return Err(OpError::SameMember);
        }
        let now = self.now();
        let txn = self.begin().await?;
        // Always lock in id order, so two merges of the same pair cannot deadlock.
        let (first, second) = if survivor < merged {
            (survivor, merged)
        } else {
            (merged, survivor)
        };
        let a = LockedLedger::open_exact(&txn, first).await?;
        let b = LockedLedger::open_exact(&txn, second).await?;
        let (mut target, mut source) = if first == survivor { (a, b) } else { (b, a) };
        let outcome = merge(
            &mut source.member.member,
            &mut source.ledger,
            &mut target.member.member,
            &mut target.ledger,
            now,
        )?;
        let moved = outcome.ledger.target.points;
        // Source first: its lots are deleted before the target's rows take over its
        // redemptions.
        source
            .write(
                &txn,
                std::slice::from_ref(&outcome.ledger.source),
                &EntryContext {
                    reason: Some(format!("merged into {survivor}: {reason}")),
                    ..EntryContext::default()
                },
                now,
            )
            .await?;
        target
            .write(
                &txn,
                std::slice::from_ref(&outcome.ledger.target),
                &EntryContext {
                    reason: Some(format!("merged from {merged}: {reason}")),
                    ..EntryContext::default()
                },
                now,
            )
            .await?;
        members::move_identities(&txn, merged, survivor).await?;
        members::update(&txn, &source.member.member, None).await?;
        members::update(&txn, &target.member.member, None).await?;
        purchases::reassign(&txn, merged, survivor).await?;
        merge_row::Entity::insert(merge_row::ActiveModel {
            merged_id: Set(merged.as_uuid()),
            survivor_id: Set(survivor.as_uuid()),
            reason: Set(reason.to_owned()),
            points_moved: Set(moved),
            merged_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(StoreError::from)?;
        self.reevaluate_tier(&txn, &mut target.member, now).await?;
        self.commit(txn).await?;
        Ok((target.member, moved))
    }

    pub async fn export(&self, id: MemberId) -> Result<Export, OpError> {
        let member = self.member(id).await?;
        let profile = self.profile_of(&member).await?;
        Ok(Export {
            entries: ledger::all_entries(self.db(), id).await?,
            redemptions: ledger::redemption_rows(self.db(), id).await?,
            purchases: purchases::of_member(self.db(), id).await?,
            exported_at: self.now(),
            profile,
            member,
        })
    }

    /// Erases identities and personal fields; the ledger and purchases stay, keyed by the id
    /// only. Erasing again answers the erased member.
    pub async fn erase(&self, id: MemberId, reference: &str) -> Result<StoredMember, OpError> {
        let now = self.now();
        let txn = self.begin().await?;
        let mut stored = lock_following_merges(&txn, id).await?;
        if stored.member.id != id {
            return Err(OpError::NotActive {
                member: id,
                state: "merged",
            });
        }
        stored.member.erase(now);
        members::delete_identities(&txn, id).await?;
        members::update(&txn, &stored.member, Some(reference)).await?;
        self.commit(txn).await?;
        Ok(stored)
    }
}

impl LockedLedger {
    /// Locks exactly `id`, without following merges (a merge must see the tombstone).
    pub async fn open_exact(
        txn: &sea_orm::DatabaseTransaction,
        id: MemberId,
    ) -> Result<Self, OpError> {
        let member = members::lock(txn, id)
            .await?
            .ok_or_else(|| OpError::not_found("member", id))?;
        Self::from_member(txn, member).await
    }
}
