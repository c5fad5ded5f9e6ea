//! The `omni` binary as a library: `omni up` ([`up::start`]) and the CLI ([`cli::run`]), so
//! tests drive exactly what `main` runs.

pub mod cli;
pub mod dev_secret;
pub mod error;
pub mod output;
pub mod seed;
pub mod up;
