//! One bench run: create the run's databases and key prefix, start the services as children,
//! run the chosen scenarios, then stop everything and remove what was created.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use omni_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use omni_proto::orders::v1::order_service_client::OrderServiceClient;

use crate::baselines::{PgHotReserve, PgOrder, RedisScript};
use crate::infra::{InfraError, Resources};
use crate::scenarios::{
    Fleet, Row, Settings, Targets, availability, flash_sale, place_order, planner, relay, spread,
};
use crate::seed::SeedError;
use crate::services::{self, Service, ServiceSpec, StartError};
use crate::settle;
use crate::targets::Extra;

/// Most connections of each baseline's PostgreSQL pool.
const BASELINE_POOL: u32 = 10;

/// Which scenarios to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    All,
    FlashSale,
    ReserveSpread,
    PlaceOrder,
    Availability,
    Planner,
}

impl Scenario {
    fn includes(self, other: Scenario) -> bool {
        self == Scenario::All || self == other
    }
}

/// The run could not be set up; nothing was measured.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Infra(#[from] InfraError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("cannot connect to {service}: {source}")]
    Connect {
        service: String,
        source: tonic::transport::Error,
    },
}

pub struct RunConfig {
    pub scenario: Scenario,
    pub settings: Settings,
    pub resources: Resources,
    pub bin_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Probe events written into the outbox for the relay figure.
    pub relay_burst: u64,
}

pub struct RunResult {
    pub rows: Vec<Row>,
    pub extra: Extra,
    pub relay_text: Option<String>,
    /// Setup or scenario problems that did not stop the run (printed in the report).
    pub problems: Vec<String>,
}

struct Running {
    inventory: Service,
    orders: Service,
    member: Service,
    orders_db_url: String,
}

async fn start_services(cfg: &RunConfig) -> Result<Running, RunError> {
    let r = &cfg.resources;
    let inventory_db = r.create_database("inventory").await?;
    let orders_db = r.create_database("orders").await?;
    let member_db = r.create_database("member").await?;
    let env = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    // The inventory crate has no `[[bin]]` name of its own yet, so cargo names it after the
    // package; accept either name.
    let inventory_binary = if cfg.bin_dir.join("inventory").exists() {
        "inventory"
    } else {
        "omni-inventory"
    };
    let inventory = services::start(
        &cfg.bin_dir,
        &cfg.log_dir,
        ServiceSpec {
            name: "inventory",
            binary: inventory_binary,
            env: env(&[
                ("DATABASE_URL", inventory_db),
                ("REDIS_URL", r.redis_url.clone()),
                ("REDIS_KEY_PREFIX", r.redis_prefix("inventory")),
                ("AMQP_URL", r.amqp_url.clone()),
            ]),
        },
    )
    .await?;
    let member = services::start(
        &cfg.bin_dir,
        &cfg.log_dir,
        ServiceSpec {
            name: "member",
            binary: "member",
            env: env(&[
                ("DATABASE_URL", member_db),
                ("AMQP_URL", r.amqp_url.clone()),
            ]),
        },
    )
    .await?;
    let orders = services::start(
        &cfg.bin_dir,
        &cfg.log_dir,
        ServiceSpec {
            name: "order-routing",
            binary: "order-routing",
            env: env(&[
                ("DATABASE_URL", orders_db.clone()),
                ("AMQP_URL", r.amqp_url.clone()),
                ("INVENTORY_ADDR", inventory.url()),
                ("MEMBER_ADDR", member.url()),
            ]),
        },
    )
    .await?;
    Ok(Running {
        inventory,
        orders,
        member,
        orders_db_url: orders_db,
    })
}

