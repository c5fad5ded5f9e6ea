//! Purchases (completed orders and till receipts) and their returns: the facts behind tiers,
//! segments, the channel report and pro-rata reversals.

use chrono::{DateTime, Utc};
use omni_types::{ChannelId, Currency, Money, OrderId};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{purchase, purchase_return};
use crate::domain::{MemberId, Purchase};

pub use purchase::Model as PurchaseRow;
pub use purchase_return::Model as ReturnRow;

pub async fn insert<C: ConnectionTrait>(db: &C, row: &PurchaseRow) -> Result<(), StoreError> {
    purchase::Entity::insert(purchase::ActiveModel {
        id: Set(row.id),
        member_id: Set(row.member_id),
        channel_id: Set(row.channel_id.clone()),
        store_id: Set(row.store_id.clone()),
        reference: Set(row.reference.clone()),
        order_id: Set(row.order_id),
        amount_minor: Set(row.amount_minor),
        currency: Set(row.currency.clone()),
        returned_minor: Set(row.returned_minor),
        points_earned: Set(row.points_earned),
        occurred_at: Set(row.occurred_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn by_reference<C: ConnectionTrait>(
    db: &C,
    channel: &str,
    reference: &str,
) -> Result<Option<PurchaseRow>, StoreError> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::ChannelId.eq(channel))
        .filter(purchase::Column::Reference.eq(reference))
        .one(db)
        .await?)
}

pub async fn by_order<C: ConnectionTrait>(
    db: &C,
    order: OrderId,
) -> Result<Option<PurchaseRow>, StoreError> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::OrderId.eq(order.as_uuid()))
        .one(db)
        .await?)
}

pub async fn find_return<C: ConnectionTrait>(
    db: &C,
    purchase_id: Uuid,
    return_id: &str,
) -> Result<Option<ReturnRow>, StoreError> {
    Ok(
        purchase_return::Entity::find_by_id((purchase_id, return_id.to_owned()))
            .one(db)
            .await?,
    )
}

/// Records a return and adds its amount to the purchase's returned total.
pub async fn add_return<C: ConnectionTrait>(db: &C, row: &ReturnRow) -> Result<(), StoreError> {
    purchase_return::Entity::insert(purchase_return::ActiveModel {
        purchase_id: Set(row.purchase_id),
        return_id: Set(row.return_id.clone()),
        amount_minor: Set(row.amount_minor),
        points_reversed: Set(row.points_reversed),
        shortfall: Set(row.shortfall),
        occurred_at: Set(row.occurred_at),
    })
    .exec_without_returning(db)
    .await?;
    purchase::Entity::update_many()
        .col_expr(
            purchase::Column::ReturnedMinor,
            Expr::col(purchase::Column::ReturnedMinor).add(row.amount_minor),
        )
        .filter(purchase::Column::Id.eq(row.purchase_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn of_member<C: ConnectionTrait>(
    db: &C,
    member: MemberId,
) -> Result<Vec<PurchaseRow>, StoreError> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::MemberId.eq(member.as_uuid()))
        .order_by_asc(purchase::Column::OccurredAt)
        .all(db)
        .await?)
}

/// Every purchase of a member (guests excluded): the base segments are scored against.
pub async fn of_all_members<C: ConnectionTrait>(db: &C) -> Result<Vec<PurchaseRow>, StoreError> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::MemberId.is_not_null())
        .all(db)
        .await?)
}

/// Purchases in `[from, to)`, guests included (they count in GMV and orders).
pub async fn between<C: ConnectionTrait>(
    db: &C,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PurchaseRow>, StoreError> {
    Ok(purchase::Entity::find()
        .filter(purchase::Column::OccurredAt.gte(from))
        .filter(purchase::Column::OccurredAt.lt(to))
        .all(db)
        .await?)
}

/// A merge: the survivor's tier and segments count the merged member's purchases.
pub async fn reassign<C: ConnectionTrait>(
    db: &C,
    from: MemberId,
    to: MemberId,
) -> Result<(), StoreError> {
    purchase::Entity::update_many()
        .col_expr(purchase::Column::MemberId, Expr::value(to.as_uuid()))
        .filter(purchase::Column::MemberId.eq(from.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// The domain's view of a row. Rows are written from validated values, so a value that no
/// longer parses is corruption.
pub fn to_domain(row: &PurchaseRow) -> Result<Purchase, StoreError> {
    let corrupt =
        |e: omni_types::ValueError| StoreError::Corrupt(format!("purchase {}: {e}", row.id));
    Ok(Purchase {
        member: row.member_id.map(MemberId::from),
        channel: ChannelId::parse(row.channel_id.clone()).map_err(corrupt)?,
        amount: Money::new(
            row.amount_minor,
            Currency::parse(&row.currency).map_err(corrupt)?,
        ),
        at: row.occurred_at,
    })
}
