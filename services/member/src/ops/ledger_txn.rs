//! One member's ledger, locked for the length of a transaction.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;

use omni_platform::events::outbox;

use super::{OpError, outbox as events};
use crate::domain::{Ledger, LedgerEntry, LedgerParts, MemberId, MemberStatus, Points};
use crate::store::StoreError;
use crate::store::entities::entry;
use crate::store::ledger::{self, EntryContext};
use crate::store::members::{self, StoredMember};

/// How many merge tombstones are followed before giving up: merges form chains only when a
/// survivor is later merged itself, and a longer chain means a cycle written by hand.
const MAX_MERGE_HOPS: usize = 8;

pub struct LockedLedger {
    pub member: StoredMember,
    pub ledger: Ledger,
    before: LedgerParts,
    balance: Points,
}

impl LockedLedger {
    /// Locks `id`, following merges to the surviving member (locking each on the way: a merge
    /// also takes these locks, so the chain cannot change under us).
    pub async fn open(txn: &DatabaseTransaction, id: MemberId) -> Result<Self, OpError> {
        let member = lock_following_merges(txn, id).await?;
        Self::from_member(txn, member).await
    }

    /// For jobs: `None` when another transaction holds the member (it is left for the next run).
    pub async fn try_open(
        txn: &DatabaseTransaction,
        id: MemberId,
    ) -> Result<Option<Self>, OpError> {
        match members::try_lock(txn, id).await? {
            None => Ok(None),
            Some(member) => Self::from_member(txn, member).await.map(Some),
        }
    }

    pub(super) async fn from_member(
        txn: &DatabaseTransaction,
        member: StoredMember,
    ) -> Result<Self, OpError> {
        let ledger = ledger::load(txn, member.member.id).await?;
        let before = LedgerParts::from(ledger.clone());
        let balance = ledger.balance();
        Ok(Self {
            member,
            ledger,
            before,
            balance,
        })
    }

    pub fn id(&self) -> MemberId {
        self.member.member.id
    }

    /// Writes the ledger's changed rows, appends `entries` and enqueues one
    /// `member.points.changed` per balance change, all in `txn`.
    pub async fn write(
        &mut self,
        txn: &DatabaseTransaction,
        entries: &[LedgerEntry],
        context: &EntryContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<entry::Model>, OpError> {
        let id = self.id();
        ledger::save(
            txn,
            id,
            &self.before,
            &self.ledger,
            context.channel.as_deref(),
            now,
        )
        .await?;
        let rows = ledger::append(txn, id, self.balance, entries, &self.ledger, context).await?;
        outbox::enqueue_all(txn, &events::points_changed(&rows)?)
            .await
            .map_err(StoreError::from)?;
        self.before = LedgerParts::from(self.ledger.clone());
        self.balance = self.ledger.balance();
        Ok(rows)
    }
}

pub async fn lock_following_merges(
    txn: &DatabaseTransaction,
    id: MemberId,
) -> Result<StoredMember, OpError> {
    let mut current = id;
    for _ in 0..=MAX_MERGE_HOPS {
        let member = members::lock(txn, current)
            .await?
            .ok_or_else(|| OpError::not_found("member", current))?;
        match member.member.status {
            MemberStatus::Merged { into, .. } => current = into,
            _ => return Ok(member),
        }
    }
    Err(OpError::Internal(format!(
        "member {id}: merge chain longer than {MAX_MERGE_HOPS}"
    )))
}

/// Refuses changes to a member that is not active (erased members keep their ledger for the
/// books, but spend nothing).
pub fn require_active(member: &StoredMember) -> Result<(), OpError> {
    match member.member.status {
        MemberStatus::Active => Ok(()),
        MemberStatus::Merged { .. } => Err(OpError::NotActive {
            member: member.member.id,
            state: "merged",
        }),
        MemberStatus::Erased { .. } => Err(OpError::NotActive {
            member: member.member.id,
            state: "erased",
        }),
    }
}
