//! Shared test helpers: a scriptable handler, condition waits, a fresh migrated database.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use omni_platform::events::{
    Envelope, EventBus, EventHandler, HandlerError,
    rabbitmq::{RabbitMqBus, Topology},
};
use sea_orm::DatabaseConnection;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds or the deadline passes (then panics naming `what`).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const ACK: u8 = 0;
pub const RETRY: u8 = 1;
pub const REJECT: u8 = 2;

/// Records every delivery; answers according to its mode.
#[derive(Default)]
pub struct Recorder {
    mode: AtomicU8,
    deliveries: Mutex<Vec<Envelope>>,
    handled: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new(mode: u8) -> Arc<Self> {
        let r = Self::default();
        r.mode.store(mode, Ordering::SeqCst);
        Arc::new(r)
    }
    pub fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
    /// Ids of events handled successfully, in order.
    pub fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
    pub fn deliveries_of(&self, id: &str) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id() == id)
            .count()
    }
    pub fn handled_count(&self, id: &str) -> usize {
        self.handled().iter().filter(|h| *h == id).count()
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.deliveries.lock().unwrap().push(event.clone());
        match self.mode.load(Ordering::SeqCst) {
            RETRY => Err(HandlerError::Retry("told to fail".into())),
            REJECT => Err(HandlerError::Reject("told to reject".into())),
            _ => {
                self.handled.lock().unwrap().push(event.id().to_owned());
                Ok(())
            }
        }
    }
}

pub fn event(key: &str, n: u32) -> Envelope {
    Envelope::new(
        "orders",
        key,
        &format!("agg-{n}"),
        serde_json::json!({ "n": n }),
    )
    .unwrap()
}

/// Publishes a marker and waits until `recorder` handled it: with one consumer and
/// prefetch 1, everything published before it has been delivered by then.
pub async fn flush(bus: &dyn EventBus, recorder: &Recorder, key: &str) {
    let marker = event(key, u32::MAX);
    bus.publish(std::slice::from_ref(&marker)).await.unwrap();
    let id = marker.id().to_owned();
    eventually("the flush marker", || {
        let seen = recorder.handled_count(&id) > 0;
        async move { seen }
    })
    .await;
}

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        omni_platform::events::migration::migrations()
    }
}

pub async fn migrated(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
}

pub struct Rabbit {
    pub bus: RabbitMqBus,
    queues: Vec<String>,
}

impl Rabbit {
    pub async fn new() -> Self {
        omni_platform::testkit::init_test_logging();
        let bus = RabbitMqBus::connect(
            &omni_platform::testkit::amqp_url(),
            Topology::unique("omni-test"),
            "orders",
        )
        .await
        .expect("RabbitMQ must be running (scripts/infra.sh)");
        Self {
            bus,
            queues: Vec::new(),
        }
    }

    /// A queue name unique to this test, deleted by `cleanup`.
    pub fn queue(&mut self, purpose: &str) -> String {
        let q = omni_platform::testkit::unique_name(&format!("test.{purpose}"));
        self.queues.push(q.clone());
        q
    }

    pub async fn cleanup(self) {
        let queues: Vec<&str> = self.queues.iter().map(String::as_str).collect();
        self.bus.delete_topology(&queues).await.unwrap();
        self.bus.close();
    }
}

pub type Counts = HashMap<String, usize>;

pub fn counts(ids: &[String]) -> Counts {
    let mut c = Counts::new();
    for id in ids {
        *c.entry(id.clone()).or_default() += 1;
    }
    c
}
