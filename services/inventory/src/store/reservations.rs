//! Reservation rows and their lines. `reserved` and capacity used are derived from them (see the
//! migration), so making a hold durable is a few inserts that never wait on a shared row.

use chrono::{DateTime, Utc};
use omni_platform::events::Envelope;
use omni_platform::events::outbox;
use omni_types::{LocationId, Quantity, ReservationId, Sku};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, TransactionTrait,
};

use super::hold_batch::{self, HoldWritten, QueuedHold};
use super::sql::{self, for_update};
use super::{Store, StoreError};
use crate::domain::{
    CapacityDay, HeldLine, LineEffect, LineSelection, Reservation, ReservationLine,
    ReservationStatus, StateError, StockLevel,
};

/// A hold that the gate accepted, to be made durable.
#[derive(Debug, Clone)]
pub struct InsertHold {
    pub reservation: Reservation,
    pub fingerprint: String,
    pub capacity: Vec<(LocationId, CapacityDay)>,
    pub created_at: DateTime<Utc>,
}

/// What a settlement does to a HELD reservation.
#[derive(Debug, Clone)]
pub enum SettleAction {
    Commit(LineSelection),
    Release(LineSelection),
    Expire(DateTime<Utc>),
}

/// The reservation after a transition, the amounts it moved and the counters they left.
#[derive(Debug, Clone)]
pub struct Settled {
    pub reservation: Reservation,
    pub effects: Vec<LineEffect>,
    pub levels: Vec<(Sku, LocationId, StockLevel)>,
}

/// A reservation as stored, with what the gate does not keep forever.
#[derive(Debug, Clone)]
pub struct StoredReservation {
    pub reservation: Reservation,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub capacity: Vec<(LocationId, CapacityDay)>,
    /// The row's `xmin` as read (PostgreSQL): a write conditioned on it misses if anybody
    /// wrote the reservation since.
    pub version: Option<String>,
}

