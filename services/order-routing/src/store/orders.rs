//! The `orders` table: one row per order, the record as a document plus the columns that
//! listings and scheduled jobs filter on.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Value,
};

use super::entities::orders::{self, Column, Entity};
use super::location_catalogues::LocationCatalogues;
use super::{StoreError, from_json, stored_forms, to_json};
use crate::domain::simulate::StoredPlanInput;
use crate::service::record::{OrderRecord, PickupStatus};

fn active_model(record: &OrderRecord) -> Result<orders::ActiveModel, StoreError> {
    let pickup_status = record.pickup_status();
    let pickup_expires_at = match pickup_status {
        Some(PickupStatus::Ready) => record.pickup.as_ref().and_then(|p| p.expires_at),
        _ => None,
    };
    Ok(orders::ActiveModel {
        id: Set(record.id().to_string()),
        channel_id: Set(record.channel.to_string()),
        member_id: Set(record.member.map(|m| m.to_string())),
        status: Set(record.status_name().to_owned()),
        pickup_store_id: Set(record.pickup.as_ref().map(|p| p.store.to_string())),
        pickup_status: Set(pickup_status.map(|s| s.as_str().to_owned())),
        pickup_expires_at: Set(pickup_expires_at),
        confirmations_pending: Set(record.confirmations_pending()),
        sequence: Set(i64::try_from(record.state.sequence).unwrap_or(i64::MAX)),
        document: Set(to_json(record)?),
        planner_input: sea_orm::ActiveValue::NotSet,
        created_at: Set(record.created_at),
        updated_at: Set(record.updated_at),
    })
}

/// What a save writes: everything but the planner input and the creation time.
const SAVE_COLUMNS: [Column; 11] = [
    Column::Id,
    Column::ChannelId,
    Column::MemberId,
    Column::Status,
    Column::PickupStoreId,
    Column::PickupStatus,
    Column::PickupExpiresAt,
    Column::ConfirmationsPending,
    Column::Sequence,
    Column::Document,
    Column::UpdatedAt,
];

/// The values an order is inserted with, for a statement written by hand: those of
/// [`SAVE_COLUMNS`], then the planner input and the creation time.
pub(super) fn insert_values(
    record: &OrderRecord,
    planner_input: String,
) -> Result<Vec<Value>, StoreError> {
    let mut row = active_model(record)?;
    row.planner_input = Set(planner_input);
    column_values(
        row,
        SAVE_COLUMNS
            .iter()
            .chain(&[Column::PlannerInput, Column::CreatedAt]),
    )
}

/// Takes the values out of `row` (no copy of the documents, which can be tens of kilobytes).
fn column_values<'a>(
    mut row: orders::ActiveModel,
    columns: impl IntoIterator<Item = &'a Column>,
) -> Result<Vec<Value>, StoreError> {
    columns
        .into_iter()
        .map(|column| {
            row.take(*column)
                .into_value()
                .ok_or_else(|| StoreError::Corrupt(format!("order column {column:?} not set")))
        })
        .collect()
}

/// PostgreSQL's `xmin` of an order row: it changes with every write, so a write conditioned on
/// it finds the row exactly as the holder of the version left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowVersion(String);

