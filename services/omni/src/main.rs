//! `omni`: parse the command line, run it, print errors for a person and exit non-zero.

use std::process::ExitCode;

use omni_platform::config::Env;
use omni_platform::telemetry::{TelemetryConfig, init};

#[tokio::main]
async fn main() -> ExitCode {
    // Logs matter for `omni up` (three services); other commands print results, not logs.
    let _telemetry = if std::env::args().nth(1).as_deref() == Some("up") {
        match TelemetryConfig::from_env(&Env::process(), "omni").map(|c| init(&c)) {
            Ok(Ok(guard)) => Some(guard),
            Ok(Err(e)) => {
                eprintln!("error: telemetry: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let mut stdout = std::io::stdout();
    match omni::cli::run(std::env::args_os(), &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(omni::error::CliError::Usage(text)) => {
            eprint!("{text}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
