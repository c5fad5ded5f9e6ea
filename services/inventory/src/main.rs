//! `inventory`: serve, or `inventory migrate` to run the migrations and exit.

use omni_inventory::app::{Application, Infra};
use omni_inventory::config::InventoryConfig;
use omni_platform::config::Env;
use omni_platform::telemetry::{TelemetryConfig, init};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let config = InventoryConfig::from_env(&env)?;
    let _telemetry = init(&TelemetryConfig::from_env(&env, "inventory")?)?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        omni_platform::db::migrate::<omni_inventory_migration::Migrator>(
            config.database_url.expose(),
            "omni_inventory",
        )
        .await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let infra = Infra::from_config(&config).await?;
    let app = Application::build(config, infra).await?;
    tracing::info!(addr = %app.grpc_addr(), "inventory serving");
    omni_platform::grpc::shutdown_signal().await;
    app.shutdown().await;
    Ok(())
}
