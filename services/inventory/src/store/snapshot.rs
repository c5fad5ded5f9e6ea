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

    /// PostgreSQL against itself: `on_hand` = Σ ledger for every key (`reserved` is derived
    /// from the reservation lines, so it cannot drift). With `repair`, `on_hand` is set to what
    /// the ledger says.
    pub async fn check_database(&self, repair: bool) -> Result<Vec<Drift>, StoreError> {
        let rows = sql::query_all(
            &self.db,
            "SELECT s.sku, s.location_id, s.on_hand, \
             CAST(COALESCE((SELECT SUM(m.delta) FROM stock_movements m \
                       WHERE m.sku = s.sku AND m.location_id = s.location_id), 0) AS BIGINT) \
                       AS ledger \
             FROM stock_levels s ORDER BY s.sku, s.location_id",
            vec![],
        )
        .await?;
        let mut drifts = Vec::new();
        for r in rows {
            let sku: String = r.try_get("", "sku")?;
            let location: String = r.try_get("", "location_id")?;
            let on_hand: i64 = r.try_get("", "on_hand")?;
            let ledger: i64 = r.try_get("", "ledger")?;
            if on_hand == ledger {
                continue;
            }
            drifts.push(Drift {
                sku: sku.clone(),
                location: location.clone(),
                field: "on_hand",
                store: "postgres",
                found: on_hand,
                expected: ledger,
                repaired: repair,
            });
            if repair {
                sql::execute(
                    &self.db,
                    "UPDATE stock_levels SET on_hand = $3 WHERE sku = $1 AND location_id = $2",
                    vec![sku.into(), location.into(), ledger.into()],
                )
                .await?;
            }
        }
        Ok(drifts)
    }
}

pub(super) fn parse_day(date: &str) -> Option<CapacityDay> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(CapacityDay)
}
