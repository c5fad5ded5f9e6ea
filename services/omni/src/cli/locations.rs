//! `omni locations list|show`.

use clap::{Subcommand, ValueEnum};
use omni_proto::inventory::v1 as pb;

use crate::cli::connect::Endpoints;
use crate::error::CliError;
use crate::output::{Output, Table, fields, label, timestamp};

#[derive(Debug, Subcommand)]
pub enum LocationsCmd {
    /// Every location (active ones unless --all).
    List {
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Include inactive locations.
        #[arg(long)]
        all: bool,
    },
    /// One location in full.
    Show { location_id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Warehouse,
    Store,
}

pub async fn run(
    cmd: LocationsCmd,
    endpoints: &Endpoints,
    out: &mut Output<'_>,
) -> Result<(), CliError> {
    let mut inventory = endpoints.inventory()?;
    match cmd {
        LocationsCmd::List { kind, all } => {
            let kind = match kind {
                None => pb::LocationKind::Unspecified,
                Some(Kind::Warehouse) => pb::LocationKind::Warehouse,
                Some(Kind::Store) => pb::LocationKind::Store,
            } as i32;
            let mut locations = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = inventory
                    .list_locations(pb::ListLocationsRequest {
                        page_size: 500,
                        page_token,
                        kind,
                        include_inactive: all,
                    })
                    .await?
                    .into_inner();
                locations.extend(page.locations);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let all = pb::ListLocationsResponse {
                locations,
                next_page_token: String::new(),
            };
            out.show(&all, |r| {
                let mut table = Table::new([
                    "ID",
                    "KIND",
                    "NAME",
                    "LAT,LON",
                    "CAPABILITIES",
                    "CAPACITY",
                    "ACTIVE",
                ]);
                for l in &r.locations {
                    table.row(vec![
                        l.id.clone(),
                        kind_label(l.kind),
                        l.name.clone(),
                        position(l),
                        capabilities(l),
                        capacity(l.daily_capacity),
                        if l.active { "yes" } else { "no" }.to_owned(),
                    ]);
                }
                table.render()
            })
        }
        LocationsCmd::Show { location_id } => {
            let response = inventory
                .get_location(pb::GetLocationRequest { location_id })
                .await?
                .into_inner();
            out.show(&response, |r| {
                let Some(l) = &r.location else {
                    return String::new();
                };
                fields(&[
                    ("id", l.id.clone()),
                    ("kind", kind_label(l.kind)),
                    ("name", l.name.clone()),
                    ("position", position(l)),
                    ("capabilities", capabilities(l)),
                    ("daily capacity", capacity(l.daily_capacity)),
                    ("time zone", l.time_zone.clone()),
                    (
                        "pickup hold",
                        l.pickup_hold
                            .as_ref()
                            .map(|d| format!("{}h", d.seconds / 3600))
                            .unwrap_or_else(|| "-".to_owned()),
                    ),
                    ("active", l.active.to_string()),
                    ("updated", timestamp(l.updated_at.as_ref())),
                ])
            })
        }
    }
}

fn kind_label(raw: i32) -> String {
    label(
        pb::LocationKind::try_from(raw).map(|k| k.as_str_name()),
        "LOCATION_KIND_",
        raw,
    )
}

fn position(l: &pb::Location) -> String {
    l.position
        .as_ref()
        .map(|p| format!("{:.4},{:.4}", p.lat, p.lon))
        .unwrap_or_else(|| "-".to_owned())
}

fn capabilities(l: &pb::Location) -> String {
    let Some(c) = &l.capabilities else {
        return "-".to_owned();
    };
    let names: Vec<&str> = [
        (c.ships, "ships"),
        (c.pickup, "pickup"),
        (c.ship_from_store, "ship-from-store"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    names.join(",")
}

fn capacity(daily: u32) -> String {
    if daily == 0 {
        "unlimited".to_owned()
    } else {
        format!("{daily}/day")
    }
}
