//! `omni token mint`: development tokens signed with the HS256 secret the services verify.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use omni_platform::auth::{Principal, TokenIssuer};
use omni_platform::config::parse_duration;

use crate::dev_secret;
use crate::error::CliError;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print a token for a role: admin, channel:<id>, store:<id>, warehouse:<id>, service:<name>.
    Mint {
        #[arg(long)]
        role: String,
        /// Lifetime such as 30s, 15m, 1h or 168h.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Signing secret; defaults to the one `omni up` keeps in its data directory.
        #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, env = "OMNI_SECRET_FILE", default_value = "data/jwt-secret")]
        secret_file: PathBuf,
    },
}

pub fn run(cmd: TokenCmd, out: &mut Output<'_>) -> Result<(), CliError> {
    let TokenCmd::Mint {
        role,
        ttl,
        secret,
        secret_file,
    } = cmd;
    if Principal::parse(&role).is_none() {
        return Err(CliError::usage(format!(
            "--role {role:?}: expected admin, channel:<id>, store:<id>, warehouse:<id> or \
             service:<name> (ids are [a-z0-9-]{{1,64}})"
        )));
    }
    let ttl = parse_duration(&ttl)
        .filter(|d| *d >= Duration::from_secs(1))
        .ok_or_else(|| CliError::usage(format!("--ttl {ttl:?}: expected 30s, 15m, 1h …")))?;
    let secret =
        dev_secret::load_existing(secret.as_deref(), &secret_file).map_err(CliError::setup)?;
    let token = TokenIssuer::hs256(secret.expose().as_bytes())
        .mint(&role, ttl)
        .map_err(CliError::setup)?;
    let json = serde_json::json!({ "token": token, "subject": role, "ttlSeconds": ttl.as_secs() });
    // The bare token, so `export OMNI_TOKEN=$(omni token mint --role admin)` works.
    out.show(&json, |_| token.clone())
}