async fn targets(cfg: &RunConfig, running: &Running) -> Result<Targets, RunError> {
    let connect_err = |service: &str| {
        let service = service.to_owned();
        move |source| RunError::Connect { service, source }
    };
    let inventory = InventoryServiceClient::new(
        running
            .inventory
            .channel()
            .await
            .map_err(connect_err("inventory"))?,
    );
    let orders = OrderServiceClient::new(
        running
            .orders
            .channel()
            .await
            .map_err(connect_err("order-routing"))?,
    );
    let clients = cfg
        .settings
        .concurrency
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let mut inventory_fleet = Vec::with_capacity(clients);
    let mut orders_fleet = Vec::with_capacity(clients);
    let mut inventory_channels = Vec::with_capacity(clients);
    for _ in 0..clients {
        let channel = running
            .inventory
            .channel()
            .await
            .map_err(connect_err("inventory"))?;
        inventory_fleet.push(InventoryServiceClient::new(channel.clone()));
        inventory_channels.push(channel);
        orders_fleet.push(OrderServiceClient::new(
            running
                .orders
                .channel()
                .await
                .map_err(connect_err("order-routing"))?,
        ));
    }
    let r = &cfg.resources;
    // Capped: PostgreSQL's `max_connections` (100 by default) is shared by the three services,
    // these three pools and whoever else uses the server; an uncapped baseline at 64 clients
    // starved the services of connections and turned their figures into UNAVAILABLE errors.
    // The services' own pools are of the same order, so the comparison stays like for like.
    let pool = u32::try_from(cfg.settings.concurrency.iter().copied().max().unwrap_or(1))
        .unwrap_or(u32::MAX)
        .clamp(2, BASELINE_POOL);
    let script = RedisScript::connect(&r.redis_url, r.redis_prefix("script"))
        .await
        .map_err(InfraError::from)?;
    let hot_db = Resources::connect(&r.create_database("base_hot").await?, pool).await?;
    let pg_hot = PgHotReserve::setup(hot_db)
        .await
        .map_err(InfraError::from)?;
    let inv_db = Resources::connect(&r.create_database("base_inv").await?, pool).await?;
    let ord_db = Resources::connect(&r.create_database("base_ord").await?, pool).await?;
    let pg_order = PgOrder::setup(inv_db, ord_db)
        .await
        .map_err(InfraError::from)?;
    Ok(Targets {
        tag: r.tag.clone(),
        inventory,
        orders,
        inventory_fleet: Fleet::new(inventory_fleet),
        inventory_channels: Fleet::new(inventory_channels),
        orders_fleet: Fleet::new(orders_fleet),
        script,
        pg_hot,
        pg_order,
    })
}

/// Half the best closed-loop rate of `scenario`, for its latency-at-half-peak row.
fn half_peak(rows: &[Row], scenario: &str) -> Option<f64> {
    rows.iter()
        .filter(|r| r.scenario == scenario && r.rate.is_none())
        .map(|r| r.system.throughput)
        .max_by(f64::total_cmp)
        .map(|peak| peak / 2.0)
        .filter(|r| *r > 0.0)
}

