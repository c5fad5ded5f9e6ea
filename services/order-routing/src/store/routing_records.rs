//! Every planning run of an order (placement, re-routing), for ExplainRouting.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use super::entities::routing_records::{self, Column, Entity};
use super::{StoreError, stored_forms};
use crate::domain::planner::Explanation;

#[derive(Debug, Clone, PartialEq)]
pub struct RoutingRecord {
    /// `PLACE_ORDER`, `LINE_REJECTED` or `STOCK_SHORTAGE`.
    pub trigger: String,
    pub planned_at: DateTime<Utc>,
    pub profile_version: u32,
    pub explanation: Explanation,
}

pub async fn append<C: ConnectionTrait>(
    db: &C,
    order: uuid::Uuid,
    record: &RoutingRecord,
) -> Result<(), StoreError> {
    let seq = Entity::find()
        .filter(Column::OrderId.eq(order.to_string()))
        .count(db)
        .await?;
    insert(db, order, seq, record).await
}

/// The first record of an order that is being created, so none can exist before it.
pub async fn insert_first<C: ConnectionTrait>(
    db: &C,
    order: uuid::Uuid,
    record: &RoutingRecord,
) -> Result<(), StoreError> {
    insert(db, order, 0, record).await
}

/// The first record's trigger, time, profile version and explanation, for a statement written
/// by hand that inserts it with its order.
pub(super) fn first_values(record: &RoutingRecord) -> Result<Vec<sea_orm::Value>, StoreError> {
    Ok(vec![
        record.trigger.clone().into(),
        record.planned_at.into(),
        i64::from(record.profile_version).into(),
        stored_forms::explanation_text(&record.explanation)?.into(),
    ])
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    order: uuid::Uuid,
    seq: u64,
    record: &RoutingRecord,
) -> Result<(), StoreError> {
    Entity::insert(routing_records::ActiveModel {
        order_id: Set(order.to_string()),
        seq: Set(i32::try_from(seq).unwrap_or(i32::MAX)),
        trigger: Set(record.trigger.clone()),
        planned_at: Set(record.planned_at),
        profile_version: Set(i64::from(record.profile_version)),
        explanation: Set(stored_forms::explanation_text(&record.explanation)?),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    order: uuid::Uuid,
) -> Result<Vec<RoutingRecord>, StoreError> {
    Entity::find()
        .filter(Column::OrderId.eq(order.to_string()))
        .order_by_asc(Column::Seq)
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            Ok(RoutingRecord {
                trigger: row.trigger,
                planned_at: row.planned_at,
                profile_version: u32::try_from(row.profile_version).unwrap_or(0),
                explanation: stored_forms::explanation_from_text(&row.explanation)?,
            })
        })
        .collect()
}
