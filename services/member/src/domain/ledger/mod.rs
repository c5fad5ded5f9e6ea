//! One member's points as lots with an expiry.
//!
//! The balance is the sum of the lots' remaining points. Every operation changes lots and returns
//! the entries to append, whose signed points sum to the same balance. The balance never goes
//! negative: spending checks what is available first, and a reversal that asks for more than is
//! left stops at zero and records the shortfall.
//!
//! Points are consumed oldest-expiring first (FIFO). A pending redemption takes its points from
//! the lots immediately, so two redemptions can never spend the same point; confirming it moves
//! nothing, releasing it puts the points back into the lots they came from.
//!
//! **Points returned to a lot that expired meanwhile** (a cancellation arriving after the
//! expiry date of the points spent) go back to that lot and expire in the same operation: the
//! member never had them beyond that date, and the statement shows both movements. Refunds give
//! back the latest-expiring points of a redemption first, which is the member-friendly choice
//! when only part of an order is cancelled.
//!
//! Operations that spend points expire due lots first, so expired points are never spent even
//! when the expiry job has not run yet.

mod model;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Months, TimeDelta, Utc};
use omni_types::OrderId;
use serde::{Deserialize, Serialize};

pub use model::{
    EntryKind, LedgerConfig, LedgerEntry, LedgerError, Lot, LotId, LotMovement,
    MAX_POINTS_PER_OPERATION, Points, Redemption, RedemptionStatus,
};

use crate::domain::member::MemberId;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LedgerParts", into = "LedgerParts")]
pub struct Ledger {
    /// By id; exhausted lots are kept because refunds and audits refer to them.
    lots: BTreeMap<LotId, Lot>,
    redemptions: BTreeMap<OrderId, Redemption>,
}

/// The stored shape of a ledger: what the repository loads and saves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerParts {
    pub lots: Vec<Lot>,
    pub redemptions: Vec<Redemption>,
}

impl TryFrom<LedgerParts> for Ledger {
    type Error = LedgerError;
    fn try_from(parts: LedgerParts) -> Result<Self, LedgerError> {
        Ledger::restore(parts)
    }
}

impl From<Ledger> for LedgerParts {
    fn from(ledger: Ledger) -> Self {
        LedgerParts {
            lots: ledger.lots.into_values().collect(),
            redemptions: ledger.redemptions.into_values().collect(),
        }
    }
}

/// The entries a merge appends to each member's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeEntries {
    pub source: LedgerEntry,
    pub target: LedgerEntry,
}

