//! `omni routing plan` (a dry run of PlaceOrder's planner) and `omni routing simulate` (replay
//! recent orders through a changed routing profile before switching to it).

use clap::Subcommand;
use omni_proto::orders::v1 as pb;

use super::draft::DraftArgs;
use super::order::explanation;
use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, label};

#[derive(Debug, Subcommand)]
pub enum RoutingCmd {
    /// Where an order would be routed now, without reserving anything.
    Plan {
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Replay the channel's recent orders through the live profile with these changes.
    Simulate {
        #[arg(long)]
        channel: String,
        /// How many recent orders to replay.
        #[arg(long, default_value_t = 100)]
        last: u32,
        #[arg(long)]
        max_splits: Option<u32>,
        #[arg(long)]
        prefer_warehouses: Option<bool>,
        #[arg(long)]
        allow_ship_from_store: Option<bool>,
        #[arg(long)]
        allow_transfer_to_store: Option<bool>,
        /// Never route to this location (repeat); replaces the live list when given.
        #[arg(long = "exclude")]
        exclude: Vec<String>,
    },
}

pub async fn run(
    cmd: RoutingCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut orders = endpoints.orders()?;
    match cmd {
        RoutingCmd::Plan { draft } => {
            let response = orders
                .plan_order(pb::PlanOrderRequest {
                    order: Some(draft.into_draft()?),
                })
                .await?
                .into_inner();
            out.show(&response, |r| r.plan.as_ref().map(plan).unwrap_or_default())
        }
        RoutingCmd::Simulate {
            channel,
            last,
            max_splits,
            prefer_warehouses,
            allow_ship_from_store,
            allow_transfer_to_store,
            exclude,
        } => {
            let live = orders
                .get_routing_profile(pb::GetRoutingProfileRequest {
                    channel_id: channel.clone(),
                    version: 0,
                })
                .await?
                .into_inner()
                .profile
                .unwrap_or_default();
            let mut candidate = live;
            if let Some(v) = max_splits {
                candidate.max_splits = v;
            }
            if let Some(v) = prefer_warehouses {
                candidate.prefer_warehouses = v;
            }
            if let Some(v) = allow_ship_from_store {
                candidate.allow_ship_from_store = v;
            }
            if let Some(v) = allow_transfer_to_store {
                candidate.allow_transfer_to_store = v;
            }
            if !exclude.is_empty() {
                candidate.excluded_location_ids = exclude;
            }
            candidate.channel_id = channel.clone();
            let response = orders
                .simulate_policy(pb::SimulatePolicyRequest {
                    channel_id: channel,
                    candidate: Some(candidate),
                    last_n_orders: last,
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut table = Table::new([
                    "PROFILE",
                    "ORDERS",
                    "SHIPMENTS/ORDER",
                    "MEAN KM",
                    "SHIP-FROM-STORE",
                    "UNROUTABLE",
                ]);
                for (name, m) in [("live", &r.live), ("candidate", &r.candidate)] {
                    let Some(m) = m else { continue };
                    let name = if m.profile_version > 0 {
                        format!("{name} v{}", m.profile_version)
                    } else {
                        name.to_owned()
                    };
                    table.row(vec![
                        name,
                        m.orders_replayed.to_string(),
                        format!("{:.2}", m.shipments_per_order),
                        format!("{:.1}", m.mean_distance_km),
                        format!("{:.0}%", m.ship_from_store_share * 100.0),
                        m.unroutable_orders.to_string(),
                    ]);
                }
                format!(
                    "{}orders routed differently: {}\n",
                    table.render(),
                    r.orders_changed
                )
            })
        }
    }
}

fn plan(p: &pb::RoutingPlan) -> String {
    let mut text = format!(
        "outcome  {} (profile v{})\n",
        label(
            pb::PlanOutcome::try_from(p.outcome).map(|o| o.as_str_name()),
            "PLAN_OUTCOME_",
            p.outcome,
        ),
        p.routing_profile_version
    );
    let mut table = Table::new(["LOCATION", "KIND", "LINES", "DISTANCE KM"]);
    for a in &p.allocations {
        table.row(vec![
            a.location_id.clone(),
            label(
                pb::AllocationKind::try_from(a.kind).map(|k| k.as_str_name()),
                "ALLOCATION_KIND_",
                a.kind,
            ),
            a.lines
                .iter()
                .map(|l| format!("{}x{}", l.line_id, l.quantity))
                .collect::<Vec<_>>()
                .join(" "),
            format!("{:.1}", a.distance_km),
        ]);
    }
    text.push_str(&table.render());
    if let Some(e) = &p.explanation {
        text.push_str("why:\n");
        text.push_str(&explanation(e));
    }
    text
}
