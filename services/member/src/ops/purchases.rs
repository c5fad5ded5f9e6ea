//! Purchases and returns, from the till (gRPC) and from order events: earning, pro-rata
//! reversal and tier re-evaluation.

use chrono::{DateTime, Utc};
use omni_platform::events::{inbox, outbox};
use omni_types::{ChannelId, Money, OrderId};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::ledger_txn::{LockedLedger, require_active};
use super::members::MemberRef;
use super::outbox as events;
use super::{MemberOps, ORDERS_CONSUMER, OpError};
use crate::domain::{MemberId, Points, TierChange, reversal_points, rolling_spend, tier_change};
use crate::store::StoreError;
use crate::store::entities::entry;
use crate::store::ledger::EntryContext;
use crate::store::members::{self, StoredMember};
use crate::store::purchases::{self, PurchaseRow, ReturnRow};

#[derive(Debug, Clone)]
pub struct PurchaseRequest {
    pub member: MemberRef,
    pub store: Option<String>,
    pub channel: ChannelId,
    pub receipt: String,
    pub amount: Money,
    /// When the till rang it up; `None` = now.
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseOutcome {
    pub member: Option<StoredMember>,
    pub points_earned: Points,
    pub entry: Option<entry::Model>,
}

#[derive(Debug, Clone)]
pub struct ReturnRequest {
    pub channel: ChannelId,
    pub receipt: String,
    pub return_id: String,
    pub amount: Money,
    /// `None` = now.
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReturnOutcome {
    pub reversed: Points,
    pub shortfall: Points,
    pub entry: Option<entry::Model>,
}

/// What one purchase is, whichever door it came through.
struct NewPurchase {
    /// The order id for orders (so returns find it), a fresh id for till receipts.
    id: Uuid,
    order: Option<OrderId>,
    member: Option<MemberId>,
    channel: ChannelId,
    store: Option<String>,
    reference: String,
    amount: Money,
    occurred_at: DateTime<Utc>,
}

impl MemberOps {
    pub async fn record_purchase(
        &self,
        request: PurchaseRequest,
    ) -> Result<PurchaseOutcome, OpError> {
        let txn = self.begin().await?;
        let member = match &request.member {
            MemberRef::Id(id) => *id,
            MemberRef::Identity(identity) => members::owner_of(&txn, identity)
                .await?
                .ok_or_else(|| OpError::not_found("identity", identity))?,
        };
        let outcome = self
            .purchase_in(
                &txn,
                NewPurchase {
                    id: Uuid::now_v7(),
                    order: None,
                    member: Some(member),
                    channel: request.channel,
                    store: request.store,
                    reference: request.receipt,
                    amount: request.amount,
                    occurred_at: request.occurred_at.unwrap_or_else(|| self.now()),
                },
                true,
            )
            .await?;
        self.commit(txn).await?;
        Ok(outcome)
    }

    pub async fn record_return(&self, request: ReturnRequest) -> Result<ReturnOutcome, OpError> {
        let txn = self.begin().await?;
        let purchase = purchases::by_reference(&txn, request.channel.as_str(), &request.receipt)
            .await?
            .ok_or_else(|| OpError::not_found("receipt", &request.receipt))?;
        if purchase.currency != request.amount.currency.as_str() {
            return Err(OpError::invalid(
                "amount.currency",
                format!("must be the purchase's currency {}", purchase.currency),
            ));
        }
        let outcome = self
            .return_in(
                &txn,
                &purchase,
                &request.return_id,
                request.amount.minor_units,
                request.occurred_at.unwrap_or_else(|| self.now()),
            )
            .await?;
        self.commit(txn).await?;
        Ok(outcome)
    }

    /// `order.completed`: records the purchase (guests too: they count in the report) and
    /// earns the member's points, exactly once per event.
    pub async fn on_order_completed(
        &self,
        event_id: &str,
        order: OrderId,
        member: Option<MemberId>,
        channel: ChannelId,
        amount: Money,
        completed_at: DateTime<Utc>,
    ) -> Result<(), OpError> {
        let txn = self.begin().await?;
        if !claim(&txn, event_id).await? {
            return Ok(());
        }
        self.purchase_in(
            &txn,
            NewPurchase {
                id: order.as_uuid(),
                order: Some(order),
                member,
                reference: order.to_string(),
                channel,
                store: None,
                amount,
                occurred_at: completed_at,
            },
            false,
        )
        .await?;
        self.commit(txn).await
    }

