//! `omni store …`: what store staff do with click & collect orders.

use clap::{Subcommand, ValueEnum};
use omni_proto::orders::v1 as pb;

use super::key_or_new;
use super::order::{order_status, order_summary};
use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, fields, label, money, timestamp};

#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// The store's pickup queue (to prepare, awaiting transfer, ready).
    Queue { store: String },
    /// Mark an order ready for pickup; prints the pickup code for the customer.
    Ready { store: String, order_id: String },
    /// Hand an order over against the customer's pickup code.
    Confirm {
        store: String,
        order_id: String,
        code: String,
        /// Only these units were taken, LINE:QTY (repeat); the rest is cancelled.
        #[arg(long = "take", value_name = "LINE:QTY")]
        take: Vec<String>,
        #[arg(long)]
        key: Option<String>,
    },
    /// A line the store cannot find: cancel it or route it elsewhere.
    Reject {
        store: String,
        order_id: String,
        line_id: String,
        /// The line's whole quantity (lines are rejected whole).
        #[arg(long)]
        qty: i32,
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, default_value_t = RejectAction::Cancel)]
        action: RejectAction,
        #[arg(long)]
        key: Option<String>,
    },
    /// Take back handed-over units in the store.
    Return {
        store: String,
        order_id: String,
        /// LINE:QTY returned (repeat per line).
        #[arg(long = "line", value_name = "LINE:QTY", required = true)]
        lines: Vec<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RejectAction {
    Cancel,
    Reroute,
}

pub async fn run(
    cmd: StoreCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut store = endpoints.store()?;
    match cmd {
        StoreCmd::Queue { store: store_id } => {
            let mut pickups = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = store
                    .list_pickups(pb::ListPickupsRequest {
                        store_id: store_id.clone(),
                        statuses: Vec::new(),
                        page_size: 200,
                        page_token,
                    })
                    .await?
                    .into_inner();
                pickups.extend(page.pickups);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let all = pb::ListPickupsResponse {
                pickups,
                next_page_token: String::new(),
            };
            out.show(&all, |r| {
                let mut table = Table::new([
                    "ORDER",
                    "PICKUP",
                    "ORDER STATUS",
                    "CHANNEL",
                    "LINES",
                    "CREATED",
                ]);
                for p in &r.pickups {
                    let Some(o) = &p.order else { continue };
                    table.row(vec![
                        o.id.clone(),
                        label(
                            pb::PickupStatus::try_from(p.status).map(|s| s.as_str_name()),
                            "PICKUP_STATUS_",
                            p.status,
                        ),
                        order_status(o.status),
                        o.channel_id.clone(),
                        o.lines
                            .iter()
                            .map(|l| format!("{}x{}", l.sku, l.quantity))
                            .collect::<Vec<_>>()
                            .join(" "),
                        timestamp(o.created_at.as_ref()),
                    ]);
                }
                table.render()
            })
        }
        StoreCmd::Ready {
            store: store_id,
            order_id,
        } => {
            let response = store
                .mark_ready(pb::MarkReadyRequest { store_id, order_id })
                .await?
                .into_inner();
            out.show(&response, |r| {
                fields(&[
                    (
                        "order",
                        r.order.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
                    ),
                    (
                        "status",
                        r.order
                            .as_ref()
                            .map(|o| order_status(o.status))
                            .unwrap_or_default(),
                    ),
                    ("pickup code", r.pickup_code.clone()),
                    ("collect before", timestamp(r.expires_at.as_ref())),
                ])
            })
        }
        StoreCmd::Confirm {
            store: store_id,
            order_id,
            code,
            take,
            key,
        } => {
            let response = store
                .confirm_pickup(pb::ConfirmPickupRequest {
                    store_id,
                    order_id,
                    pickup_code: code,
                    lines_taken: line_quantities(&take)?,
                    idempotency_key: key_or_new(key),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut text = r.order.as_ref().map(order_summary).unwrap_or_default();
                text.push_str(&fields(&[
                    ("refund (units not taken)", money(r.refund.as_ref())),
                    ("points to refund", r.points_to_refund.to_string()),
                ]));
                text
            })
        }
        StoreCmd::Reject {
            store: store_id,
            order_id,
            line_id,
            qty,
            reason,
            action,
            key,
        } => {
            let response = store
                .reject_line(pb::RejectLineRequest {
                    store_id,
                    order_id,
                    line_id,
                    quantity: qty,
                    reason,
                    action: match action {
                        RejectAction::Cancel => pb::RejectAction::Cancel,
                        RejectAction::Reroute => pb::RejectAction::Reroute,
                    } as i32,
                    idempotency_key: key_or_new(key),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut text = r.order.as_ref().map(order_summary).unwrap_or_default();
                text.push_str(&fields(&[
                    (
                        "outcome",
                        label(
                            pb::RejectOutcome::try_from(r.outcome).map(|o| o.as_str_name()),
                            "REJECT_OUTCOME_",
                            r.outcome,
                        ),
                    ),
                    ("refund", money(r.refund.as_ref())),
                    ("points to refund", r.points_to_refund.to_string()),
                ]));
                text
            })
        }
        StoreCmd::Return {
            store: store_id,
            order_id,
            lines,
            reason,
            key,
        } => {
            let response = store
                .accept_return(pb::AcceptReturnRequest {
                    store_id,
                    order_id,
                    lines: line_quantities(&lines)?,
                    reason,
                    idempotency_key: key_or_new(key),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut text = r.order.as_ref().map(order_summary).unwrap_or_default();
                text.push_str(&fields(&[("refund", money(r.refund.as_ref()))]));
                text
            })
        }
    }
}

/// `LINE:QTY` pairs, split on the last colon.
fn line_quantities(raw: &[String]) -> Result<Vec<pb::LineQuantity>, CliError> {
    raw.iter()
        .map(|entry| {
            let bad = || CliError::usage(format!("{entry:?}: expected LINE:QTY"));
            let (line, qty) = entry.rsplit_once(':').ok_or_else(bad)?;
            Ok(pb::LineQuantity {
                line_id: line.to_owned(),
                quantity: qty.trim().parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_quantities_split_on_the_last_colon() {
        let parsed = line_quantities(&["L1:2".to_owned()]).unwrap();
        assert_eq!((parsed[0].line_id.as_str(), parsed[0].quantity), ("L1", 2));
        assert!(line_quantities(&["L1".to_owned()]).is_err());
        assert!(line_quantities(&["L1:x".to_owned()]).is_err());
    }
}
