//! `member`: the member service. `member migrate` runs the migrations and exits.

use omni_member::app::{Application, Infra, SHORT_NAME};
use omni_member::config::MemberConfig;
use omni_platform::config::Env;
use omni_platform::telemetry::{self, TelemetryConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("member: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let config = MemberConfig::from_env(&env)?;
    let _telemetry = telemetry::init(&TelemetryConfig::from_env(&env, SHORT_NAME)?)?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        omni_platform::db::migrate::<omni_member_migration::Migrator>(
            config.database_url.expose(),
            SHORT_NAME,
        )
        .await?;
        tracing::info!("member migrations applied");
        return Ok(());
    }
    let infra = Infra::from_config(&config).await?;
    let app = Application::build(config, infra).await?;
    tracing::info!(addr = %app.grpc_addr(), "member service started");
    omni_platform::grpc::shutdown_signal().await;
    app.shutdown().await;
    Ok(())
}