pub async fn run(cfg: &RunConfig) -> Result<RunResult, RunError> {
    let s = &cfg.settings;
    let mut rows = Vec::new();
    let mut extra = Extra::default();
    let mut problems = Vec::new();
    let mut relay_text = None;

    if cfg.scenario.includes(Scenario::Planner) {
        eprintln!("bench: planner");
        rows.extend(planner::run_planner(s.duration, s.warmup).await);
    }
    if cfg.scenario == Scenario::Planner {
        return Ok(RunResult {
            rows,
            extra,
            relay_text,
            problems,
        });
    }

    eprintln!("bench: starting services");
    let running = start_services(cfg).await?;
    let t = targets(cfg, &running).await?;
    let max_concurrency = s.concurrency.iter().copied().max().unwrap_or(1);

    if cfg.scenario.includes(Scenario::FlashSale) {
        flash_sale::prepare(&t).await?;
        for &c in &s.concurrency {
            eprintln!("bench: flash-sale Reserve, {c} clients");
            extra.settled += settle::settle().await;
            rows.push(flash_sale::reserve(&t, s, c).await?);
        }
        for &c in &s.concurrency {
            eprintln!("bench: flash-sale PlaceOrder, {c} clients");
            extra.settled += settle::settle().await;
            rows.push(flash_sale::place_order(&t, s, c).await?);
        }
    }
    if cfg.scenario.includes(Scenario::ReserveSpread) {
        let catalogue = spread::catalogue(s);
        eprintln!(
            "bench: seeding {} SKUs × {} locations",
            catalogue.skus.len(),
            catalogue.sites.len()
        );
        spread::prepare(&t, &catalogue).await?;
        for &c in &s.concurrency {
            eprintln!("bench: reserve-spread, {c} clients");
            extra.settled += settle::settle().await;
            rows.push(spread::run_at(&t, s, &catalogue, c).await);
        }
    }
    let wants_orders = cfg.scenario.includes(Scenario::PlaceOrder)
        || cfg.scenario.includes(Scenario::Availability);
    if wants_orders {
        let catalogue = Arc::new(place_order::catalogue(s));
        eprintln!("bench: seeding the place-order catalogue");
        place_order::prepare(&t, &catalogue).await?;
        if cfg.scenario.includes(Scenario::PlaceOrder) {
            let services = [&running.inventory, &running.orders, &running.member];
            for service in services {
                if let Some(Err(e)) = service.pid().map(crate::rss::reset_peak) {
                    problems.push(format!("cannot reset peak RSS of {}: {e}", service.name));
                }
            }
            for &c in &s.concurrency {
                eprintln!("bench: place-order, {c} clients");
                extra.settled += settle::settle().await;
                rows.push(place_order::closed(&t, s, &catalogue, c).await);
            }
            if let Some(rate) = half_peak(&rows, "place-order") {
                eprintln!("bench: place-order at {rate:.0}/s");
                extra.settled += settle::settle().await;
                rows.push(place_order::paced(&t, s, &catalogue, max_concurrency, rate).await);
            }
            extra.peak_rss_kib = services
                .iter()
                .map(|svc| (svc.name.clone(), svc.peak_rss_kib()))
                .collect();
            eprintln!("bench: outbox relay burst of {}", cfg.relay_burst);
            match Resources::connect(&running.orders_db_url, 2).await {
                Ok(db) => {
                    match relay::measure(&db, cfg.relay_burst, Duration::from_secs(120)).await {
                        Ok(f) => {
                            extra.relay_events_per_sec = Some(f.events_per_sec);
                            relay_text = Some(format!(
                                "{} probe events written to order-routing's outbox in one statement \
                             were all published (with broker confirms) {:.2} s after the insert, \
                             which includes the relay's wait for its next poll (1 s; nothing pokes \
                             it for rows written behind its back). Between the first and the last \
                             batch it marked published, {:.2} s passed: **{:.0} events/s** drained \
                             (the rows after the first batch over that span, from the relay's own \
                             `published_at`).",
                                f.burst,
                                f.elapsed.as_secs_f64(),
                                f.draining.as_secs_f64(),
                                f.events_per_sec
                            ));
                        }
                        Err(e) => problems.push(format!("outbox relay: {e}")),
                    }
                }
                Err(e) => problems.push(format!("outbox relay: {e}")),
            }
        }
        if cfg.scenario.includes(Scenario::Availability) {
            for &c in &s.concurrency {
                eprintln!("bench: availability, {c} clients");
                extra.settled += settle::settle().await;
                rows.push(availability::closed(&t, s, &catalogue, c).await);
            }
            if let Some(rate) = half_peak(&rows, "availability") {
                eprintln!("bench: availability at {rate:.0}/s");
                extra.settled += settle::settle().await;
                rows.push(availability::paced(&t, s, &catalogue, max_concurrency, rate).await);
            }
        }
    }

    for service in [running.orders, running.member, running.inventory] {
        service.stop().await;
    }
    extra.settled += rows.iter().map(|r| r.settled).sum::<Duration>();
    Ok(RunResult {
        rows,
        extra,
        relay_text,
        problems,
    })
}
