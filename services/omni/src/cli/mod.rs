//! The command line: parsing (clap) and dispatch to one module per area. [`run`] is what
//! `main` calls and what tests call, with any writer as the terminal.

pub mod connect;
mod draft;
mod events;
mod locations;
mod member;
mod order;
mod routing;
mod stock;
mod store;
mod token;
mod up;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::output::Output;
use connect::Endpoints;

#[derive(Debug, Parser)]
#[command(
    name = "omni",
    version,
    about = "Omni: run the services (`omni up`) and talk to them over gRPC",
    after_help = "Address flags go before the subcommand: omni --orders http://host:50052 order show <id>"
)]
pub struct Cli {
    /// Inventory service address.
    #[arg(
        long,
        env = "OMNI_INVENTORY_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub inventory: String,
    /// Order-routing service address (OrderService and StoreService).
    #[arg(
        long,
        env = "OMNI_ORDERS_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub orders: String,
    /// Member service address.
    #[arg(
        long,
        env = "OMNI_MEMBER_ADDR",
        default_value = "http://127.0.0.1:50053"
    )]
    pub member: String,
    /// Bearer token (JWT) to call with; `omni up` prints an admin one.
    #[arg(long, global = true, env = "OMNI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the response as proto3 JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run inventory, order-routing and member in this process until ctrl-c.
    Up(up::UpArgs),
    /// Warehouses and stores.
    #[command(subcommand)]
    Locations(locations::LocationsCmd),
    /// Stock levels and adjustments.
    #[command(subcommand)]
    Stock(stock::StockCmd),
    /// What channels can sell: available units per location.
    Availability(stock::AvailabilityArgs),
    /// Place, show and cancel orders.
    #[command(subcommand)]
    Order(order::OrderCmd),
    /// Store staff: pickup queue, ready, confirm, reject, return.
    #[command(subcommand)]
    Store(store::StoreCmd),
    /// Members, points and profiles.
    #[command(subcommand)]
    Member(member::MemberCmd),
    /// Routing dry runs and policy simulation.
    #[command(subcommand)]
    Routing(routing::RoutingCmd),
    /// Parked messages of a consumer queue (RabbitMQ).
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// Development tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
}

/// Parses `args` (the first is the program name) and runs the command, writing to `out`.
/// `--help` and `--version` are written to `out` and succeed.
pub async fn run<I, T>(args: I, out: &mut (dyn Write + Send)) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            write!(out, "{}", e.render())?;
            return Ok(());
        }
        Err(e) => return Err(CliError::Usage(e.render().to_string())),
    };
    let endpoints = Endpoints {
        inventory: cli.inventory,
        orders: cli.orders,
        member: cli.member,
        token: cli.token,
    };
    let mut out = Output {
        json: cli.json,
        out,
    };
    match cli.command {
        Command::Up(args) => up::serve(args, &mut out).await,
        Command::Locations(cmd) => locations::run(cmd, &endpoints, &mut out).await,
        Command::Stock(cmd) => stock::run(cmd, &endpoints, &mut out).await,
        Command::Availability(args) => stock::availability(args, &endpoints, &mut out).await,
        Command::Order(cmd) => order::run(cmd, &endpoints, &mut out).await,
        Command::Store(cmd) => store::run(cmd, &endpoints, &mut out).await,
        Command::Member(cmd) => member::run(cmd, &endpoints, &mut out).await,
        Command::Routing(cmd) => routing::run(cmd, &endpoints, &mut out).await,
        Command::Events(cmd) => events::run(cmd, &mut out).await,
        Command::Token(cmd) => token::run(cmd, &mut out),
    }
}

/// A fresh idempotency key when the caller gave none: a retry of the same command line is a
/// new request unless `--key` is repeated.
fn key_or_new(key: Option<String>) -> String {
    key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