    /// `order.returned`: reverses the returned share of the order's points. A return whose
    /// completion has not been seen yet fails with [`OpError::NotYetCompleted`] and nothing is
    /// written (the inbox claim rolls back too), so the redelivery applies it.
    pub async fn on_order_returned(
        &self,
        event_id: &str,
        order: OrderId,
        return_id: &str,
        refund: Money,
        returned_at: DateTime<Utc>,
    ) -> Result<(), OpError> {
        let txn = self.begin().await?;
        if !claim(&txn, event_id).await? {
            return Ok(());
        }
        let purchase = purchases::by_order(&txn, order)
            .await?
            .ok_or(OpError::NotYetCompleted { order })?;
        let returned = if refund.currency.as_str() == purchase.currency {
            refund.minor_units
        } else {
            return Err(OpError::invalid(
                "refund_amount.currency",
                format!("must be the order's currency {}", purchase.currency),
            ));
        };
        let left = purchase.amount_minor - purchase.returned_minor;
        // Orders' refunds may include amounts the member service never counted (shipping):
        // what exceeds the purchase stops at the purchase.
        self.return_in(&txn, &purchase, return_id, returned.min(left), returned_at)
            .await?;
        self.commit(txn).await
    }

    async fn purchase_in(
        &self,
        txn: &DatabaseTransaction,
        purchase: NewPurchase,
        strict: bool,
    ) -> Result<PurchaseOutcome, OpError> {
        let now = self.now();
        if purchase.amount.minor_units <= 0 && strict {
            return Err(OpError::invalid("amount.minor_units", "must be positive"));
        }
        if let Some(existing) =
            purchases::by_reference(txn, purchase.channel.as_str(), &purchase.reference).await?
        {
            return self.replayed_purchase(txn, existing, &purchase).await;
        }
        let mut locked = match purchase.member {
            Some(id) => Some(LockedLedger::open(txn, id).await?),
            None => None,
        };
        if let (Some(locked), true) = (&locked, strict) {
            require_active(&locked.member)?;
        }
        let earning = locked
            .as_ref()
            .filter(|l| l.member.member.is_active())
            .map(|l| {
                self.policy.rules.points_for(
                    purchase.amount,
                    &purchase.channel,
                    l.member.member.tier,
                )
            })
            .transpose()?
            .unwrap_or(0);
        purchases::insert(
            txn,
            &PurchaseRow {
                id: purchase.id,
                member_id: locked.as_ref().map(|l| l.id().as_uuid()),
                channel_id: purchase.channel.to_string(),
                store_id: purchase.store.clone(),
                reference: purchase.reference.clone(),
                order_id: purchase.order.map(|o| o.as_uuid()),
                amount_minor: purchase.amount.minor_units,
                currency: purchase.amount.currency.as_str().to_owned(),
                returned_minor: 0,
                points_earned: earning,
                occurred_at: purchase.occurred_at,
            },
        )
        .await?;
        let Some(locked) = locked.as_mut() else {
            return Ok(PurchaseOutcome {
                member: None,
                points_earned: 0,
                entry: None,
            });
        };
        let mut entry = None;
        if earning > 0 {
            let entries = locked.ledger.earn(
                OrderId::from(purchase.id),
                earning,
                purchase.occurred_at,
                &self.policy.ledger,
            )?;
            let context = EntryContext {
                channel: Some(purchase.channel.to_string()),
                receipt: purchase.order.is_none().then(|| purchase.reference.clone()),
                reason: Some("purchase".to_owned()),
            };
            entry = locked
                .write(txn, &entries, &context, now)
                .await?
                .into_iter()
                .next();
        }
        self.reevaluate_tier(txn, &mut locked.member, now).await?;
        Ok(PurchaseOutcome {
            member: Some(locked.member.clone()),
            points_earned: earning,
            entry,
        })
    }

    /// The same receipt again: the first answer if it is the same purchase, a conflict if not.
    async fn replayed_purchase(
        &self,
        txn: &DatabaseTransaction,
        existing: PurchaseRow,
        purchase: &NewPurchase,
    ) -> Result<PurchaseOutcome, OpError> {
        let same_amount = existing.amount_minor == purchase.amount.minor_units
            && existing.currency == purchase.amount.currency.as_str();
        if !same_amount {
            return Err(OpError::Conflict(format!(
                "receipt {} of channel {} was recorded with another amount",
                purchase.reference, purchase.channel
            )));
        }
        let member = match existing.member_id {
            Some(id) => members::find(txn, MemberId::from(id)).await?,
            None => None,
        };
        Ok(PurchaseOutcome {
            member,
            points_earned: existing.points_earned,
            entry: None,
        })
    }

