//! What inventory consumes: WMS receipts and the stock effects of orders (ARCHITECTURE §2:
//! "after an order exists, stock effects arrive as events").
//!
//! Each effect is idempotent by itself (ledger idempotency keys; a settled line has nothing left
//! to commit or release) and the inbox records the event once the effect is durable, so a
//! redelivery — even after a crash between effect and inbox — has no second effect.

use std::sync::Arc;

use async_trait::async_trait;
use omni_platform::events::{Envelope, EventHandler, HandlerError, Subscription, inbox, names};
use omni_proto::events::v1 as ev;
use omni_types::{LocationId, Quantity, ReservationId, Sku};
use sea_orm::TransactionTrait;

use crate::domain::{LineSelection, Movement, MovementKind, ReservationLine, StateError};
use crate::service::{Adjustment, Inventory, InventoryError};

/// The queue inventory consumes from (`<short name>.<purpose>`).
pub const QUEUE: &str = "inventory.stock-effects";
const CONSUMER: &str = "inventory.stock-effects";

pub fn subscription() -> Subscription {
    subscription_on(QUEUE)
}

/// The same bindings on another queue (`STOCK_EFFECTS_QUEUE`), so deployments or tests sharing
/// a broker do not take each other's messages.
pub fn subscription_on(queue: &str) -> Subscription {
    Subscription::new(
        queue,
        [
            names::WAREHOUSE_STOCK_RECEIVED,
            names::ORDER_ALLOCATION_FULFILLED,
            names::ORDER_ALLOCATION_RELEASED,
            names::ORDER_RETURNED,
        ],
    )
}

pub struct StockEffects {
    inventory: Arc<Inventory>,
}

impl StockEffects {
    pub fn new(inventory: Arc<Inventory>) -> Self {
        Self { inventory }
    }

    async fn already_done(&self, event: &Envelope) -> Result<bool, HandlerError> {
        let db = self.inventory.store().connection();
        let seen = inbox_seen(db, event.id()).await.map_err(retry)?;
        Ok(seen)
    }

    async fn record(&self, event: &Envelope) -> Result<(), HandlerError> {
        let db = self.inventory.store().connection();
        let txn = db.begin().await.map_err(retry)?;
        inbox::claim(&txn, CONSUMER, event.id())
            .await
            .map_err(retry)?;
        txn.commit().await.map_err(retry)
    }

    async fn apply(&self, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_name() {
            names::WAREHOUSE_STOCK_RECEIVED => {
                let data: ev::StockReceived = event.data_as().map_err(reject)?;
                let location = LocationId::parse(data.location_id).map_err(reject)?;
                let adjustments = data
                    .lines
                    .iter()
                    .map(|l| {
                        let sku = Sku::parse(l.sku.clone()).map_err(reject)?;
                        Ok(Adjustment {
                            idempotency_key: format!("receipt:{}:{sku}", data.receipt_id),
                            movement: Movement::parse(MovementKind::Receipt, i64::from(l.quantity))
                                .map_err(reject)?,
                            sku,
                            location: location.clone(),
                            reference: data.receipt_id.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, HandlerError>>()?;
                self.inventory.adjust(adjustments).await.map_err(effect)?;
            }
            names::ORDER_RETURNED => {
                let data: ev::OrderReturned = event.data_as().map_err(reject)?;
                let location = LocationId::parse(data.location_id).map_err(reject)?;
                let adjustments = data
                    .lines
                    .iter()
                    .map(|l| {
                        let sku = Sku::parse(l.sku.clone()).map_err(reject)?;
                        Ok(Adjustment {
                            idempotency_key: format!(
                                "return:{}:{}:{}:{sku}",
                                data.order_id, data.return_id, l.line_id
                            ),
                            movement: Movement::parse(MovementKind::Return, i64::from(l.quantity))
                                .map_err(reject)?,
                            sku,
                            location: location.clone(),
                            reference: format!("order:{}", data.order_id),
                        })
                    })
                    .collect::<Result<Vec<_>, HandlerError>>()?;
                self.inventory.adjust(adjustments).await.map_err(effect)?;
            }
            names::ORDER_ALLOCATION_FULFILLED => {
                let data: ev::AllocationFulfilled = event.data_as().map_err(reject)?;
                let (id, lines) = selection(&data.reservation_id, &data.location_id, &data.lines)?;
                settled_ok(self.inventory.commit(&id, lines).await.map(|_| ()))?;
            }
            names::ORDER_ALLOCATION_RELEASED => {
                let data: ev::AllocationReleased = event.data_as().map_err(reject)?;
                let (id, lines) = selection(&data.reservation_id, &data.location_id, &data.lines)?;
                settled_ok(self.inventory.release(&id, lines).await.map(|_| ()))?;
            }
            other => {
                return Err(HandlerError::Reject(format!(
                    "inventory does not handle {other}"
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventHandler for StockEffects {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        // The platform's consumer loop already runs this in an `event.consume` span continuing
        // the publisher's trace.
        if self.already_done(event).await? {
            return Ok(());
        }
        self.apply(event).await?;
        self.record(event).await
    }
}

async fn inbox_seen(
    db: &sea_orm::DatabaseConnection,
    event_id: &str,
) -> Result<bool, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => {
            "SELECT 1 AS one FROM inbox_events WHERE consumer = ?1 AND event_id = ?2"
        }
        _ => "SELECT 1 AS one FROM inbox_events WHERE consumer = $1 AND event_id = $2",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [CONSUMER.into(), event_id.into()],
        ))
        .await?;
    Ok(row.is_some())
}

/// The reservation and the lines at one location that an order event settles.
fn selection(
    reservation_id: &str,
    location: &str,
    lines: &[ev::OrderLineQuantity],
) -> Result<(ReservationId, LineSelection), HandlerError> {
    let id = ReservationId::parse(reservation_id).map_err(reject)?;
    let location = LocationId::parse(location.to_owned()).map_err(reject)?;
    if lines.is_empty() {
        return Ok((id, LineSelection::All));
    }
    let mut merged: Vec<ReservationLine> = Vec::new();
    for l in lines {
        let sku = Sku::parse(l.sku.clone()).map_err(reject)?;
        let qty = i64::from(l.quantity);
        match merged.iter_mut().find(|m| m.sku == sku) {
            Some(m) => {
                m.qty = Quantity::parse(m.qty.as_i64() + qty).map_err(reject)?;
            }
            None => merged.push(ReservationLine::new(
                sku,
                location.clone(),
                Quantity::parse(qty).map_err(reject)?,
            )),
        }
    }
    Ok((id, LineSelection::Lines(merged)))
}

/// A settlement the reservation no longer allows was already applied by an earlier delivery
/// (or the reservation ended otherwise): nothing is left to do.
fn settled_ok(result: Result<(), InventoryError>) -> Result<(), HandlerError> {
    match result {
        Ok(()) => Ok(()),
        Err(InventoryError::State {
            error:
                StateError::InvalidTransition { .. }
                | StateError::ExceedsRemaining { .. }
                | StateError::UnknownLine { .. },
            ..
        }) => Ok(()),
        Err(other) => Err(effect(other)),
    }
}

fn effect(error: InventoryError) -> HandlerError {
    match error {
        InventoryError::Invalid(_) | InventoryError::UnknownLocation { .. } => {
            HandlerError::Reject(error.to_string())
        }
        // A reservation not found yet may be an order event racing its reservation's commit.
        other => HandlerError::Retry(other.to_string()),
    }
}

fn retry(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry(error.to_string())
}

fn reject(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Reject(format!("malformed event: {error}"))
}