impl Store {
    /// Writes the reservation, its lines and the caller's events in one transaction. `Conflict`
    /// when the id is already stored.
    pub async fn insert_hold(
        &self,
        hold: &InsertHold,
        events: &[Envelope],
    ) -> Result<(), StoreError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return self.insert_hold_in_transaction(hold, events).await;
        }
        let queued = QueuedHold {
            hold: hold.clone(),
            events: events.to_vec(),
        };
        match self.hold_batcher().write(queued).await {
            HoldWritten::Written => Ok(()),
            HoldWritten::Conflict => Err(already_stored(hold)),
            HoldWritten::Failed(error) => Err(error),
            HoldWritten::Alone(queued) => match hold_batch::insert(&self.db, &[&queued]).await {
                Ok(inserted) if inserted.is_empty() => Err(already_stored(hold)),
                Ok(_) => Ok(()),
                Err(error) => Err(StoreError::from_autocommit(error)),
            },
        }
    }

    /// The embedded database's path: SQLite has no INSERT inside WITH, and no round trips to save.
    async fn insert_hold_in_transaction(
        &self,
        hold: &InsertHold,
        events: &[Envelope],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        let r = &hold.reservation;
        let capacity_date = hold.capacity.first().map(|(_, day)| day.to_string());
        sql::execute(
            &txn,
            "INSERT INTO reservations (id, status, fingerprint, expires_at, confirmed, \
             count_capacity, capacity_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            vec![
                r.id.to_string().into(),
                r.status.as_str().into(),
                hold.fingerprint.clone().into(),
                r.expires_at.into(),
                r.confirmed.into(),
                (!hold.capacity.is_empty()).into(),
                capacity_date.into(),
                hold.created_at.into(),
            ],
        )
        .await?;
        insert_lines(&txn, r).await?;
        outbox::enqueue_all(&txn, events).await?;
        txn.commit().await.map_err(StoreError::at_commit)
    }

    pub async fn reservation(
        &self,
        id: &ReservationId,
    ) -> Result<Option<StoredReservation>, StoreError> {
        let txn = self.db.begin().await?;
        let found = load(&txn, id, false).await?;
        txn.commit().await?;
        Ok(found)
    }

    /// Applies a commit, release or expiry to the stored reservation under a row lock, moves the
    /// counters by exactly the amounts the state machine returned, and writes the events that
    /// `events` builds from the result, all in one transaction.
    pub async fn settle(
        &self,
        id: &ReservationId,
        action: &SettleAction,
        now: DateTime<Utc>,
        events: impl FnOnce(&Settled) -> Vec<Envelope>,
    ) -> Result<Result<Settled, SettleRefused>, StoreError> {
        let txn = self.db.begin().await?;
        let Some(mut stored) = load(&txn, id, true).await? else {
            return Ok(Err(SettleRefused::NotFound));
        };
        let outcome = match action {
            SettleAction::Commit(lines) => stored.reservation.commit(lines),
            SettleAction::Release(lines) => stored.reservation.release(lines),
            SettleAction::Expire(at) => stored.reservation.expire(*at),
        };
        let effects = match outcome {
            Ok(effects) => effects,
            Err(refused) => return Ok(Err(SettleRefused::State(refused, stored.reservation))),
        };
        write_back(&txn, &stored.reservation, now).await?;
        let mut levels = Vec::with_capacity(effects.len());
        for effect in &effects {
            let qty = i64::from(effect.qty);
            let level = match action {
                SettleAction::Commit(_) => {
                    let level = bump_level(&txn, &effect.sku, &effect.location, -qty, now).await?;
                    let committed_after = stored
                        .reservation
                        .lines
                        .iter()
                        .find(|l| l.line.sku == effect.sku && l.line.location == effect.location)
                        .map_or(0, |l| l.committed);
                    super::stock::insert_movement(
                        &txn,
                        &super::stock::LedgerRow {
                            sku: &effect.sku,
                            location: &effect.location,
                            kind: "COMMIT",
                            delta: -qty,
                            on_hand_after: level.on_hand,
                            idempotency_key: format!(
                                "commit:{id}:{}:{}:{committed_after}",
                                effect.sku, effect.location
                            ),
                            reference: id.to_string(),
                            at: now,
                        },
                    )
                    .await?;
                    level
                }
                SettleAction::Release(_) | SettleAction::Expire(_) => {
                    level_of(&txn, &effect.sku, &effect.location).await?
                }
            };
            levels.push((effect.sku.clone(), effect.location.clone(), level));
        }
        let settled = Settled {
            reservation: stored.reservation,
            effects,
            levels,
        };
        outbox::enqueue_all(&txn, &events(&settled)).await?;
        txn.commit().await.map_err(StoreError::at_commit)?;
        Ok(Ok(settled))
    }

    /// Confirms (drops the expiry) or extends a HELD reservation.
    pub async fn update_hold(
        &self,
        id: &ReservationId,
        change: HoldChange,
        now: DateTime<Utc>,
    ) -> Result<Result<Reservation, SettleRefused>, StoreError> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            if let HoldChange::Confirm = change
                && let Some(confirmed) = self.confirm_held(id, now).await?
            {
                return Ok(Ok(confirmed));
            }
            for _ in 0..UNLOCKED_HOLD_UPDATE_TRIES {
                if let Some(answer) = self.update_hold_unlocked(id, change, now).await? {
                    return Ok(answer);
                }
            }
        }
        let txn = self.db.begin().await?;
        let Some(mut stored) = load(&txn, id, true).await? else {
            return Ok(Err(SettleRefused::NotFound));
        };
        if let Err(refused) = change_hold(&mut stored.reservation, change) {
            return Ok(Err(SettleRefused::State(refused, stored.reservation)));
        }
        write_header(&txn, &stored.reservation, now, None).await?;
        txn.commit().await.map_err(StoreError::at_commit)?;
        Ok(Ok(stored.reservation))
    }

    /// The common confirmation, a HELD and unconfirmed reservation, in one round trip: the
    /// UPDATE is conditioned on the state [`Reservation::confirm`] accepts and makes the same
    /// change, and answers the reservation as written. `None` for any other state (absent,
    /// already confirmed, settled): the general path gives the answer the domain decides.
    async fn confirm_held(
        &self,
        id: &ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Option<Reservation>, StoreError> {
        let rows = sql::query_all(
            &self.db,
            &format!(
                "WITH r AS (\
                     UPDATE reservations SET confirmed = true, expires_at = NULL, updated_at = $2 \
                     WHERE id = $1 AND status = $3 AND NOT confirmed RETURNING *, \
                     xmin::text AS version) \
                 SELECT {HEADER_COLUMNS}, r.version, {LINE_COLUMNS} FROM r \
                 LEFT JOIN reservation_lines l ON l.reservation_id = r.id \
                 ORDER BY l.sku, l.location_id"
            ),
            vec![
                id.to_string().into(),
                now.into(),
                ReservationStatus::Held.as_str().into(),
            ],
        )
        .await
        .map_err(StoreError::from_autocommit)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let stored = stored_from(id, &ReadReservation::Joined(rows), DbBackend::Postgres)?;
        Ok(Some(stored.reservation))
    }

    /// [`Store::update_hold`] in three round trips instead of five: the reservation read without
    /// a lock or a transaction, the header written back by one autocommit UPDATE conditioned on
    /// the row's `xmin` (PostgreSQL). Every writer of a reservation's lines writes its header in
    /// the same transaction, so a write between the read and the UPDATE, even one that fell
    /// between reading the header and reading the lines, makes the UPDATE miss: `None`, read
    /// again.
    async fn update_hold_unlocked(
        &self,
        id: &ReservationId,
        change: HoldChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<Reservation, SettleRefused>>, StoreError> {
        let Some(mut stored) = load(&self.db, id, false).await? else {
            return Ok(Some(Err(SettleRefused::NotFound)));
        };
        let version = stored
            .version
            .take()
            .ok_or_else(|| StoreError::Corrupt(format!("reservation {id}: no row version")))?;
        if let Err(refused) = change_hold(&mut stored.reservation, change) {
            return Ok(Some(Err(SettleRefused::State(refused, stored.reservation))));
        }
        let written = write_header(&self.db, &stored.reservation, now, Some(version))
            .await
            .map_err(StoreError::from_autocommit)?;
        Ok(written.then_some(Ok(stored.reservation)))
    }

    /// Moves a HELD checkout hold's remaining lines to a new order reservation: the hold is
    /// closed as RELEASED without touching `reserved`, which now belongs to the order.
    pub async fn convert_hold(
        &self,
        hold_id: &ReservationId,
        order: &InsertHold,
        now: DateTime<Utc>,
    ) -> Result<Result<(), SettleRefused>, StoreError> {
        let txn = self.db.begin().await?;
        let Some(mut hold) = load(&txn, hold_id, true).await? else {
            return Ok(Err(SettleRefused::NotFound));
        };
        if hold.reservation.status != ReservationStatus::Held {
            let from = hold.reservation.status;
            return Ok(Err(SettleRefused::State(
                StateError::InvalidTransition {
                    from,
                    to: ReservationStatus::Released,
                },
                hold.reservation,
            )));
        }
        for line in &mut hold.reservation.lines {
            line.released += line.remaining();
        }
        hold.reservation.status = ReservationStatus::Released;
        write_back(&txn, &hold.reservation, now).await?;
        let r = &order.reservation;
        sql::execute(
            &txn,
            "INSERT INTO reservations (id, status, fingerprint, expires_at, confirmed, \
             count_capacity, capacity_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            vec![
                r.id.to_string().into(),
                r.status.as_str().into(),
                order.fingerprint.clone().into(),
                r.expires_at.into(),
                r.confirmed.into(),
                (!order.capacity.is_empty()).into(),
                order.capacity.first().map(|(_, d)| d.to_string()).into(),
                order.created_at.into(),
            ],
        )
        .await?;
        insert_lines(&txn, r).await?;
        txn.commit().await.map_err(StoreError::at_commit)?;
        Ok(Ok(()))
    }

    /// Unconfirmed HELD reservations due at `now`, claimed with `SKIP LOCKED` so replicas of
    /// the reaper do not take the same rows (the lock ends with this short transaction; the
    /// settlement re-checks the state under its own lock). The predicate is the partial index
    /// `reservations_expiring`'s, word for word, so the planner can use it.
    pub async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<ReservationId>, StoreError> {
        let txn = self.db.begin().await?;
        let rows = sql::query_all(
            &txn,
            &format!(
                "SELECT id FROM reservations \
                 WHERE status = 'HELD' AND NOT confirmed AND expires_at IS NOT NULL \
                 AND expires_at <= $1 ORDER BY expires_at LIMIT $2{}",
                sql::for_update_skip_locked(txn.get_database_backend())
            ),
            vec![now.into(), (limit as i64).into()],
        )
        .await?;
        txn.commit().await?;
        rows.into_iter()
            .map(|row| {
                let id: String = row.try_get("", "id")?;
                ReservationId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Every HELD reservation (for a rebuild and the invariant check).
    pub async fn held_reservations(&self) -> Result<Vec<StoredReservation>, StoreError> {
        let rows = sql::query_all(
            &self.db,
            "SELECT id FROM reservations WHERE status = 'HELD' ORDER BY created_at",
            vec![],
        )
        .await?;
        let txn = self.db.begin().await?;
        let mut held = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let id = ReservationId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(stored) = load(&txn, &id, false).await? {
                held.push(stored);
            }
        }
        txn.commit().await?;
        Ok(held)
    }
}

fn already_stored(hold: &InsertHold) -> StoreError {
    StoreError::Conflict(format!(
        "reservation {} is already stored",
        hold.reservation.id
    ))
}

/// Unlocked read-and-write attempts of a hold change before it takes the row lock instead: a
/// miss means another writer touched the reservation in those few milliseconds.
const UNLOCKED_HOLD_UPDATE_TRIES: usize = 2;

#[derive(Debug, Clone, Copy)]
pub enum HoldChange {
    Confirm,
    Extend(DateTime<Utc>),
}

/// Why a stored reservation refused a transition.
#[derive(Debug, Clone)]
pub enum SettleRefused {
    NotFound,
    State(StateError, Reservation),
}

async fn load<C: ConnectionTrait>(
    txn: &C,
    id: &ReservationId,
    lock: bool,
) -> Result<Option<StoredReservation>, StoreError> {
    let Some(read) = read_reservation(txn, id, lock).await? else {
        return Ok(None);
    };
    stored_from(id, &read, txn.get_database_backend()).map(Some)
}

fn stored_from(
    id: &ReservationId,
    read: &ReadReservation,
    backend: DbBackend,
) -> Result<StoredReservation, StoreError> {
    let (row, line_rows) = (read.header(), read.lines());
    let corrupt = |what: &str| StoreError::Corrupt(format!("reservation {id}: {what}"));
    let status: String = row.try_get("", "status")?;
    let status = ReservationStatus::parse(&status).ok_or_else(|| corrupt("status"))?;
    let mut lines = Vec::with_capacity(line_rows.len());
    let mut locations = Vec::new();
    for l in line_rows {
        let Some(sku) = l.try_get::<Option<String>>("", "sku")? else {
            continue;
        };
        let location: String = l.try_get("", "location_id")?;
        let qty: i64 = l.try_get("", "quantity")?;
        let committed: i64 = l.try_get("", "committed")?;
        let released: i64 = l.try_get("", "released")?;
        let location = LocationId::parse(location).map_err(|_| corrupt("line location"))?;
        if !locations.contains(&location) {
            locations.push(location.clone());
        }
        lines.push(HeldLine {
            line: ReservationLine::new(
                Sku::parse(sku).map_err(|_| corrupt("line sku"))?,
                location,
                Quantity::parse(qty).map_err(|_| corrupt("line quantity"))?,
            ),
            committed: u32::try_from(committed).map_err(|_| corrupt("committed"))?,
            released: u32::try_from(released).map_err(|_| corrupt("released"))?,
        });
    }
    let count_capacity: bool = row.try_get("", "count_capacity")?;
    let capacity_date: Option<String> = row.try_get("", "capacity_date")?;
    let capacity = match (count_capacity, capacity_date) {
        (true, Some(date)) => {
            let day = super::snapshot::parse_day(&date).ok_or_else(|| corrupt("capacity_date"))?;
            locations.into_iter().map(|l| (l, day)).collect()
        }
        _ => Vec::new(),
    };
    Ok(StoredReservation {
        reservation: Reservation {
            id: id.clone(),
            lines,
            status,
            expires_at: row.try_get("", "expires_at")?,
            confirmed: row.try_get("", "confirmed")?,
        },
        fingerprint: row.try_get("", "fingerprint")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
        capacity,
        version: match backend {
            DbBackend::Postgres => Some(row.try_get("", "version")?),
            _ => None,
        },
    })
}

const HEADER_COLUMNS: &str = "r.status, r.fingerprint, r.expires_at, r.confirmed, \
    r.count_capacity, r.capacity_date, r.created_at, r.updated_at";
const LINE_COLUMNS: &str = "l.sku, l.location_id, l.quantity, l.committed, l.released";

/// A reservation's rows as read: its header, and its lines (rows whose `sku` is NULL are
/// none: a join's row for a header without lines).
enum ReadReservation {
    Joined(Vec<QueryResult>),
    Separate(QueryResult, Vec<QueryResult>),
}

impl ReadReservation {
    fn header(&self) -> &QueryResult {
        match self {
            Self::Joined(rows) => &rows[0],
            Self::Separate(header, _) => header,
        }
    }

    fn lines(&self) -> &[QueryResult] {
        match self {
            Self::Joined(rows) | Self::Separate(_, rows) => rows,
        }
    }
}

/// Unlocked, the header and its lines come in one statement (one round trip, one snapshot).
/// Locked, the lines are read after the lock is granted: a join would give the lines of the
/// snapshot taken before waiting for the lock, not those its holder wrote.
async fn read_reservation<C: ConnectionTrait>(
    db: &C,
    id: &ReservationId,
    lock: bool,
) -> Result<Option<ReadReservation>, StoreError> {
    let backend = db.get_database_backend();
    let version = match backend {
        DbBackend::Postgres => ", r.xmin::text AS version",
        _ => "",
    };
    let key = || vec![id.to_string().into()];
    if !lock {
        let rows = sql::query_all(
            db,
            &format!(
                "SELECT {HEADER_COLUMNS}{version}, {LINE_COLUMNS} FROM reservations r \
                 LEFT JOIN reservation_lines l ON l.reservation_id = r.id \
                 WHERE r.id = $1 ORDER BY l.sku, l.location_id"
            ),
            key(),
        )
        .await?;
        return Ok((!rows.is_empty()).then_some(ReadReservation::Joined(rows)));
    }
    let Some(header) = sql::query_one(
        db,
        &format!(
            "SELECT {HEADER_COLUMNS}{version} FROM reservations r WHERE r.id = $1{}",
            for_update(backend)
        ),
        key(),
    )
    .await?
    else {
        return Ok(None);
    };
    let lines = sql::query_all(
        db,
        &format!(
            "SELECT {LINE_COLUMNS} FROM reservation_lines l WHERE l.reservation_id = $1 \
             ORDER BY l.sku, l.location_id"
        ),
        key(),
    )
    .await?;
    Ok(Some(ReadReservation::Separate(header, lines)))
}

fn change_hold(reservation: &mut Reservation, change: HoldChange) -> Result<(), StateError> {
    match change {
        HoldChange::Confirm if reservation.confirmed => Ok(()),
        HoldChange::Confirm => reservation.confirm(),
        HoldChange::Extend(at) => reservation.extend(at),
    }
}

/// All of a new reservation's lines in one statement.
async fn insert_lines(txn: &DatabaseTransaction, r: &Reservation) -> Result<(), StoreError> {
    if r.lines.is_empty() {
        return Ok(());
    }
    let mut statement = String::from(
        "INSERT INTO reservation_lines (reservation_id, sku, location_id, quantity, \
         committed, released) VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = vec![r.id.to_string().into()];
    for (i, line) in r.lines.iter().enumerate() {
        let first = values.len() + 1;
        if i > 0 {
            statement.push_str(", ");
        }
        statement.push_str(&format!(
            "($1, ${first}, ${}, ${}, 0, 0)",
            first + 1,
            first + 2
        ));
        values.push(line.line.sku.to_string().into());
        values.push(line.line.location.to_string().into());
        values.push(line.line.qty.as_i64().into());
    }
    sql::execute(txn, &statement, values).await?;
    Ok(())
}

/// The reservation's own row, for changes that leave its lines as they are (confirm, extend);
/// with a `version`, only if the row is still at it (PostgreSQL's `xmin`). False if nothing was
/// written.
async fn write_header<C: ConnectionTrait>(
    db: &C,
    reservation: &Reservation,
    now: DateTime<Utc>,
    version: Option<String>,
) -> Result<bool, DbErr> {
    let mut statement = String::from(
        "UPDATE reservations SET status = $2, expires_at = $3, confirmed = $4, updated_at = $5 \
         WHERE id = $1",
    );
    let mut values: Vec<sea_orm::Value> = vec![
        reservation.id.to_string().into(),
        reservation.status.as_str().into(),
        reservation.expires_at.into(),
        reservation.confirmed.into(),
        now.into(),
    ];
    if let Some(version) = version {
        statement.push_str(" AND xmin = $6::text::xid");
        values.push(version.into());
    }
    Ok(sql::execute(db, &statement, values).await?.rows_affected() == 1)
}

async fn write_back(
    txn: &DatabaseTransaction,
    reservation: &Reservation,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    write_header(txn, reservation, now, None).await?;
    for line in &reservation.lines {
        sql::execute(
            txn,
            "UPDATE reservation_lines SET committed = $4, released = $5 \
             WHERE reservation_id = $1 AND sku = $2 AND location_id = $3",
            vec![
                reservation.id.to_string().into(),
                line.line.sku.to_string().into(),
                line.line.location.to_string().into(),
                i64::from(line.committed).into(),
                i64::from(line.released).into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Adds to a (sku, location)'s `on_hand`, creating the row at zero if needed, and returns the
/// counters.
pub(super) async fn bump_level<C: ConnectionTrait>(
    db: &C,
    sku: &Sku,
    location: &LocationId,
    on_hand_delta: i64,
    now: DateTime<Utc>,
) -> Result<StockLevel, StoreError> {
    let row = sql::query_one(
        db,
        "INSERT INTO stock_levels (sku, location_id, on_hand, safety_stock, updated_at) \
         VALUES ($1, $2, $3, 0, $4) \
         ON CONFLICT (sku, location_id) DO UPDATE SET \
         on_hand = stock_levels.on_hand + excluded.on_hand, \
         updated_at = excluded.updated_at \
         RETURNING on_hand, safety_stock",
        vec![
            sku.to_string().into(),
            location.to_string().into(),
            on_hand_delta.into(),
            now.into(),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Other("upsert returned no row".to_owned()))?;
    Ok(StockLevel::new(
        row.try_get("", "on_hand")?,
        held_sum(db, sku, location).await?,
        row.try_get("", "safety_stock")?,
    ))
}

/// What HELD reservations still hold on a (sku, location): `reserved`, by definition.
pub(super) const HELD_SUM_SQL: &str = "CAST(COALESCE((SELECT SUM(l.quantity - l.committed - l.released) \
     FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
     WHERE r.status = 'HELD' AND l.sku = s.sku AND l.location_id = s.location_id), 0) AS BIGINT)";

pub(super) async fn held_sum<C: ConnectionTrait>(
    db: &C,
    sku: &Sku,
    location: &LocationId,
) -> Result<i64, StoreError> {
    let row = sql::query_one(
        db,
        "SELECT CAST(COALESCE(SUM(l.quantity - l.committed - l.released), 0) AS BIGINT) AS held \
         FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
         WHERE r.status = 'HELD' AND l.sku = $1 AND l.location_id = $2",
        vec![sku.to_string().into(), location.to_string().into()],
    )
    .await?;
    Ok(match row {
        Some(r) => r.try_get("", "held")?,
        None => 0,
    })
}

/// The counters of a (sku, location): stored `on_hand` and safety, derived `reserved`.
pub(super) async fn level_of<C: ConnectionTrait>(
    db: &C,
    sku: &Sku,
    location: &LocationId,
) -> Result<StockLevel, StoreError> {
    let row = sql::query_one(
        db,
        "SELECT on_hand, safety_stock FROM stock_levels WHERE sku = $1 AND location_id = $2",
        vec![sku.to_string().into(), location.to_string().into()],
    )
    .await?;
    let (on_hand, safety) = match row {
        Some(r) => (r.try_get("", "on_hand")?, r.try_get("", "safety_stock")?),
        None => (0, 0),
    };
    Ok(StockLevel::new(
        on_hand,
        held_sum(db, sku, location).await?,
        safety,
    ))
}
