//! `bench <scenario>`: load-tests the Omni services and writes the report. `scripts/bench.sh`
//! is the usual way in; it builds in release, gives the run its own RabbitMQ vhost and calls this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use omni_bench::infra::Resources;
use omni_bench::report::{self, Context};
use omni_bench::run::{RunConfig, Scenario, run};
use omni_bench::scenarios::Settings;
use omni_bench::targets::judge;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Load generator and baselines for Omni")]
struct Cli {
    #[arg(value_enum)]
    scenario: Scenario,
    /// Concurrent clients, one closed-loop run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Measured seconds per timed run.
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 500)]
    flash_units: u32,
    #[arg(long, default_value_t = 5_000)]
    flash_buyers: u64,
    #[arg(long, default_value_t = 100)]
    flash_order_units: u32,
    #[arg(long, default_value_t = 400)]
    flash_order_buyers: u64,
    /// 2,000 × 50 by default: seeding the 10,000 × 50 through AdjustStock takes about
    /// six minutes on 2 cores, and the size of the key space does not change a hash lookup.
    #[arg(long, default_value_t = 2_000)]
    spread_skus: usize,
    #[arg(long, default_value_t = 50)]
    spread_locations: usize,
    #[arg(long, default_value_t = 200)]
    order_locations: usize,
    #[arg(long, default_value_t = 200)]
    order_skus: usize,
    #[arg(long, default_value_t = 20_000)]
    relay_burst: u64,
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    #[arg(
        long,
        env = "BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// The services' AMQP_URL; give the run a vhost of its own (scripts/bench.sh does).
    #[arg(
        long,
        env = "BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp: String,
    /// Where `inventory`, `order-routing` and `member` are (a release build).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    #[arg(long, default_value = "target/bench-logs")]
    log_dir: PathBuf,
    /// Write the report here (Markdown); the plot goes next to it.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "benchmarks.svg")]
    plot_name: String,
    /// A file with the machine facts (nproc, free, lscpu) to quote in the report.
    #[arg(long)]
    machine_file: Option<PathBuf>,
    /// The command line to quote in the report.
    #[arg(long, default_value = "scripts/bench.sh")]
    command: String,
    #[arg(long, default_value = "")]
    load_before: String,
}

fn run_tag() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("bench_{}", &id[..10])
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = Settings {
        concurrency: cli.concurrency.clone(),
        duration: Duration::from_secs_f64(cli.duration_secs.max(0.1)),
        warmup: Duration::from_secs_f64(cli.warmup_secs.max(0.0)),
        flash_units: cli.flash_units,
        flash_buyers: cli.flash_buyers,
        flash_order_units: cli.flash_order_units,
        flash_order_buyers: cli.flash_order_buyers,
        spread_skus: cli.spread_skus,
        spread_locations: cli.spread_locations,
        order_locations: cli.order_locations,
        order_skus: cli.order_skus,
    };
    if let Err(e) = std::fs::create_dir_all(&cli.log_dir) {
        eprintln!("bench: cannot create {}: {e}", cli.log_dir.display());
        return ExitCode::FAILURE;
    }
    let started_at = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let config = RunConfig {
        scenario: cli.scenario,
        settings,
        resources: Resources::new(
            run_tag(),
            cli.postgres.clone(),
            cli.redis.clone(),
            cli.amqp.clone(),
        ),
        bin_dir: cli.bin_dir.clone(),
        log_dir: cli.log_dir.clone(),
        relay_burst: cli.relay_burst,
    };
    let outcome = run(&config).await;
    for problem in config.resources.cleanup().await {
        eprintln!("bench: cleanup: {problem}");
    }
    let result = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    for problem in &result.problems {
        eprintln!("bench: {problem}");
    }
    let verdicts = judge(&result.rows, &result.extra);
    let machine = cli
        .machine_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let previous = cli
        .out
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let ctx = Context {
        command: &cli.command,
        machine: &machine,
        load_before: &cli.load_before,
        started_at: &started_at,
        plot_file: &cli.plot_name,
        relay: result.relay_text.as_deref(),
        rss: &result.extra.peak_rss_kib,
        settled: result.extra.settled,
        previous: previous.as_deref(),
    };
    let md = report::markdown(&result.rows, &verdicts, &ctx);
    match &cli.out {
        Some(path) => {
            let plot = path.with_file_name(&cli.plot_name);
            if let Err(e) = std::fs::write(path, &md)
                .and_then(|()| std::fs::write(&plot, report::svg(&result.rows)))
            {
                eprintln!("bench: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("bench: wrote {} and {}", path.display(), plot.display());
        }
        None => println!("{md}"),
    }
    ExitCode::SUCCESS
}
