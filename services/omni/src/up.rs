//! `omni up`: inventory, order-routing and member in one process, each on its own port.
//!
//! With no URLs it runs the embedded default (ARCHITECTURE §5): SQLite files under the data
//! directory, one in-process bus shared by the three services, the in-process reservation gate.
//! Each URL that is set (`REDIS_URL`, `AMQP_URL`, `<SERVICE>_DATABASE_URL`) swaps in the real
//! server for that part. Authentication is always on, with a development HS256 secret.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use omni_platform::auth::{AuthError, TokenIssuer};
use omni_platform::clock::system_clock;
use omni_platform::config::{ConfigError, Env};
use omni_platform::events::EventBus;
use omni_platform::events::in_process::InProcessBus;

use crate::cli::connect::Endpoints;
use crate::dev_secret::{self, SecretError};
use crate::seed::{self, SeedOutcome};

/// The three gRPC ports; 0 lets the OS choose (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub inventory: u16,
    pub orders: u16,
    pub member: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            inventory: 50051,
            orders: 50052,
            member: 50053,
        }
    }
}

/// The real servers to use instead of the embedded parts; `None` = embedded.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    pub inventory_database: Option<String>,
    pub orders_database: Option<String>,
    pub member_database: Option<String>,
    pub redis: Option<String>,
    pub amqp: Option<String>,
}

impl Backends {
    fn is_embedded(&self) -> bool {
        self.inventory_database.is_none()
            && self.orders_database.is_none()
            && self.member_database.is_none()
            && self.redis.is_none()
            && self.amqp.is_none()
    }
}

/// Service settings `omni up` passes through from its own environment unchanged (each service
/// documents them); anything naming a listener, a database or a peer is set by `omni up` itself.
pub const PASSED_THROUGH: &[&str] = &[
    "REDIS_KEY_PREFIX",
    "HOLD_GRACE",
    "REAPER_INTERVAL",
    "RECONCILE_INTERVAL",
    "PEER_DEADLINE",
    "ORDER_RESERVE_TTL",
    "ORDER_PLACEMENT_LEASE",
    "DEFAULT_PICKUP_HOLD",
    "PICKUP_EXPIRY_INTERVAL",
    "CONFIRMATION_SWEEP_INTERVAL",
    "POINTS_LOT_LIFETIME_MONTHS",
    "REDEMPTION_HOLD",
    "TIER_THRESHOLDS",
    "EARNING_RULES_FILE",
    "BOOK_CURRENCY",
    "JOB_INTERVAL",
];

/// Faster than the production defaults where only one process can be involved: with the
/// in-process gate a PENDING hold cannot belong to another replica, so the reaper need not wait
/// the 10 s a Redis deployment needs.
const EMBEDDED_HOLD_GRACE: &str = "1s";

#[derive(Debug, Clone)]
pub struct UpConfig {
    /// The address the three servers bind (loopback by default: a development stack).
    pub host: IpAddr,
    pub ports: Ports,
    /// SQLite files and the generated secret live here.
    pub data_dir: PathBuf,
    pub backends: Backends,
    /// `JWT_HS256_SECRET`; `None` = the one kept in the data directory (generated once).
    pub jwt_secret: Option<String>,
    /// Seed the demo catalogue when no location exists yet.
    pub seed: bool,
    /// Values of [`PASSED_THROUGH`] variables that were set.
    pub service_settings: Vec<(String, String)>,
}

