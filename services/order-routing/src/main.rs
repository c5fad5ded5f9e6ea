//! `order-routing`: serve, or `order-routing migrate` to run the migrations and exit.

use omni_order_routing::app::{Application, Infra};
use omni_order_routing::config::OrdersConfig;
use omni_platform::config::Env;
use omni_platform::telemetry::{TelemetryConfig, init};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let config = OrdersConfig::from_env(&env)?;
    let _telemetry = init(&TelemetryConfig::from_env(&env, "order-routing")?)?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        omni_platform::db::migrate::<omni_orders_migration::Migrator>(
            config.database_url.expose(),
            "omni_orders",
        )
        .await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let infra = Infra::from_config(&config).await?;
    let app = Application::build(config, infra).await?;
    tracing::info!(addr = %app.grpc_addr(), "order-routing serving");
    omni_platform::grpc::shutdown_signal().await;
    app.shutdown().await;
    Ok(())
}
