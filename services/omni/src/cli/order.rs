//! `omni order place|show|cancel`, and how an order and its routing are printed.

use clap::Subcommand;
use omni_proto::orders::v1 as pb;

use super::draft::DraftArgs;
use super::key_or_new;
use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, fields, label, money, timestamp};

#[derive(Debug, Subcommand)]
pub enum OrderCmd {
    /// Place an order (ship or pickup).
    Place {
        #[command(flatten)]
        draft: DraftArgs,
        /// Idempotency key; repeat it to retry the same order safely.
        #[arg(long)]
        key: Option<String>,
    },
    /// An order, with the explanation of how it was routed.
    Show { order_id: String },
    /// Cancel every open unit of an order.
    Cancel {
        order_id: String,
        #[arg(long, default_value = "cancelled from the omni CLI")]
        reason: String,
        #[arg(long)]
        key: Option<String>,
    },
}

pub async fn run(
    cmd: OrderCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut orders = endpoints.orders()?;
    match cmd {
        OrderCmd::Place { draft, key } => {
            let response = orders
                .place_order(pb::PlaceOrderRequest {
                    idempotency_key: key_or_new(key),
                    order: Some(draft.into_draft()?),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                r.order.as_ref().map(order_summary).unwrap_or_default()
            })
        }
        OrderCmd::Show { order_id } => {
            let order = orders
                .get_order(pb::GetOrderRequest {
                    order_id: order_id.clone(),
                })
                .await?
                .into_inner();
            let routing = orders
                .explain_routing(pb::ExplainRoutingRequest { order_id })
                .await?
                .into_inner();
            let both = serde_json::json!({ "order": order.order, "routing": routing });
            out.show(&both, |_| {
                let mut text = order.order.as_ref().map(order_summary).unwrap_or_default();
                text.push_str("routing:\n");
                for record in &routing.records {
                    text.push_str(&routing_record(record));
                }
                text
            })
        }
        OrderCmd::Cancel {
            order_id,
            reason,
            key,
        } => {
            let response = orders
                .cancel_order(pb::CancelOrderRequest {
                    order_id,
                    lines: Vec::new(),
                    reason,
                    idempotency_key: key_or_new(key),
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut text = r.order.as_ref().map(order_summary).unwrap_or_default();
                text.push_str(&fields(&[
                    ("refund", money(r.refund.as_ref())),
                    ("points to refund", r.points_to_refund.to_string()),
                ]));
                text
            })
        }
    }
}

pub fn order_status(raw: i32) -> String {
    label(
        pb::OrderStatus::try_from(raw).map(|s| s.as_str_name()),
        "ORDER_STATUS_",
        raw,
    )
}

/// The first line is `order <id>`, so scripts can pick the id out of the table output.
pub fn order_summary(o: &pb::Order) -> String {
    let fulfilment = match o.fulfilment.as_ref().and_then(|f| f.method.as_ref()) {
        Some(pb::fulfilment::Method::Pickup(p)) => format!("pickup at {}", p.store_id),
        Some(pb::fulfilment::Method::Ship(s)) => match &s.delivery_point {
            Some(p) => format!("ship to {:.4},{:.4}", p.lat, p.lon),
            None => "ship".to_owned(),
        },
        None => "-".to_owned(),
    };
    let mut pairs = vec![
        ("order", o.id.clone()),
        ("status", order_status(o.status)),
        ("channel", o.channel_id.clone()),
        (
            "member",
            if o.member_id.is_empty() {
                "(guest)".to_owned()
            } else {
                o.member_id.clone()
            },
        ),
        ("fulfilment", fulfilment),
        (
            "goods total",
            money(o.totals.as_ref().and_then(|t| t.goods_total.as_ref())),
        ),
        ("points redeemed", o.points_redeemed.to_string()),
        ("created", timestamp(o.created_at.as_ref())),
    ];
    if let Some(p) = &o.pickup
        && p.ready_at.is_some()
    {
        pairs.push(("pickup expires", timestamp(p.expires_at.as_ref())));
    }
    let mut text = fields(&pairs);
    let mut lines = Table::new([
        "LINE",
        "SKU",
        "QTY",
        "UNIT PRICE",
        "STATUS",
        "CANCELLED",
        "RETURNED",
    ]);
    for l in &o.lines {
        lines.row(vec![
            l.line_id.clone(),
            l.sku.clone(),
            l.quantity.to_string(),
            money(l.unit_price.as_ref()),
            label(
                pb::OrderLineStatus::try_from(l.status).map(|s| s.as_str_name()),
                "ORDER_LINE_STATUS_",
                l.status,
            ),
            l.cancelled_quantity.to_string(),
            l.returned_quantity.to_string(),
        ]);
    }
    text.push_str("lines:\n");
    text.push_str(&lines.render());
    let mut allocations = Table::new(["LOCATION", "KIND", "STATUS", "LINES", "DISTANCE KM"]);
    for a in &o.allocations {
        allocations.row(vec![
            a.location_id.clone(),
            label(
                pb::AllocationKind::try_from(a.kind).map(|k| k.as_str_name()),
                "ALLOCATION_KIND_",
                a.kind,
            ),
            label(
                pb::AllocationStatus::try_from(a.status).map(|s| s.as_str_name()),
                "ALLOCATION_STATUS_",
                a.status,
            ),
            a.lines
                .iter()
                .map(|l| format!("{}x{}", l.sku, l.quantity))
                .collect::<Vec<_>>()
                .join(" "),
            format!("{:.1}", a.distance_km),
        ]);
    }
    text.push_str("allocations:\n");
    text.push_str(&allocations.render());
    text
}

pub fn explanation(e: &pb::RoutingExplanation) -> String {
    let mut text = format!(
        "  strategy {}: {}\n",
        label(
            pb::PlannerStrategy::try_from(e.strategy).map(|s| s.as_str_name()),
            "PLANNER_STRATEGY_",
            e.strategy,
        ),
        e.summary
    );
    for line in &e.lines {
        text.push_str(&format!(
            "  line {} {} x{}\n",
            line.line_index, line.sku, line.quantity
        ));
        let mut table = Table::new([
            "    LOCATION",
            "DECISION",
            "REASON",
            "AVAILABLE",
            "TAKEN",
            "KM",
            "DETAIL",
        ]);
        for c in &line.candidates {
            table.row(vec![
                format!("    {}", c.location_id),
                label(
                    pb::CandidateDecision::try_from(c.decision).map(|d| d.as_str_name()),
                    "CANDIDATE_DECISION_",
                    c.decision,
                ),
                label(
                    pb::CandidateReason::try_from(c.reason).map(|r| r.as_str_name()),
                    "CANDIDATE_REASON_",
                    c.reason,
                ),
                c.available.to_string(),
                c.quantity_taken.to_string(),
                format!("{:.1}", c.distance_km),
                c.detail.clone(),
            ]);
        }
        text.push_str(&table.render());
    }
    for s in &e.suggested_stores {
        text.push_str(&format!(
            "  suggested store {} ({:.1} km)\n",
            s.store_id, s.distance_km
        ));
    }
    text
}

fn routing_record(r: &pb::RoutingRecord) -> String {
    let mut text = format!(
        "- {} at {} with profile v{}\n",
        label(
            pb::RoutingTrigger::try_from(r.trigger).map(|t| t.as_str_name()),
            "ROUTING_TRIGGER_",
            r.trigger,
        ),
        timestamp(r.planned_at.as_ref()),
        r.routing_profile_version
    );
    if let Some(e) = &r.explanation {
        text.push_str(&explanation(e));
    }
    text
}
