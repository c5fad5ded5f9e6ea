//! The reservation state machine: HELD → COMMITTED | RELEASED | EXPIRED.
//!
//! Every transition returns the per-line amounts it moved ([`LineEffect`]), so an adapter applies
//! exactly those amounts to its counters and cannot drift from the rule.

use std::fmt;

use chrono::{DateTime, Utc};
use omni_types::{LocationId, Quantity, ReservationId, Sku};
use serde::{Deserialize, Serialize};

/// One requested line: this many units of a SKU at a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReservationLine {
    pub sku: Sku,
    pub location: LocationId,
    pub qty: Quantity,
}

impl ReservationLine {
    pub fn new(sku: Sku, location: LocationId, qty: Quantity) -> Self {
        Self { sku, location, qty }
    }

    fn same_key(&self, sku: &Sku, location: &LocationId) -> bool {
        &self.sku == sku && &self.location == location
    }
}

/// A line of a reservation and what has happened to it so far. A line can be partly committed
/// (the customer took two of three) and partly released (the third was cancelled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLine {
    pub line: ReservationLine,
    pub committed: u32,
    pub released: u32,
}

impl HeldLine {
    pub fn new(line: ReservationLine) -> Self {
        Self {
            line,
            committed: 0,
            released: 0,
        }
    }

    /// Units still counted in `reserved`.
    pub fn remaining(&self) -> u32 {
        self.line
            .qty
            .get()
            .saturating_sub(self.committed + self.released)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "HELD",
            Self::Committed => "COMMITTED",
            Self::Released => "RELEASED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HELD" => Some(Self::Held),
            "COMMITTED" => Some(Self::Committed),
            "RELEASED" => Some(Self::Released),
            "EXPIRED" => Some(Self::Expired),
            _ => None,
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which lines a commit or release applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineSelection {
    /// Everything still remaining on every line.
    All,
    /// These amounts on these (sku, location) lines.
    Lines(Vec<ReservationLine>),
}

/// An amount a transition moved on one (sku, location): commit lowers `on_hand` and `reserved` by
/// it, release and expiry lower `reserved` by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEffect {
    pub sku: Sku,
    pub location: LocationId,
    pub qty: u32,
}

/// Why a transition was refused. Each variant names what the caller sent against what the
/// reservation is, so the gRPC layer can answer FAILED_PRECONDITION with a useful message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("reservation is {from}; it cannot become {to}")]
    InvalidTransition {
        from: ReservationStatus,
        to: ReservationStatus,
    },
    #[error("reservation is confirmed; only an unconfirmed hold expires")]
    Confirmed,
    #[error("reservation is not due to expire until {expires_at}")]
    NotDue { expires_at: DateTime<Utc> },
    #[error("reservation is durable; only a pending hold can be undone")]
    Durable,
    #[error("reservation has no line for {sku} at {location}")]
    UnknownLine { sku: Sku, location: LocationId },
    #[error("{sku} at {location}: asked for {requested}, only {remaining} remain held")]
    ExceedsRemaining {
        sku: Sku,
        location: LocationId,
        requested: u32,
        remaining: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub lines: Vec<HeldLine>,
    pub status: ReservationStatus,
    /// Set while nobody has confirmed the reservation; a reaper releases it after this instant.
    pub expires_at: Option<DateTime<Utc>>,
    /// The owner made it durable (an order exists), so it no longer expires.
    pub confirmed: bool,
}

impl Reservation {
    /// A new HELD reservation. Validation of the lines is [`crate::domain::ReserveRequest`]'s job.
    pub fn hold(
        id: ReservationId,
        lines: Vec<ReservationLine>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            id,
            lines: lines.into_iter().map(HeldLine::new).collect(),
            status: ReservationStatus::Held,
            expires_at,
            confirmed: false,
        }
    }

    /// The units this reservation holds on one (sku, location), for the counters and the shortage
    /// rule.
    pub fn remaining_on(&self, sku: &Sku, location: &LocationId) -> u32 {
        if self.status != ReservationStatus::Held {
            return 0;
        }
        self.lines
            .iter()
            .filter(|l| l.line.same_key(sku, location))
            .map(HeldLine::remaining)
            .sum()
    }

