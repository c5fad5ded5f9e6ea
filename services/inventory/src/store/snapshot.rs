//! What a rebuild of the gate reads, and the invariant check.

use chrono::{DateTime, Utc};
use omni_types::{LocationId, Sku};

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
            "SELECT sku, location_id, on_hand, reserved, safety_stock FROM stock_levels \
             ORDER BY sku, location_id",
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
    /// covers every time zone).
    pub async fn recent_capacity(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(LocationId, CapacityDay, u32)>, StoreError> {
        let from = (now - chrono::Duration::days(2)).date_naive().to_string();
        let rows = sql::query_all(
            &self.db,
            "SELECT location_id, local_date, used FROM capacity_usage WHERE local_date >= $1",
            vec![from.into()],
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let location: String = r.try_get("", "location_id")?;
            let date: String = r.try_get("", "local_date")?;
            let used: i32 = r.try_get("", "used")?;
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

    /// PostgreSQL against itself: `on_hand` = Σ ledger and `reserved` = Σ HELD lines for every
    /// key. With `repair`, the levels are set to what the ledger and the reservations say.
    pub async fn check_database(&self, repair: bool) -> Result<Vec<Drift>, StoreError> {
        let rows = sql::query_all(
            &self.db,
            "SELECT s.sku, s.location_id, s.on_hand, s.reserved, \
             CAST(COALESCE((SELECT SUM(m.delta) FROM stock_movements m \
                       WHERE m.sku = s.sku AND m.location_id = s.location_id), 0) AS BIGINT) AS ledger, \
             CAST(COALESCE((SELECT SUM(l.quantity - l.committed - l.released) \
                       FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id \
                       WHERE r.status = 'HELD' AND l.sku = s.sku \
                       AND l.location_id = s.location_id), 0) AS BIGINT) AS held \
             FROM stock_levels s ORDER BY s.sku, s.location_id",
            vec![],
        )
        .await?;
        let mut drifts = Vec::new();
        for r in rows {
            let sku: String = r.try_get("", "sku")?;
            let location: String = r.try_get("", "location_id")?;
            let on_hand: i64 = r.try_get("", "on_hand")?;
            let reserved: i64 = r.try_get("", "reserved")?;
            let ledger: i64 = r.try_get("", "ledger")?;
            let held: i64 = r.try_get("", "held")?;
            for (field, found, expected) in
                [("on_hand", on_hand, ledger), ("reserved", reserved, held)]
            {
                if found != expected {
                    drifts.push(Drift {
                        sku: sku.clone(),
                        location: location.clone(),
                        field,
                        store: "postgres",
                        found,
                        expected,
                        repaired: repair,
                    });
                }
            }
            if repair && (on_hand != ledger || reserved != held) {
                sql::execute(
                    &self.db,
                    "UPDATE stock_levels SET on_hand = $3, reserved = $4 \
                     WHERE sku = $1 AND location_id = $2",
                    vec![
                        sku.clone().into(),
                        location.clone().into(),
                        ledger.into(),
                        held.into(),
                    ],
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
