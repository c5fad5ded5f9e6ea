//! `omni up`: flags, the start banner, and running until ctrl-c / SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use omni_platform::config::Env;

use crate::error::CliError;
use crate::output::Output;
use crate::up::{Ports, UpConfig, start};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address the three servers bind.
    #[arg(long, env = "OMNI_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, env = "OMNI_INVENTORY_PORT", default_value_t = 50051)]
    inventory_port: u16,
    #[arg(long, env = "OMNI_ORDERS_PORT", default_value_t = 50052)]
    orders_port: u16,
    #[arg(long, env = "OMNI_MEMBER_PORT", default_value_t = 50053)]
    member_port: u16,
    /// SQLite files and the generated development secret.
    #[arg(long, env = "OMNI_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Do not create the demo catalogue on an empty system.
    #[arg(long)]
    no_seed: bool,
}

pub async fn serve(args: UpArgs, out: &mut Output<'_>) -> Result<(), CliError> {
    let mut config = UpConfig::from_env(
        &Env::process(),
        args.data_dir,
        args.host,
        Ports {
            inventory: args.inventory_port,
            orders: args.orders_port,
            member: args.member_port,
        },
    );
    config.seed = !args.no_seed;
    let running = start(config).await.map_err(CliError::setup)?;
    write!(out.out, "{}", running.banner())?;
    // Scripts wait for this exact line.
    writeln!(out.out, "omni is up; ctrl-c stops it")?;
    out.out.flush()?;
    omni_platform::grpc::shutdown_signal().await;
    writeln!(out.out, "stopping")?;
    running.shutdown().await;
    writeln!(out.out, "stopped")?;
    Ok(())
}