    /// The lines as requested, without their progress; two requests are the same request when
    /// these are equal as sets.
    pub fn requested_lines(&self) -> Vec<ReservationLine> {
        self.lines.iter().map(|l| l.line.clone()).collect()
    }

    fn require_held(&self, to: ReservationStatus) -> Result<(), StateError> {
        if self.status == ReservationStatus::Held {
            Ok(())
        } else {
            Err(StateError::InvalidTransition {
                from: self.status,
                to,
            })
        }
    }

    /// Goods left the building for these lines.
    pub fn commit(&mut self, what: &LineSelection) -> Result<Vec<LineEffect>, StateError> {
        self.require_held(ReservationStatus::Committed)?;
        let effects = self.take(what, |line, n| line.committed += n)?;
        self.settle();
        Ok(effects)
    }

    /// These lines will not be fulfilled; their units go back to sale.
    pub fn release(&mut self, what: &LineSelection) -> Result<Vec<LineEffect>, StateError> {
        self.require_held(ReservationStatus::Released)?;
        let effects = self.take(what, |line, n| line.released += n)?;
        self.settle();
        Ok(effects)
    }

    /// Releases everything of an unconfirmed hold whose time has passed.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<Vec<LineEffect>, StateError> {
        self.require_held(ReservationStatus::Expired)?;
        if self.confirmed {
            return Err(StateError::Confirmed);
        }
        match self.expires_at {
            Some(at) if at <= now => {}
            Some(at) => return Err(StateError::NotDue { expires_at: at }),
            // An unconfirmed reservation without expiry is never reaped by time.
            None => return Err(StateError::Confirmed),
        }
        let effects = self.take(&LineSelection::All, |line, n| line.released += n)?;
        self.status = ReservationStatus::Expired;
        Ok(effects)
    }

    /// The owner is durable: the reservation stays until committed or released. Idempotent.
    pub fn confirm(&mut self) -> Result<(), StateError> {
        self.require_held(ReservationStatus::Held)?;
        self.confirmed = true;
        self.expires_at = None;
        Ok(())
    }

    /// Moves an unconfirmed hold's expiry (a shopper still in checkout).
    pub fn extend(&mut self, expires_at: DateTime<Utc>) -> Result<(), StateError> {
        self.require_held(ReservationStatus::Held)?;
        if self.confirmed {
            return Err(StateError::Confirmed);
        }
        self.expires_at = Some(expires_at);
        Ok(())
    }

    /// Checks the whole selection before changing anything, so a refused commit or release leaves
    /// the reservation untouched.
    fn take(
        &mut self,
        what: &LineSelection,
        mut record: impl FnMut(&mut HeldLine, u32),
    ) -> Result<Vec<LineEffect>, StateError> {
        let plan: Vec<(usize, u32)> = match what {
            LineSelection::All => self
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i, l.remaining()))
                .filter(|(_, n)| *n > 0)
                .collect(),
            LineSelection::Lines(wanted) => {
                let mut plan: Vec<(usize, u32)> = Vec::with_capacity(wanted.len());
                for w in wanted {
                    let index = self
                        .lines
                        .iter()
                        .position(|l| l.line.same_key(&w.sku, &w.location))
                        .ok_or_else(|| StateError::UnknownLine {
                            sku: w.sku.clone(),
                            location: w.location.clone(),
                        })?;
                    let already: u32 = plan
                        .iter()
                        .filter(|(i, _)| *i == index)
                        .map(|(_, n)| n)
                        .sum();
                    let remaining = self.lines[index].remaining().saturating_sub(already);
                    if w.qty.get() > remaining {
                        return Err(StateError::ExceedsRemaining {
                            sku: w.sku.clone(),
                            location: w.location.clone(),
                            requested: w.qty.get(),
                            remaining,
                        });
                    }
                    plan.push((index, w.qty.get()));
                }
                plan
            }
        };
        Ok(plan
            .into_iter()
            .map(|(index, n)| {
                let line = &mut self.lines[index];
                record(line, n);
                LineEffect {
                    sku: line.line.sku.clone(),
                    location: line.line.location.clone(),
                    qty: n,
                }
            })
            .collect())
    }

    /// A reservation with nothing left is finished: COMMITTED if any unit left the building,
    /// otherwise RELEASED.
    fn settle(&mut self) {
        if self.lines.iter().all(|l| l.remaining() == 0) {
            self.status = if self.lines.iter().any(|l| l.committed > 0) {
                ReservationStatus::Committed
            } else {
                ReservationStatus::Released
            };
            self.expires_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, loc: &str, qty: i64) -> ReservationLine {
        ReservationLine::new(
            Sku::parse(sku).unwrap(),
            LocationId::parse(loc).unwrap(),
            Quantity::parse(qty).unwrap(),
        )
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn held() -> Reservation {
        Reservation::hold(
            ReservationId::parse("hold:web:c1").unwrap(),
            vec![line("A", "s1", 3), line("B", "s1", 2)],
            Some(at(100)),
        )
    }

    #[test]
    fn partial_commit_then_release_finishes_as_committed() {
        let mut r = held();
        let fx = r
            .commit(&LineSelection::Lines(vec![line("A", "s1", 2)]))
            .unwrap();
        assert_eq!(fx.len(), 1);
        assert_eq!(fx[0].qty, 2);
        assert_eq!(r.status, ReservationStatus::Held);
        assert_eq!(
            r.remaining_on(&Sku::parse("A").unwrap(), &LocationId::parse("s1").unwrap()),
            1
        );
        let fx = r.release(&LineSelection::All).unwrap();
        assert_eq!(fx.iter().map(|e| e.qty).sum::<u32>(), 3);
        assert_eq!(r.status, ReservationStatus::Committed);
    }

    #[test]
    fn release_of_everything_finishes_as_released() {
        let mut r = held();
        r.release(&LineSelection::All).unwrap();
        assert_eq!(r.status, ReservationStatus::Released);
        assert_eq!(
            r.commit(&LineSelection::All),
            Err(StateError::InvalidTransition {
                from: ReservationStatus::Released,
                to: ReservationStatus::Committed
            })
        );
    }

    #[test]
    fn refused_selection_changes_nothing() {
        let mut r = held();
        let before = r.clone();
        let err = r
            .commit(&LineSelection::Lines(vec![
                line("A", "s1", 1),
                line("B", "s1", 3),
            ]))
            .unwrap_err();
        assert!(matches!(
            err,
            StateError::ExceedsRemaining { remaining: 2, .. }
        ));
        assert_eq!(r, before);
        let err = r
            .release(&LineSelection::Lines(vec![line("C", "s1", 1)]))
            .unwrap_err();
        assert!(matches!(err, StateError::UnknownLine { .. }));
        // The same line twice in one selection counts against one remaining amount.
        let err = r
            .commit(&LineSelection::Lines(vec![
                line("A", "s1", 2),
                line("A", "s1", 2),
            ]))
            .unwrap_err();
        assert!(matches!(
            err,
            StateError::ExceedsRemaining { remaining: 1, .. }
        ));
        assert_eq!(r, before);
    }

    #[test]
    fn expiry_only_for_due_unconfirmed_holds() {
        let mut r = held();
        assert_eq!(
            r.expire(at(99)),
            Err(StateError::NotDue {
                expires_at: at(100)
            })
        );
        let mut confirmed = held();
        confirmed.confirm().unwrap();
        assert_eq!(confirmed.expires_at, None);
        assert_eq!(confirmed.expire(at(1000)), Err(StateError::Confirmed));
        assert_eq!(confirmed.extend(at(500)), Err(StateError::Confirmed));
        let fx = r.expire(at(100)).unwrap();
        assert_eq!(fx.iter().map(|e| e.qty).sum::<u32>(), 5);
        assert_eq!(r.status, ReservationStatus::Expired);
        assert_eq!(
            r.confirm(),
            Err(StateError::InvalidTransition {
                from: ReservationStatus::Expired,
                to: ReservationStatus::Held
            })
        );
    }

    #[test]
    fn extend_moves_the_deadline() {
        let mut r = held();
        r.extend(at(200)).unwrap();
        assert!(matches!(r.expire(at(150)), Err(StateError::NotDue { .. })));
        assert!(r.expire(at(200)).is_ok());
    }
}
