//! Consumer-side dedupe: a handler claims the event id in the same transaction as its effect,
//! so a redelivered event (consumer crashed after the commit, before the ack) has no second
//! effect.
//!
//! ```ignore
//! let txn = db.begin().await?;
//! if inbox::claim(&txn, "inventory.stock-effects", event.id()).await? {
//!     apply_effect(&txn, event).await?;
//! }
//! txn.commit().await?; // then the bus acks
//! ```

use sea_orm::{
    ActiveValue::{NotSet, Set},
    DatabaseTransaction, DbErr, EntityTrait,
    sea_query::OnConflict,
};

use super::schema::inbox_event;

/// Records that `consumer` handles `event_id`. True the first time; false if it was already
/// handled (then do nothing and let the message be acked). Takes a transaction on purpose:
/// the claim is only worth something if it commits or rolls back with the effect.
pub async fn claim(
    txn: &DatabaseTransaction,
    consumer: &str,
    event_id: &str,
) -> Result<bool, DbErr> {
    let row = inbox_event::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id.to_owned()),
        // The database's clock: this column is for operators and retention only.
        processed_at: NotSet,
    };
    let inserted = inbox_event::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([inbox_event::Column::Consumer, inbox_event::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(inserted == 1)
}
