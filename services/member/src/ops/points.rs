//! Balance, statement, redemptions and the ledger jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use omni_platform::events::inbox;
use omni_types::OrderId;

use super::ledger_txn::{LockedLedger, require_active};
use super::{MemberOps, ORDERS_CONSUMER, OpError};
use crate::domain::{LedgerConfig, MemberId, Points, RedemptionStatus};
use crate::store::entities::{entry, redemption};
use crate::store::ledger::{self, EntryContext};
use crate::store::{StoreError, members};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub member: MemberId,
    pub available: Points,
    pub pending: Points,
    /// (points, expires_at), soonest first.
    pub next_expiries: Vec<(Points, DateTime<Utc>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerPage {
    pub entries: Vec<entry::Model>,
    /// The `seq` to continue before, when there may be more.
    pub next_before: Option<i64>,
}

/// Expiries shown by GetBalance.
const EXPIRIES_SHOWN: usize = 10;
/// Members a job handles per run: bounded so one run cannot hold the database for long.
const JOB_BATCH: u64 = 500;

impl MemberOps {
    pub async fn balance(&self, id: MemberId) -> Result<Balance, OpError> {
        let now = self.now();
        let txn = self.begin().await?;
        // The lock gives a balance consistent with the pending redemptions read alongside.
        let locked = LockedLedger::open(&txn, id).await?;
        let ledger = &locked.ledger;
        let pending = ledger
            .redemptions()
            .filter(|r| r.status == RedemptionStatus::Pending)
            .map(|r| r.outstanding())
            .sum();
        let mut lots: Vec<_> = ledger
            .lots()
            .filter(|l| l.remaining > 0 && !l.is_expired(now))
            .collect();
        lots.sort_by_key(|l| (l.expires_at, l.id));
        let balance = Balance {
            member: locked.id(),
            available: ledger.available(now),
            pending,
            next_expiries: lots
                .into_iter()
                .take(EXPIRIES_SHOWN)
                .map(|l| (l.remaining, l.expires_at))
                .collect(),
        };
        txn.rollback().await.map_err(StoreError::from)?;
        Ok(balance)
    }

    /// A page of the member's own statement (a merged member keeps its history, ending in
    /// MERGE_OUT).
    pub async fn ledger_page(
        &self,
        id: MemberId,
        before: Option<i64>,
        size: u64,
    ) -> Result<LedgerPage, OpError> {
        if members::find(self.db(), id).await?.is_none() {
            return Err(OpError::not_found("member", id));
        }
        let mut entries = ledger::page(self.db(), id, before, size + 1).await?;
        let more = entries.len() as u64 > size;
        entries.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_before = if more {
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(LedgerPage {
            entries,
            next_before,
        })
    }

    /// Takes points for `order` until confirmed or `ttl` (default: the configured hold) ends.
    /// Same order and points again answers the first redemption, whatever became of it.
    pub async fn redeem(
        &self,
        id: MemberId,
        order: OrderId,
        points: Points,
        ttl: Option<Duration>,
        channel: Option<String>,
    ) -> Result<redemption::Model, OpError> {
        let now = self.now();
        let txn = self.begin().await?;
        let mut locked = LockedLedger::open(&txn, id).await?;
        if let Some(existing) = ledger::redemption_row(&txn, order).await?
            && existing.member_id != locked.id().as_uuid()
        {
            return Err(OpError::Conflict(format!(
                "order {order} already redeemed points of another member"
            )));
        }
        if locked.ledger.redemption(order).is_none() {
            require_active(&locked.member)?;
        }
        let config = LedgerConfig {
            redemption_hold_secs: ttl.map_or(self.policy.ledger.redemption_hold_secs, |t| {
                u32::try_from(t.as_secs()).unwrap_or(u32::MAX)
            }),
            ..self.policy.ledger
        };
        let entries = locked.ledger.redeem(order, points, now, &config)?;
        let context = EntryContext {
            channel,
            ..EntryContext::default()
        };
        locked.write(&txn, &entries, &context, now).await?;
        let row = ledger::redemption_row(&txn, order)
            .await?
            .ok_or_else(|| OpError::Internal(format!("redemption {order} vanished")))?;
        self.commit(txn).await?;
        Ok(row)
    }

    pub async fn confirm(&self, order: OrderId) -> Result<redemption::Model, OpError> {
        let now = self.now();
        let row = ledger::redemption_row(self.db(), order)
            .await?
            .ok_or_else(|| OpError::not_found("redemption", order))?;
        let txn = self.begin().await?;
        let mut locked = LockedLedger::open(&txn, row.member_id.into()).await?;
        let entries = locked.ledger.confirm(order, now)?;
        locked
            .write(&txn, &entries, &EntryContext::default(), now)
            .await?;
        let row = ledger::redemption_row(&txn, order)
            .await?
            .ok_or_else(|| OpError::not_found("redemption", order))?;
        self.commit(txn).await?;
        Ok(row)
    }

    /// `order.cancelled`: gives back the cancelled part of the redemption, or all of a
    /// redemption that is still pending when the whole order went. Orders without redeemed
    /// points need nothing.
    pub async fn on_order_cancelled(
        &self,
        event_id: &str,
        order: OrderId,
        points_to_refund: Points,
        whole_order: bool,
        channel: Option<String>,
    ) -> Result<(), OpError> {
        let now = self.now();
        let txn = self.begin().await?;
        if !inbox::claim(&txn, ORDERS_CONSUMER, event_id)
            .await
            .map_err(StoreError::from)?
        {
            return Ok(());
        }
        if let Some(row) = ledger::redemption_row(&txn, order).await? {
            let mut locked = LockedLedger::open(&txn, row.member_id.into()).await?;
            if let Some(redemption) = locked.ledger.redemption(order) {
                let outstanding = redemption.outstanding();
                let pending = redemption.status == RedemptionStatus::Pending;
                let give_back = if whole_order && pending {
                    outstanding
                } else {
                    points_to_refund.min(outstanding)
                };
                if give_back > 0 {
                    let entries = locked.ledger.refund(order, give_back, now)?;
                    let context = EntryContext {
                        channel,
                        reason: Some("order cancelled".to_owned()),
                        ..EntryContext::default()
                    };
                    locked.write(&txn, &entries, &context, now).await?;
                }
            }
        }
        self.commit(txn).await
    }

    /// Job: releases pending redemptions whose hold ended at or before `now`. Returns the
    /// number of members whose points came back.
    pub async fn release_expired_holds(&self, now: DateTime<Utc>) -> Result<usize, OpError> {
        let due = ledger::members_with_expired_holds(self.db(), now, JOB_BATCH).await?;
        self.for_each_claimed(
            due,
            now,
            |locked, now| locked.ledger.release_expired_redemptions(now),
            "redemption hold expired",
        )
        .await
    }

    /// Job: zeroes lots whose date has come, oldest first. Returns the members touched.
    pub async fn expire_lots(&self, now: DateTime<Utc>) -> Result<usize, OpError> {
        let due = ledger::members_with_due_lots(self.db(), now, JOB_BATCH).await?;
        self.for_each_claimed(
            due,
            now,
            |locked, now| locked.ledger.expire_lots(now),
            "points expired",
        )
        .await
    }

    /// One short transaction per member, claimed with `SKIP LOCKED`, so replicas split the
    /// work and a member busy with a request is simply left for the next run.
    async fn for_each_claimed(
        &self,
        members: Vec<MemberId>,
        now: DateTime<Utc>,
        apply: impl Fn(&mut LockedLedger, DateTime<Utc>) -> Vec<crate::domain::LedgerEntry>,
        reason: &str,
    ) -> Result<usize, OpError> {
        let mut changed = 0;
        for id in members {
            let txn = self.begin().await?;
            let Some(mut locked) = LockedLedger::try_open(&txn, id).await? else {
                continue;
            };
            let entries = apply(&mut locked, now);
            if entries.is_empty() {
                txn.rollback().await.map_err(StoreError::from)?;
                continue;
            }
            let context = EntryContext {
                reason: Some(reason.to_owned()),
                ..EntryContext::default()
            };
            locked.write(&txn, &entries, &context, now).await?;
            self.commit(txn).await?;
            changed += 1;
        }
        Ok(changed)
    }
}