impl UpConfig {
    /// The embedded default on fixed ports under `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: Ports::default(),
            data_dir: data_dir.into(),
            backends: Backends::default(),
            jwt_secret: None,
            seed: true,
            service_settings: Vec::new(),
        }
    }

    /// Reads the URLs, the secret and the pass-through settings from `env`.
    pub fn from_env(env: &Env, data_dir: PathBuf, host: IpAddr, ports: Ports) -> Self {
        Self {
            host,
            ports,
            data_dir,
            backends: Backends {
                inventory_database: env.get("INVENTORY_DATABASE_URL"),
                orders_database: env.get("ORDERS_DATABASE_URL"),
                member_database: env.get("MEMBER_DATABASE_URL"),
                redis: env.get("REDIS_URL"),
                amqp: env.get("AMQP_URL"),
            },
            jwt_secret: env.get("JWT_HS256_SECRET"),
            seed: true,
            service_settings: PASSED_THROUGH
                .iter()
                .filter_map(|name| env.get(name).map(|v| ((*name).to_owned(), v)))
                .collect(),
        }
    }

    fn sqlite(&self, file: &str) -> String {
        format!("sqlite://{}?mode=rwc", self.data_dir.join(file).display())
    }

    /// The variables one service is configured from.
    fn service_env(&self, database: String, port: u16) -> Vec<(String, String)> {
        let mut env = self.service_settings.clone();
        if self.backends.redis.is_none() && !env.iter().any(|(k, _)| k == "HOLD_GRACE") {
            env.push(("HOLD_GRACE".into(), EMBEDDED_HOLD_GRACE.into()));
        }
        env.extend([
            ("DATABASE_URL".to_owned(), database),
            (
                "LISTEN_ADDR".to_owned(),
                SocketAddr::new(self.host, port).to_string(),
            ),
            // Three metrics endpoints in one process: port 0 keeps them from clashing.
            (
                "METRICS_ADDR".to_owned(),
                SocketAddr::new(self.host, 0).to_string(),
            ),
        ]);
        if let Some(amqp) = &self.backends.amqp {
            env.push(("AMQP_URL".to_owned(), amqp.clone()));
        }
        env
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("data directory {path}: {error}")]
    DataDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot mint the development tokens: {0}")]
    Token(#[from] AuthError),
    #[error("inventory did not start: {0}")]
    Inventory(#[from] omni_inventory::app::StartError),
    #[error("order-routing did not start: {0}")]
    Orders(#[from] omni_order_routing::app::StartError),
    #[error("member did not start: {0}")]
    Member(#[from] omni_member::app::StartError),
    #[error("seeding the demo catalogue failed: {0}")]
    Seed(String),
}

/// The admin token printed at start: long enough for a working day.
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// order-routing's token for inventory and member lives as long as the process could.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The three running services.
pub struct Running {
    inventory: omni_inventory::app::Application,
    orders: omni_order_routing::app::Application,
    member: omni_member::app::Application,
    issuer: TokenIssuer,
    admin_token: String,
    secret_file: Option<PathBuf>,
    /// What runs on real servers, for the banner.
    backends: Backends,
    seeded: SeedOutcome,
}

pub async fn start(config: UpConfig) -> Result<Running, UpError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|error| UpError::DataDir {
        path: config.data_dir.clone(),
        error,
    })?;
    let secret_path = dev_secret::file_in(&config.data_dir);
    let secret = dev_secret::load_or_create(config.jwt_secret.as_deref(), &secret_path)?;
    let issuer = TokenIssuer::hs256(secret.expose().as_bytes());
    let auth = ("JWT_HS256_SECRET".to_owned(), secret.expose().to_owned());
    let shared_bus: Option<Arc<InProcessBus>> = match config.backends.amqp {
        Some(_) => None,
        None => Some(Arc::new(InProcessBus::new())),
    };

    let mut env = config.service_env(
        config
            .backends
            .inventory_database
            .clone()
            .unwrap_or_else(|| config.sqlite("inventory.db")),
        config.ports.inventory,
    );
    env.push(auth.clone());
    if let Some(redis) = &config.backends.redis {
        env.push(("REDIS_URL".to_owned(), redis.clone()));
    }
    let inventory_config =
        omni_inventory::config::InventoryConfig::from_env(&Env::from_pairs(env))?;
    let inventory_infra = match &shared_bus {
        Some(bus) => omni_inventory::app::Infra {
            bus: bus.clone() as Arc<dyn EventBus>,
            parked: Some(bus.clone()),
            clock: system_clock(),
        },
        None => omni_inventory::app::Infra::from_config(&inventory_config).await?,
    };
    let inventory =
        omni_inventory::app::Application::build(inventory_config, inventory_infra).await?;

    let mut env = config.service_env(
        config
            .backends
            .member_database
            .clone()
            .unwrap_or_else(|| config.sqlite("member.db")),
        config.ports.member,
    );
    env.push(auth.clone());
    let member = match start_member(env, shared_bus.as_ref()).await {
        Ok(member) => member,
        Err(e) => {
            inventory.shutdown().await;
            return Err(e);
        }
    };

    let mut env = config.service_env(
        config
            .backends
            .orders_database
            .clone()
            .unwrap_or_else(|| config.sqlite("orders.db")),
        config.ports.orders,
    );
    env.push(auth);
    env.extend([
        (
            "INVENTORY_ADDR".to_owned(),
            peer_url(config.host, inventory.grpc_addr()),
        ),
        (
            "MEMBER_ADDR".to_owned(),
            peer_url(config.host, member.grpc_addr()),
        ),
        (
            "SERVICE_TOKEN".to_owned(),
            issuer.mint("service:orders", SERVICE_TOKEN_TTL)?,
        ),
    ]);
    let orders = match start_orders(env, shared_bus.as_ref()).await {
        Ok(orders) => orders,
        Err(e) => {
            member.shutdown().await;
            inventory.shutdown().await;
            return Err(e);
        }
    };

    let mut running = Running {
        admin_token: issuer.mint("admin", ADMIN_TOKEN_TTL)?,
        inventory,
        orders,
        member,
        issuer,
        secret_file: config.jwt_secret.is_none().then_some(secret_path),
        backends: config.backends.clone(),
        seeded: SeedOutcome::Skipped,
    };
    if config.seed {
        match seed::seed(&running.endpoints(running.admin_token.clone())).await {
            Ok(outcome) => running.seeded = outcome,
            Err(e) => {
                running.shutdown().await;
                return Err(UpError::Seed(e.to_string()));
            }
        }
    }
    Ok(running)
}

async fn start_member(
    env: Vec<(String, String)>,
    shared_bus: Option<&Arc<InProcessBus>>,
) -> Result<omni_member::app::Application, UpError> {
    let config = omni_member::config::MemberConfig::from_env(&Env::from_pairs(env))?;
    let infra = match shared_bus {
        Some(bus) => omni_member::app::Infra {
            bus: bus.clone() as Arc<dyn EventBus>,
            parked: Some(bus.clone()),
            clock: system_clock(),
            orders_queue: omni_member::ops::ORDERS_CONSUMER.to_owned(),
        },
        None => omni_member::app::Infra::from_config(&config).await?,
    };
    Ok(omni_member::app::Application::build(config, infra).await?)
}

async fn start_orders(
    env: Vec<(String, String)>,
    shared_bus: Option<&Arc<InProcessBus>>,
) -> Result<omni_order_routing::app::Application, UpError> {
    let config = omni_order_routing::config::OrdersConfig::from_env(&Env::from_pairs(env))?;
    let infra = match shared_bus {
        Some(bus) => omni_order_routing::app::Infra {
            bus: bus.clone() as Arc<dyn EventBus>,
            parked: Some(bus.clone()),
            clock: system_clock(),
            queues: omni_order_routing::app::ConsumerQueues::default(),
        },
        None => omni_order_routing::app::Infra::from_config(&config).await?,
    };
    Ok(omni_order_routing::app::Application::build(config, infra).await?)
}

/// How a client in this process reaches a server bound to `bound` (a wildcard bind is reached
/// over loopback).
fn peer_url(host: IpAddr, bound: SocketAddr) -> String {
    let ip = if host.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host
    };
    format!("http://{}", SocketAddr::new(ip, bound.port()))
}