    async fn return_in(
        &self,
        txn: &DatabaseTransaction,
        purchase: &PurchaseRow,
        return_id: &str,
        amount: i64,
        occurred_at: DateTime<Utc>,
    ) -> Result<ReturnOutcome, OpError> {
        let now = self.now();
        if let Some(existing) = purchases::find_return(txn, purchase.id, return_id).await? {
            if existing.amount_minor != amount {
                return Err(OpError::Conflict(format!(
                    "return {return_id} was recorded with another amount"
                )));
            }
            return Ok(ReturnOutcome {
                reversed: existing.points_reversed,
                shortfall: existing.shortfall,
                entry: None,
            });
        }
        let points = reversal_points(
            purchase.points_earned,
            purchase.amount_minor,
            purchase.returned_minor,
            amount,
        )?;
        let mut outcome = ReturnOutcome {
            reversed: 0,
            shortfall: 0,
            entry: None,
        };
        if let Some(member) = purchase.member_id {
            let mut locked = LockedLedger::open(txn, MemberId::from(member)).await?;
            if points > 0 {
                let entries = locked
                    .ledger
                    .reverse(OrderId::from(purchase.id), points, now)?;
                let context = EntryContext {
                    channel: Some(purchase.channel_id.clone()),
                    receipt: purchase
                        .order_id
                        .is_none()
                        .then(|| purchase.reference.clone()),
                    reason: Some(format!("return {return_id}")),
                };
                let rows = locked.write(txn, &entries, &context, now).await?;
                let reversal = rows.into_iter().last();
                outcome.reversed = reversal.as_ref().map_or(0, |r| -r.points);
                outcome.shortfall = reversal.as_ref().map_or(0, |r| r.shortfall);
                outcome.entry = reversal;
            }
            purchases::add_return(
                txn,
                &ReturnRow {
                    purchase_id: purchase.id,
                    return_id: return_id.to_owned(),
                    amount_minor: amount,
                    points_reversed: outcome.reversed,
                    shortfall: outcome.shortfall,
                    occurred_at,
                },
            )
            .await?;
            self.reevaluate_tier(txn, &mut locked.member, now).await?;
        } else {
            purchases::add_return(
                txn,
                &ReturnRow {
                    purchase_id: purchase.id,
                    return_id: return_id.to_owned(),
                    amount_minor: amount,
                    points_reversed: 0,
                    shortfall: 0,
                    occurred_at,
                },
            )
            .await?;
        }
        Ok(outcome)
    }

    /// Rolling 12-month spend in the book currency, net of returns.
    pub(super) async fn spend_12m(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        member: MemberId,
        now: DateTime<Utc>,
    ) -> Result<i64, OpError> {
        let book = self.policy.book_currency.as_str();
        let rows = purchases::of_member(txn, member).await?;
        Ok(rolling_spend(
            rows.iter()
                .filter(|r| r.currency == book)
                .map(|r| (r.occurred_at, r.amount_minor - r.returned_minor)),
            now,
        ))
    }

    /// Sets the tier the member's spend earns now; records and announces a change.
    pub(super) async fn reevaluate_tier(
        &self,
        txn: &DatabaseTransaction,
        member: &mut StoredMember,
        now: DateTime<Utc>,
    ) -> Result<Option<TierChange>, OpError> {
        if !member.member.is_active() {
            return Ok(None);
        }
        let spend = self.spend_12m(txn, member.member.id, now).await?;
        let target = self.policy.thresholds.tier_for(spend);
        let Some(change) = tier_change(member.member.tier, target) else {
            return Ok(None);
        };
        member.member.tier = target;
        member.member.updated_at = now;
        members::update(txn, &member.member, None).await?;
        let currency = self.policy.book_currency;
        members::record_tier_change(
            txn,
            member.member.id,
            change.from,
            change.to,
            spend,
            currency.as_str(),
            now,
        )
        .await?;
        let event = events::tier_changed(member.member.id, change, spend, currency, now)?;
        outbox::enqueue(txn, &event)
            .await
            .map_err(StoreError::from)?;
        Ok(Some(change))
    }

    /// Job: re-evaluates members above the base tier as purchases leave the 12-month window.
    /// Returns how many changed tier.
    pub async fn downgrade_tiers(&self, now: DateTime<Utc>) -> Result<usize, OpError> {
        let mut changed = 0;
        for id in members::tiered_member_ids(self.db()).await? {
            let txn = self.begin().await?;
            let Some(mut member) = members::try_lock(&txn, id).await? else {
                continue;
            };
            if self
                .reevaluate_tier(&txn, &mut member, now)
                .await?
                .is_some()
            {
                self.commit(txn).await?;
                changed += 1;
            } else {
                txn.rollback().await.map_err(StoreError::from)?;
            }
        }
        Ok(changed)
    }
}

async fn claim(txn: &DatabaseTransaction, event_id: &str) -> Result<bool, OpError> {
    Ok(inbox::claim(txn, ORDERS_CONSUMER, event_id)
        .await
        .map_err(StoreError::from)?)
}
