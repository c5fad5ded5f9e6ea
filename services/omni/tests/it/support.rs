//! One embedded stack per test: a fresh data directory, ports chosen by the OS, and the CLI run
//! in-process against it.

use std::path::PathBuf;
use std::time::Duration;

use omni::error::CliError;
use omni::up::{Ports, Running, UpConfig, start};

pub struct Stack {
    running: Option<Running>,
    pub dir: PathBuf,
}

pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("omni-cli-it-{}", uuid::Uuid::new_v4().simple()))
}

pub fn config(dir: &std::path::Path) -> UpConfig {
    let mut config = UpConfig::embedded(dir);
    config.ports = Ports {
        inventory: 0,
        orders: 0,
        member: 0,
    };
    config
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_in(temp_dir()).await
    }

    pub async fn start_in(dir: PathBuf) -> Self {
        let running = start(config(&dir)).await.expect("omni up starts");
        Self {
            running: Some(running),
            dir,
        }
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn token(&self, subject: &str) -> String {
        self.running()
            .issuer()
            .mint(subject, Duration::from_secs(600))
            .expect("token")
    }

    /// `omni --inventory … --orders … --member … [--token T] <args>`; the output on success.
    pub async fn omni(&self, token: Option<&str>, args: &[&str]) -> Result<String, CliError> {
        let endpoints = self.running().endpoints(String::new());
        let mut argv = vec![
            "omni".to_owned(),
            "--inventory".to_owned(),
            endpoints.inventory,
            "--orders".to_owned(),
            endpoints.orders,
            "--member".to_owned(),
            endpoints.member,
        ];
        if let Some(token) = token {
            argv.extend(["--token".to_owned(), token.to_owned()]);
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut out = Vec::new();
        omni::cli::run(argv, &mut out).await?;
        Ok(String::from_utf8(out).expect("utf-8 output"))
    }

    /// As admin, expecting success.
    pub async fn admin(&self, args: &[&str]) -> String {
        let token = self.running().admin_token().to_owned();
        self.omni(Some(&token), args)
            .await
            .unwrap_or_else(|e| panic!("omni {args:?} failed: {e}"))
    }

    /// Stops the services; the data directory stays (for restart tests).
    pub async fn stop(mut self) -> PathBuf {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.dir.clone()
    }

    pub async fn stop_and_clean(self) {
        let dir = self.stop().await;
        std::fs::remove_dir_all(dir).expect("remove the data directory");
    }
}

/// The value printed after `label` in `label  value` output.
pub fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|l| {
            l.strip_prefix(label)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label:?} in:\n{output}"))
}

/// Polls `probe` until it returns `Some`, failing after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
