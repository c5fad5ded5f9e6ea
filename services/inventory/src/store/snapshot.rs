//! What a rebuild of the gate reads, and the invariant check.

use chrono::{DateTime, Utc};
use omni_types::{LocationId, Sku};

use super::reservations::HELD_SUM_SQL;
use super::sql;
use super::{Store, StoreError};
use crate::domain::{CapacityDay, StockLevel};

/// A difference between two records of the same counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub sku: String,
    pub location: String,
    /// `on_hand`, `reserved` or `safety_stock`.
    pub field: &'static str,
    /// Where the wrong value lives: `redis` or `postgres`.
    pub store: &'static str,
    pub found: i64,
    pub expected: i64,
    pub repaired: bool,
}

impl Store {
    pub async fn all_levels(&self) -> Result<Vec<(Sku, LocationId, StockLevel)>, StoreError> {
        let rows = sql::query_all(
            &self.db,
            &format!(
                "SELECT s.sku, s.location_id, s.on_hand, {HELD_SUM_SQL} AS reserved, \
                 s.safety_stock FROM stock_levels s ORDER BY s.sku, s.location_id"
            ),
            vec![],
        )
        .await?;
        rows.into_iter()
            .map(|r| {
                let sku: String = r.try_get("", "sku")?;
                let location: String = r.try_get("", "location_id")?;
                Ok((
                    Sku::parse(sku).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    LocationId::parse(location).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    StockLevel::new(
                        r.try_get("", "on_hand")?,
                        r.try_get("", "reserved")?,
                        r.try_get("", "safety_stock")?,
                    ),
                ))
            })
            .collect()
    }

    /// Capacity used on days that may still be current somewhere (yesterday to tomorrow in UTC
    /// covers every time zone): every counted reservation takes one unit of each location it
    /// names, and only an expiry gives it back (a release keeps it: the day was planned).
    pub async fn recent_capacity(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(LocationId, CapacityDay, u32)>, StoreError> {
        let from = (now - chrono::Duration::days(2)).date_naive().to_string();
        let rows = sql::query_all(
            &self.db,
            "SELECT l.location_id, r.capacity_date AS local_date, \
             CAST(COUNT(DISTINCT r.id) AS BIGINT) AS used \
             FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id \
             WHERE r.count_capacity = $2 AND r.status <> 'EXPIRED' \
             AND r.capacity_date IS NOT NULL AND r.capacity_date >= $1 \
             GROUP BY l.location_id, r.capacity_date",
            vec![from.into(), true.into()],
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let location: String = r.try_get("", "location_id")?;
            let date: String = r.try_get("", "local_date")?;
            let used: i64 = r.try_get("", "used")?;
            let Some(day) = parse_day(&date) else {
                return Err(StoreError::Corrupt(format!("capacity date {date}")));
            };
            out.push((
                LocationId::parse(location).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                day,
                u32::try_from(used).unwrap_or(0),
            ));
        }
        Ok(out)
    }

    /// One page of keys, in key order after `after`, as PostgreSQL records them and with what
    /// their ledger sums to: the reconciler walks the whole table this way, so its memory stays
    /// bounded by the page, not by the catalogue.
    pub async fn audit_page(
        &self,
        after: Option<&(Sku, LocationId)>,
        limit: u64,
    ) -> Result<Vec<AuditedLevel>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (sql, values) = match after {
            Some((sku, location)) => (
                format!(
                    "{AUDIT_SELECT} WHERE s.sku > $1 OR (s.sku = $1 AND s.location_id > $2) \
                     ORDER BY s.sku, s.location_id LIMIT $3"
                ),
                vec![
                    sku.to_string().into(),
                    location.to_string().into(),
                    limit.into(),
                ],
            ),
            None => (
                format!("{AUDIT_SELECT} ORDER BY s.sku, s.location_id LIMIT $1"),
                vec![limit.into()],
            ),
        };
        let rows = sql::query_all(&self.db, &sql, values).await?;
        rows.into_iter().map(audited).collect()
    }

    /// [`Store::audit_page`] for chosen keys (the reconciler's second look at a suspect).
    pub async fn audit_keys(
        &self,
        keys: &[(Sku, LocationId)],
    ) -> Result<Vec<AuditedLevel>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (sku, location) in keys {
            let rows = sql::query_all(
                &self.db,
                &format!("{AUDIT_SELECT} WHERE s.sku = $1 AND s.location_id = $2"),
                vec![sku.to_string().into(), location.to_string().into()],
            )
            .await?;
            for row in rows {
                out.push(audited(row)?);
            }
        }
        Ok(out)
    }

    /// Repairs `on_hand` drift inside PostgreSQL: the ledger is the truth.
    pub async fn set_on_hand_from_ledger(
        &self,
        sku: &Sku,
        location: &LocationId,
        ledger: i64,
    ) -> Result<(), StoreError> {
        sql::execute(
            &self.db,
            "UPDATE stock_levels SET on_hand = $3 WHERE sku = $1 AND location_id = $2",
            vec![
                sku.to_string().into(),
                location.to_string().into(),
                ledger.into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Which of `ids` have a reservation row.
    pub async fn recorded_reservations(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

        use super::entities::reservations;
        let mut found = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<String> = reservations::Entity::find()
                .select_only()
                .column(reservations::Column::Id)
                .filter(reservations::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }
}

/// A key as PostgreSQL records it (`reserved` derived from the HELD lines), and its ledger sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedLevel {
    pub sku: Sku,
    pub location: LocationId,
    pub level: StockLevel,
    pub ledger: i64,
}

/// `reserved` is summed as in `HELD_SUM_SQL`; the ledger sum is the truth for `on_hand`.
const AUDIT_SELECT: &str = "SELECT s.sku, s.location_id, s.on_hand, s.safety_stock, \
     CAST(COALESCE((SELECT SUM(l.quantity - l.committed - l.released) \
       FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
       WHERE r.status = 'HELD' AND l.sku = s.sku AND l.location_id = s.location_id), 0) AS BIGINT) \
       AS reserved, \
     CAST(COALESCE((SELECT SUM(m.delta) FROM stock_movements m \
       WHERE m.sku = s.sku AND m.location_id = s.location_id), 0) AS BIGINT) AS ledger \
     FROM stock_levels s";

fn audited(r: sea_orm::QueryResult) -> Result<AuditedLevel, StoreError> {
    let sku: String = r.try_get("", "sku")?;
    let location: String = r.try_get("", "location_id")?;
    Ok(AuditedLevel {
        sku: Sku::parse(sku).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        location: LocationId::parse(location).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        level: StockLevel::new(
            r.try_get("", "on_hand")?,
            r.try_get("", "reserved")?,
            r.try_get("", "safety_stock")?,
        ),
        ledger: r.try_get("", "ledger")?,
    })
}

pub(super) fn parse_day(date: &str) -> Option<CapacityDay> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(CapacityDay)
}
