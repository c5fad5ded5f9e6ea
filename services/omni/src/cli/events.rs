//! `omni events parked|replay`: the parking queues of RabbitMQ consumers.
//!
//! These talk to the broker directly (`AMQP_URL`), not to a service. In embedded mode there is
//! no broker: parked messages live in the `omni up` process's in-process bus and are not
//! reachable from another process.

use std::collections::HashSet;

use clap::Subcommand;
use omni_platform::events::rabbitmq::{RabbitMqBus, Topology};
use omni_platform::events::{ParkedMessage, ParkedMessages, ReplaySelection};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{Output, Table};

#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// List parked messages of a consumer queue (e.g. member.orders), oldest first.
    Parked {
        queue: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, env = "AMQP_URL", hide_env_values = true)]
        amqp_url: Option<String>,
    },
    /// Send parked messages back to their queue.
    Replay {
        queue: String,
        /// Every parked message of the queue.
        #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
        all: bool,
        /// Only this event id (repeat).
        #[arg(long = "id")]
        ids: Vec<String>,
        #[arg(long, env = "AMQP_URL", hide_env_values = true)]
        amqp_url: Option<String>,
    },
}

const NO_BROKER: &str = "this command needs the RabbitMQ broker: set AMQP_URL. In embedded mode \
                         (`omni up` without AMQP_URL) parked messages stay inside the `omni up` \
                         process and cannot be reached from another process.";

/// A parked message as printed with `--json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    event_id: &'a str,
    event_type: Option<&'a str>,
    reason: &'a str,
    body: &'a str,
}

pub async fn run(cmd: EventsCmd, out: &mut Output<'_>) -> Result<(), CliError> {
    match cmd {
        EventsCmd::Parked {
            queue,
            limit,
            amqp_url,
        } => {
            let bus = connect(amqp_url).await?;
            let listed = bus.list_parked(&queue, limit).await;
            bus.close();
            let parked = listed.map_err(CliError::setup)?;
            let shown: Vec<Shown<'_>> = parked.iter().map(shown).collect();
            out.show(&shown, |rows| {
                let mut table = Table::new(["EVENT ID", "TYPE", "REASON"]);
                for r in rows {
                    table.row(vec![
                        r.event_id.to_owned(),
                        r.event_type.unwrap_or("(not an envelope)").to_owned(),
                        r.reason.to_owned(),
                    ]);
                }
                table.render()
            })
        }
        EventsCmd::Replay {
            queue,
            all,
            ids,
            amqp_url,
        } => {
            let which = if all {
                ReplaySelection::All
            } else {
                ReplaySelection::Ids(ids.into_iter().collect::<HashSet<_>>())
            };
            let bus = connect(amqp_url).await?;
            let replayed = bus.replay_parked(&queue, which).await;
            bus.close();
            let replayed = replayed.map_err(CliError::setup)?;
            let json = serde_json::json!({ "queue": queue, "replayed": replayed });
            out.show(&json, |_| {
                format!("replayed {replayed} message(s) to {queue}")
            })
        }
    }
}

async fn connect(amqp_url: Option<String>) -> Result<RabbitMqBus, CliError> {
    let url = amqp_url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| CliError::setup(NO_BROKER))?;
    RabbitMqBus::connect(&url, Topology::default(), "omni-cli")
        .await
        .map_err(|e| CliError::setup(format!("AMQP_URL: {e}")))
}

fn shown(m: &ParkedMessage) -> Shown<'_> {
    Shown {
        event_id: &m.event_id,
        event_type: m.envelope.as_ref().map(|e| e.event_type()),
        reason: &m.reason,
        body: &m.body,
    }
}