fn check_points(points: Points) -> Result<(), LedgerError> {
    if points <= 0 {
        return Err(LedgerError::NonPositivePoints { points });
    }
    if points > MAX_POINTS_PER_OPERATION {
        return Err(LedgerError::TooManyPoints {
            points,
            max: MAX_POINTS_PER_OPERATION,
        });
    }
    Ok(())
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a ledger from storage, refusing rows that break its invariants rather than
    /// computing on them.
    pub fn restore(parts: LedgerParts) -> Result<Self, LedgerError> {
        let mut ledger = Ledger::new();
        for lot in parts.lots {
            if lot.remaining < 0 || lot.remaining > lot.earned {
                return Err(LedgerError::Corrupt(format!(
                    "lot {} has {} of {} points left",
                    lot.id.0, lot.remaining, lot.earned
                )));
            }
            if ledger.lots.insert(lot.id, lot).is_some() {
                return Err(LedgerError::Corrupt("duplicate lot id".into()));
            }
        }
        for redemption in parts.redemptions {
            let drawn: Points = redemption.draws.iter().map(|d| d.points).sum();
            let unknown_lot = redemption
                .draws
                .iter()
                .any(|d| d.points <= 0 || !ledger.lots.contains_key(&d.lot));
            if drawn != redemption.outstanding() || unknown_lot {
                return Err(LedgerError::Corrupt(format!(
                    "redemption for order {} does not match its lots",
                    redemption.order
                )));
            }
            if ledger
                .redemptions
                .insert(redemption.order, redemption)
                .is_some()
            {
                return Err(LedgerError::Corrupt("duplicate redemption".into()));
            }
        }
        Ok(ledger)
    }

    pub fn lots(&self) -> impl Iterator<Item = &Lot> {
        self.lots.values()
    }

    pub fn redemptions(&self) -> impl Iterator<Item = &Redemption> {
        self.redemptions.values()
    }

    pub fn redemption(&self, order: OrderId) -> Option<&Redemption> {
        self.redemptions.get(&order)
    }

    /// Points held in lots, including lots past their date that the expiry job has not reached.
    pub fn balance(&self) -> Points {
        self.lots.values().map(|lot| lot.remaining).sum()
    }

    /// Points that can be spent at `now`.
    pub fn available(&self, now: DateTime<Utc>) -> Points {
        self.lots
            .values()
            .filter(|lot| !lot.is_expired(now))
            .map(|lot| lot.remaining)
            .sum()
    }

    /// Points that expire within `(now, until]`, for "N points expire soon" notices.
    pub fn expiring_between(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> Points {
        self.lots
            .values()
            .filter(|lot| lot.expires_at > now && lot.expires_at <= until)
            .map(|lot| lot.remaining)
            .sum()
    }

    fn next_lot_id(&self) -> LotId {
        LotId(self.lots.keys().next_back().map_or(1, |id| id.0 + 1))
    }

    /// Spendable lots, oldest expiry first; ties by earning time, then id, so the order is total.
    fn fifo(&self, now: DateTime<Utc>) -> Vec<LotId> {
        let mut lots: Vec<&Lot> = self
            .lots
            .values()
            .filter(|lot| lot.remaining > 0 && !lot.is_expired(now))
            .collect();
        lots.sort_by_key(|lot| (lot.expires_at, lot.earned_at, lot.id));
        lots.into_iter().map(|lot| lot.id).collect()
    }

    /// Takes up to `points` from `order_of_lots`, returns the draws (positive amounts).
    fn draw(&mut self, order_of_lots: &[LotId], mut points: Points) -> Vec<LotMovement> {
        let mut draws = Vec::new();
        for id in order_of_lots {
            if points == 0 {
                break;
            }
            let Some(lot) = self.lots.get_mut(id) else {
                continue;
            };
            let take = lot.remaining.min(points);
            if take > 0 {
                lot.remaining -= take;
                points -= take;
                draws.push(LotMovement {
                    lot: *id,
                    points: take,
                });
            }
        }
        draws
    }

    /// Credits points earned by `order`. Earning the same order again with the same points is a
    /// no-op (a replayed purchase); with other points it is a conflict.
    pub fn earn(
        &mut self,
        order: OrderId,
        points: Points,
        now: DateTime<Utc>,
        config: &LedgerConfig,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        check_points(points)?;
        if let Some(lot) = self.lots.values().find(|lot| lot.source == Some(order)) {
            if lot.earned == points {
                return Ok(Vec::new());
            }
            return Err(LedgerError::EarnConflict {
                order,
                existing: lot.earned,
                requested: points,
            });
        }
        self.balance()
            .checked_add(points)
            .ok_or(LedgerError::BalanceLimit)?;
        let expires_at = now
            .checked_add_months(Months::new(config.lot_lifetime_months))
            .ok_or(LedgerError::DateOutOfRange)?;
        let id = self.next_lot_id();
        self.lots.insert(
            id,
            Lot {
                id,
                source: Some(order),
                earned: points,
                remaining: points,
                earned_at: now,
                expires_at,
            },
        );
        Ok(vec![
            LedgerEntry::new(EntryKind::Earn, points, now)
                .for_order(order)
                .with_lots(vec![LotMovement { lot: id, points }]),
        ])
    }

    /// Reserves points for an order until [`Ledger::confirm`] (or the hold expires). Idempotent
    /// on the order: the same points again is a no-op whatever became of the first call.
    pub fn redeem(
        &mut self,
        order: OrderId,
        points: Points,
        now: DateTime<Utc>,
        config: &LedgerConfig,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        check_points(points)?;
        if let Some(existing) = self.redemptions.get(&order) {
            if existing.points == points {
                return Ok(Vec::new());
            }
            return Err(LedgerError::RedemptionConflict {
                order,
                existing: existing.points,
                requested: points,
            });
        }
        let available = self.available(now);
        if points > available {
            return Err(LedgerError::InsufficientPoints {
                requested: points,
                available,
            });
        }
        let expires_at = now
            .checked_add_signed(TimeDelta::seconds(i64::from(config.redemption_hold_secs)))
            .ok_or(LedgerError::DateOutOfRange)?;
        let mut entries = self.expire_lots(now);
        let fifo = self.fifo(now);
        let draws = self.draw(&fifo, points);
        entries.push(
            LedgerEntry::new(EntryKind::Redeem, -points, now)
                .for_order(order)
                .with_lots(draws.iter().map(|d| negate(*d)).collect()),
        );
        self.redemptions.insert(
            order,
            Redemption {
                order,
                points,
                status: RedemptionStatus::Pending,
                created_at: now,
                expires_at,
                draws,
                refunded: 0,
            },
        );
        Ok(entries)
    }

    /// The order is durable: the points stay spent. A pending redemption past its hold that the
    /// sweep has not released yet is still confirmed, because its points are still reserved.
    pub fn confirm(
        &mut self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        let redemption = self
            .redemptions
            .get_mut(&order)
            .ok_or(LedgerError::RedemptionNotFound { order })?;
        match redemption.status {
            RedemptionStatus::Confirmed => Ok(Vec::new()),
            RedemptionStatus::Released => Err(LedgerError::RedemptionReleased { order }),
            RedemptionStatus::Pending => {
                redemption.status = RedemptionStatus::Confirmed;
                Ok(vec![
                    LedgerEntry::new(EntryKind::RedeemConfirmed, 0, now).for_order(order),
                ])
            }
        }
    }

    /// Gives back every point a redemption still holds (order cancelled, or never became
    /// durable). Releasing twice is a no-op.
    pub fn release(
        &mut self,
        order: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        let outstanding = self
            .redemptions
            .get(&order)
            .ok_or(LedgerError::RedemptionNotFound { order })?
            .outstanding();
        if outstanding == 0 {
            return Ok(Vec::new());
        }
        self.refund(order, outstanding, now)
    }

    /// Gives back part of a redemption (cancelled lines). The latest-expiring points come back
    /// first. Points landing in a lot already past its date expire at once (see module docs).
    pub fn refund(
        &mut self,
        order: OrderId,
        points: Points,
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        check_points(points)?;
        let redemption = self
            .redemptions
            .get_mut(&order)
            .ok_or(LedgerError::RedemptionNotFound { order })?;
        let refundable = redemption.outstanding();
        if points > refundable {
            return Err(LedgerError::RefundExceedsRedemption {
                order,
                requested: points,
                refundable,
            });
        }
        let kind = match redemption.status {
            RedemptionStatus::Pending => EntryKind::RedeemReleased,
            RedemptionStatus::Confirmed | RedemptionStatus::Released => EntryKind::RedeemRefunded,
        };
        let mut returned = Vec::new();
        let mut left = points;
        while left > 0 {
            let Some(last) = redemption.draws.last_mut() else {
                break;
            };
            let give = last.points.min(left);
            last.points -= give;
            left -= give;
            returned.push(LotMovement {
                lot: last.lot,
                points: give,
            });
            if last.points == 0 {
                redemption.draws.pop();
            }
        }
        redemption.refunded += points;
        if redemption.outstanding() == 0 {
            redemption.status = RedemptionStatus::Released;
        }

        let mut expired = Vec::new();
        for movement in &returned {
            if let Some(lot) = self.lots.get_mut(&movement.lot) {
                lot.remaining += movement.points;
                if lot.is_expired(now) {
                    lot.remaining -= movement.points;
                    expired.push(negate(*movement));
                }
            }
        }
        let mut entries = vec![
            LedgerEntry::new(kind, points, now)
                .for_order(order)
                .with_lots(returned),
        ];
        if !expired.is_empty() {
            let lost = expired.iter().map(|m| m.points).sum();
            entries.push(
                LedgerEntry::new(EntryKind::Expire, lost, now)
                    .for_order(order)
                    .with_lots(expired),
            );
        }
        Ok(entries)
    }

    /// The sweep: releases pending redemptions whose hold ended at or before `now`.
    pub fn release_expired_redemptions(&mut self, now: DateTime<Utc>) -> Vec<LedgerEntry> {
        let due: Vec<OrderId> = self
            .redemptions
            .values()
            .filter(|r| r.status == RedemptionStatus::Pending && r.expires_at <= now)
            .map(|r| r.order)
            .collect();
        due.into_iter()
            .flat_map(|order| self.release(order, now).unwrap_or_default())
            .collect()
    }

    /// Takes back points for returned goods, from the returned order's own lot first, then
    /// oldest-expiring. Stops at zero: whatever could not be taken back is the entry's shortfall.
    pub fn reverse(
        &mut self,
        order: OrderId,
        points: Points,
        now: DateTime<Utc>,
    ) -> Result<Vec<LedgerEntry>, LedgerError> {
        check_points(points)?;
        let mut entries = self.expire_lots(now);
        let mut order_of_lots: Vec<LotId> = self
            .lots
            .values()
            .filter(|lot| lot.source == Some(order) && lot.remaining > 0)
            .map(|lot| lot.id)
            .collect();
        let rest: Vec<LotId> = self
            .fifo(now)
            .into_iter()
            .filter(|id| !order_of_lots.contains(id))
            .collect();
        order_of_lots.extend(rest);
        let draws = self.draw(&order_of_lots, points);
        let taken: Points = draws.iter().map(|d| d.points).sum();
        let mut entry = LedgerEntry::new(EntryKind::Reverse, -taken, now)
            .for_order(order)
            .with_lots(draws.into_iter().map(negate).collect());
        entry.shortfall = points - taken;
        entries.push(entry);
        Ok(entries)
    }

    /// Zeroes every lot whose date has come, oldest first, in one entry. Empty when nothing is due.
    pub fn expire_lots(&mut self, now: DateTime<Utc>) -> Vec<LedgerEntry> {
        let mut due: Vec<&mut Lot> = self
            .lots
            .values_mut()
            .filter(|lot| lot.remaining > 0 && lot.is_expired(now))
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        due.sort_by_key(|lot| (lot.expires_at, lot.earned_at, lot.id));
        let mut movements = Vec::with_capacity(due.len());
        for lot in due {
            movements.push(LotMovement {
                lot: lot.id,
                points: -lot.remaining,
            });
            lot.remaining = 0;
        }
        let total = movements.iter().map(|m| m.points).sum();
        vec![LedgerEntry::new(EntryKind::Expire, total, now).with_lots(movements)]
    }

    /// Moves every lot and redemption of `source` into this ledger, keeping their dates, so the
    /// merged member spends and expires them exactly as before. Lots get new ids here; the
    /// entries name both ids. `source` is left empty.
    pub fn absorb(
        &mut self,
        source: &mut Ledger,
        target_member: MemberId,
        source_member: MemberId,
        now: DateTime<Utc>,
    ) -> Result<MergeEntries, LedgerError> {
        if let Some(order) = source
            .redemptions
            .keys()
            .find(|order| self.redemptions.contains_key(order))
        {
            return Err(LedgerError::MergeConflict { order: *order });
        }
        let moved = source.balance();
        self.balance()
            .checked_add(moved)
            .ok_or(LedgerError::BalanceLimit)?;

        let mut renumbered = BTreeMap::new();
        let mut out = Vec::new();
        let mut into = Vec::new();
        let first = self.next_lot_id().0;
        for (next, (old_id, mut lot)) in (first..).zip(std::mem::take(&mut source.lots)) {
            let new_id = LotId(next);
            renumbered.insert(old_id, new_id);
            if lot.remaining > 0 {
                out.push(LotMovement {
                    lot: old_id,
                    points: -lot.remaining,
                });
                into.push(LotMovement {
                    lot: new_id,
                    points: lot.remaining,
                });
            }
            lot.id = new_id;
            self.lots.insert(new_id, lot);
        }
        for (order, mut redemption) in std::mem::take(&mut source.redemptions) {
            for draw in &mut redemption.draws {
                draw.lot = renumbered.get(&draw.lot).copied().unwrap_or(draw.lot);
            }
            self.redemptions.insert(order, redemption);
        }

        let mut source_entry = LedgerEntry::new(EntryKind::MergeOut, -moved, now).with_lots(out);
        source_entry.counterpart = Some(target_member);
        let mut target_entry = LedgerEntry::new(EntryKind::MergeIn, moved, now).with_lots(into);
        target_entry.counterpart = Some(source_member);
        Ok(MergeEntries {
            source: source_entry,
            target: target_entry,
        })
    }

    /// Checks the invariants the store relies on; used by tests and by `restore`-time audits.
    pub fn check_invariants(&self) -> Result<(), LedgerError> {
        Ledger::restore(LedgerParts::from(self.clone())).map(|_| ())
    }
}

fn negate(movement: LotMovement) -> LotMovement {
    LotMovement {
        lot: movement.lot,
        points: -movement.points,
    }
}
