//! `omni stock show|adjust` and `omni availability`.

use clap::{Args, Subcommand, ValueEnum};
use omni_proto::inventory::v1 as pb;

use super::key_or_new;
use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, label};

#[derive(Debug, Subcommand)]
pub enum StockCmd {
    /// On hand, reserved, safety stock and available of one SKU per location.
    Show {
        sku: String,
        /// Only these locations (repeat); default every active location.
        #[arg(long = "location")]
        locations: Vec<String>,
    },
    /// Record a stock movement (receipt, till sale, count …).
    Adjust {
        sku: String,
        location: String,
        #[arg(value_enum)]
        kind: Movement,
        /// Units; a signed delta for `adjustment`, the counted total for `count`.
        #[arg(allow_negative_numbers = true)]
        quantity: i64,
        #[arg(long, default_value = "")]
        reason: String,
        /// Your document: POS receipt, count sheet …
        #[arg(long, default_value = "omni-cli")]
        reference: String,
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Movement {
    Receipt,
    Sale,
    Adjustment,
    Count,
    TransferOut,
    TransferIn,
    Return,
}

impl From<Movement> for pb::MovementKind {
    fn from(m: Movement) -> Self {
        match m {
            Movement::Receipt => Self::Receipt,
            Movement::Sale => Self::Sale,
            Movement::Adjustment => Self::Adjustment,
            Movement::Count => Self::Count,
            Movement::TransferOut => Self::TransferOut,
            Movement::TransferIn => Self::TransferIn,
            Movement::Return => Self::Return,
        }
    }
}

#[derive(Debug, Args)]
pub struct AvailabilityArgs {
    #[arg(required = true)]
    skus: Vec<String>,
    /// Only the locations in this channel's pool.
    #[arg(long)]
    channel: Option<String>,
    #[arg(long = "location")]
    locations: Vec<String>,
}

pub async fn run(
    cmd: StockCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut inventory = endpoints.inventory()?;
    match cmd {
        StockCmd::Show { sku, locations } => {
            let response = inventory
                .get_availability(pb::GetAvailabilityRequest {
                    skus: vec![sku],
                    location_ids: locations,
                    channel_id: None,
                    layout: pb::AvailabilityLayout::Rows.into(),
                })
                .await?
                .into_inner();
            out.show(&response, |r| levels(&r.levels))
        }
        StockCmd::Adjust {
            sku,
            location,
            kind,
            quantity,
            reason,
            reference,
            key,
        } => {
            let response = inventory
                .adjust_stock(pb::AdjustStockRequest {
                    adjustments: vec![pb::StockAdjustment {
                        idempotency_key: key_or_new(key),
                        sku,
                        location_id: location,
                        kind: pb::MovementKind::from(kind) as i32,
                        quantity,
                        reason,
                        reference,
                    }],
                })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let mut table = Table::new(["MOVEMENT", "KIND", "DELTA", "ON HAND AFTER"]);
                for m in &r.movements {
                    table.row(vec![
                        m.id.clone(),
                        label(
                            pb::MovementKind::try_from(m.kind).map(|k| k.as_str_name()),
                            "MOVEMENT_KIND_",
                            m.kind,
                        ),
                        format!("{:+}", m.delta),
                        m.on_hand_after.to_string(),
                    ]);
                }
                format!("{}{}", table.render(), levels(&r.levels))
            })
        }
    }
}

pub async fn availability(
    args: AvailabilityArgs,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let response = endpoints
        .inventory()?
        .get_availability(pb::GetAvailabilityRequest {
            skus: args.skus,
            location_ids: args.locations,
            channel_id: args.channel,
            layout: pb::AvailabilityLayout::Rows.into(),
        })
        .await?
        .into_inner();
    out.show(&response, |r| {
        let mut table = Table::new(["SKU", "LOCATION", "AVAILABLE", "CAPACITY LEFT TODAY"]);
        for l in &r.levels {
            let capacity = r
                .capacities
                .iter()
                .find(|c| c.location_id == l.location_id)
                .map(|c| {
                    if c.unlimited {
                        "unlimited".to_owned()
                    } else {
                        c.capacity_left_today.to_string()
                    }
                })
                .unwrap_or_else(|| "-".to_owned());
            table.row(vec![
                l.sku.clone(),
                l.location_id.clone(),
                l.available.to_string(),
                capacity,
            ]);
        }
        let total: i64 = r.levels.iter().map(|l| l.available).sum();
        format!("{}total available: {total}\n", table.render())
    })
}

fn levels(levels: &[pb::StockLevel]) -> String {
    let mut table = Table::new([
        "SKU",
        "LOCATION",
        "ON HAND",
        "RESERVED",
        "SAFETY",
        "AVAILABLE",
    ]);
    for l in levels {
        table.row(vec![
            l.sku.clone(),
            l.location_id.clone(),
            l.on_hand.to_string(),
            l.reserved.to_string(),
            l.safety_stock.to_string(),
            l.available.to_string(),
        ]);
    }
    table.render()
}