impl Running {
    /// The ports actually bound (the OS's choice when 0 was asked for).
    pub fn ports(&self) -> Ports {
        Ports {
            inventory: self.inventory.grpc_addr().port(),
            orders: self.orders.grpc_addr().port(),
            member: self.member.grpc_addr().port(),
        }
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Signs tokens the three services accept (`omni token mint` does the same from the secret).
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    pub fn seeded(&self) -> &SeedOutcome {
        &self.seeded
    }

    /// Client endpoints of this stack, calling as the holder of `token`.
    pub fn endpoints(&self, token: String) -> Endpoints {
        Endpoints {
            inventory: peer_url(self.inventory.grpc_addr().ip(), self.inventory.grpc_addr()),
            orders: peer_url(self.orders.grpc_addr().ip(), self.orders.grpc_addr()),
            member: peer_url(self.member.grpc_addr().ip(), self.member.grpc_addr()),
            token: Some(token),
        }
    }

    /// What `omni up` prints once it serves.
    pub fn banner(&self) -> String {
        let ports = self.ports();
        let endpoints = self.endpoints(String::new());
        let mode = if self.backends.is_embedded() {
            "embedded: SQLite files, in-process bus and reservation gate".to_owned()
        } else {
            let b = &self.backends;
            let databases = [
                &b.inventory_database,
                &b.orders_database,
                &b.member_database,
            ]
            .iter()
            .filter(|d| d.is_some())
            .count();
            format!(
                "{databases} of 3 databases from URLs, the rest SQLite; {}; {}",
                if b.amqp.is_some() {
                    "RabbitMQ"
                } else {
                    "in-process bus"
                },
                if b.redis.is_some() {
                    "Redis reservation gate"
                } else {
                    "in-process reservation gate"
                }
            )
        };
        let seeded = match &self.seeded {
            SeedOutcome::Seeded { locations, skus } => {
                format!("seeded the demo catalogue: {locations} locations, {skus} SKUs, 1 member")
            }
            SeedOutcome::AlreadyPresent => "catalogue already present; not seeded".to_owned(),
            SeedOutcome::Skipped => "seeding skipped".to_owned(),
        };
        let secret = match &self.secret_file {
            Some(file) => format!(
                "tokens are signed with the secret in {} (omni token mint reads it)",
                file.display()
            ),
            None => "tokens are signed with JWT_HS256_SECRET".to_owned(),
        };
        format!(
            "omni up ({mode})\n\
             \x20 inventory      {} (port {})\n\
             \x20 order-routing  {} (port {})\n\
             \x20 member         {} (port {})\n\
             {seeded}\n\
             {secret}\n\
             development admin token (24h):\n\
             \x20 export OMNI_TOKEN={}\n",
            endpoints.inventory,
            ports.inventory,
            endpoints.orders,
            ports.orders,
            endpoints.member,
            ports.member,
            self.admin_token,
        )
    }

    /// Stops order-routing first (it calls the other two), then member and inventory; each
    /// stops taking calls, then its consumers, jobs and relay.
    pub async fn shutdown(self) {
        self.orders.shutdown().await;
        self.member.shutdown().await;
        self.inventory.shutdown().await;
    }
}

/// The secret file `omni token mint` falls back to.
pub fn default_secret_file(data_dir: &Path) -> PathBuf {
    dev_secret::file_in(data_dir)
}