impl RowVersion {
    pub(super) fn new(xmin: String) -> Self {
        Self(xmin)
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// `planner_input` is its stored text ([`super::stored_forms`]).
pub(super) async fn insert<C: ConnectionTrait>(
    db: &C,
    record: &OrderRecord,
    planner_input: String,
) -> Result<(), StoreError> {
    let mut row = active_model(record)?;
    row.planner_input = Set(planner_input);
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Writes the record back. The caller loaded it with [`load_for_update`] in the same
/// transaction, so no other writer changed it meanwhile.
pub async fn save<C: ConnectionTrait>(db: &C, record: &OrderRecord) -> Result<(), StoreError> {
    Entity::update(active_model(record)?).exec(db).await?;
    Ok(())
}

/// The records `query` selects, reading only their documents and `confirmations_pending`: the
/// planner input beside each is tens of kilobytes over hundreds of locations, and only a
/// replay reads it.
async fn records<C: ConnectionTrait>(
    db: &C,
    query: sea_orm::Select<Entity>,
) -> Result<Vec<OrderRecord>, StoreError> {
    documents(query)
        .all(db)
        .await?
        .iter()
        .map(|(pending, document)| from_row(*pending, document))
        .collect()
}

async fn record<C: ConnectionTrait>(
    db: &C,
    query: sea_orm::Select<Entity>,
) -> Result<Option<OrderRecord>, StoreError> {
    documents(query)
        .one(db)
        .await?
        .map(|(pending, document)| from_row(pending, &document))
        .transpose()
}

fn documents(
    query: sea_orm::Select<Entity>,
) -> sea_orm::Selector<sea_orm::SelectGetableTuple<(bool, String)>> {
    query
        .select_only()
        .column(Column::ConfirmationsPending)
        .column(Column::Document)
        .into_tuple::<(bool, String)>()
}

/// A row's record. Clearing the confirmation flags writes the column alone (the document is
/// kilobytes, rewritten and compressed again for two booleans), so a cleared column overrides
/// the flags of a document written before.
fn from_row(pending: bool, document: &str) -> Result<OrderRecord, StoreError> {
    let mut record: OrderRecord = from_json(document)?;
    if !pending {
        record.settle_confirmations();
    }
    Ok(record)
}

pub async fn load<C: ConnectionTrait>(
    db: &C,
    id: uuid::Uuid,
) -> Result<Option<OrderRecord>, StoreError> {
    record(db, Entity::find_by_id(id.to_string())).await
}

/// Loads and row-locks the order until the transaction ends (PostgreSQL; SQLite has one
/// writer anyway), so concurrent changes to one order apply one after the other.
pub async fn load_for_update<C: ConnectionTrait>(
    db: &C,
    id: uuid::Uuid,
) -> Result<Option<OrderRecord>, StoreError> {
    record(
        db,
        Entity::find_by_id(id.to_string()).lock(LockType::Update),
    )
    .await
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub channel: Option<String>,
    pub member: Option<String>,
    pub statuses: Vec<String>,
    pub pickup_store: Option<String>,
    pub pickup_statuses: Vec<String>,
}

/// A page of orders matching `filter`; `newest_first` for channels, oldest first for stores.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &OrderFilter,
    newest_first: bool,
    offset: u64,
    limit: u64,
) -> Result<Vec<OrderRecord>, StoreError> {
    let mut q = Entity::find();
    if let Some(c) = &filter.channel {
        q = q.filter(Column::ChannelId.eq(c.clone()));
    }
    if let Some(m) = &filter.member {
        q = q.filter(Column::MemberId.eq(m.clone()));
    }
    if !filter.statuses.is_empty() {
        q = q.filter(Column::Status.is_in(filter.statuses.clone()));
    }
    if let Some(s) = &filter.pickup_store {
        q = q.filter(Column::PickupStoreId.eq(s.clone()));
    }
    if !filter.pickup_statuses.is_empty() {
        q = q.filter(Column::PickupStatus.is_in(filter.pickup_statuses.clone()));
    }
    q = if newest_first {
        q.order_by_desc(Column::CreatedAt).order_by_desc(Column::Id)
    } else {
        q.order_by_asc(Column::CreatedAt).order_by_asc(Column::Id)
    };
    records(db, q.offset(offset).limit(limit)).await
}

/// Ready pickups past their expiry, row-locked and skipped by other replicas
/// (`FOR UPDATE SKIP LOCKED`), so each is expired by exactly one of them.
pub async fn claim_expired_pickups<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderRecord>, StoreError> {
    let query = Entity::find()
        .filter(Column::PickupExpiresAt.lte(now))
        .order_by_asc(Column::PickupExpiresAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    records(db, query).await
}

/// Durable orders whose confirmations are still owed, claimed as above.
pub async fn claim_unconfirmed<C: ConnectionTrait>(
    db: &C,
    created_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderRecord>, StoreError> {
    let query = Entity::find()
        .filter(Column::ConfirmationsPending.eq(true))
        .filter(Column::CreatedAt.lte(created_before))
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    records(db, query).await
}

/// The planner inputs of the channel's `n` most recent orders, newest first.
pub async fn recent_planner_inputs<C: ConnectionTrait>(
    db: &C,
    catalogues: &LocationCatalogues,
    channel: &str,
    n: u64,
) -> Result<Vec<StoredPlanInput>, StoreError> {
    let texts = Entity::find()
        .filter(Column::ChannelId.eq(channel.to_owned()))
        .order_by_desc(Column::CreatedAt)
        .limit(n)
        .select_only()
        .column(Column::PlannerInput)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let referred = texts
        .iter()
        .filter_map(|text| stored_forms::catalogue_of(text).transpose())
        .collect::<Result<BTreeSet<String>, _>>()?;
    let catalogues = catalogues
        .fetch(db, referred.iter().map(String::as_str).collect())
        .await?;
    texts
        .iter()
        .map(|text| stored_forms::planner_input_from_text(text, &catalogues))
        .collect()
}
