//! The outbox relay on real PostgreSQL and RabbitMQ (and SQLite with the in-process bus).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use omni_platform::db::DbOptions;
use omni_platform::{
    events::{
        BusError, ConsumerHandle, Envelope, EventBus, EventHandler, Subscription,
        in_process::InProcessBus,
        outbox::{self, OutboxRelay, RelayConfig},
    },
    testkit::TestDatabase,
};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use super::support::{ACK, Rabbit, Recorder, counts, event, eventually, flush, migrated};

fn config(batch_size: u64) -> RelayConfig {
    RelayConfig {
        batch_size,
        poll_interval: Duration::from_millis(50),
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RelayConfig::default()
    }
}

async fn enqueue_events(db: &DatabaseConnection, n: u32) -> Vec<String> {
    let txn = db.begin().await.unwrap();
    let events: Vec<Envelope> = (0..n).map(|i| event("order.placed", i)).collect();
    outbox::enqueue_all(&txn, &events).await.unwrap();
    txn.commit().await.unwrap();
    events.iter().map(|e| e.id().to_owned()).collect()
}

async fn backlog(db: &DatabaseConnection) -> u64 {
    outbox::backlog(db, chrono::Utc::now())
        .await
        .unwrap()
        .unpublished
}

async fn consume(rabbit: &mut Rabbit) -> (Arc<Recorder>, ConsumerHandle) {
    let queue = rabbit.queue("outbox");
    let recorder = Recorder::new(ACK);
    let sub = Subscription {
        prefetch: 1,
        ..Subscription::new(queue, ["order.#"])
    };
    let handle = rabbit.bus.subscribe(sub, recorder.clone()).await.unwrap();
    (recorder, handle)
}

/// Forwards `ok_batches` batches, then fails every publish without forwarding it.
struct FailingAfter {
    inner: Arc<dyn EventBus>,
    ok_batches: usize,
    calls: AtomicUsize,
    failed: CancellationToken,
}

#[async_trait]
impl EventBus for FailingAfter {
    async fn publish(&self, batch: &[Envelope]) -> Result<(), BusError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.ok_batches {
            return self.inner.publish(batch).await;
        }
        self.failed.cancel();
        Err(BusError::Unavailable("broker went away".into()))
    }
    async fn subscribe(
        &self,
        sub: Subscription,
        handler: Arc<dyn EventHandler>,
    ) -> Result<ConsumerHandle, BusError> {
        self.inner.subscribe(sub, handler).await
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing_and_enqueue_is_idempotent_per_id() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    // Whole seconds: PostgreSQL keeps microseconds, the envelope nanoseconds.
    let t = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let e = event("order.placed", 1).at(t);
    let txn = db.begin().await.unwrap();
    outbox::enqueue(&txn, &e).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(backlog(&db).await, 0);

    outbox::enqueue(&db, &e).await.unwrap();
    assert!(
        outbox::enqueue(&db, &e).await.is_err(),
        "same event id twice"
    );
    let b = outbox::backlog(&db, e.time() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(b.unpublished, 1);
    assert_eq!(b.oldest_age, chrono::Duration::seconds(5));
    db.close().await.unwrap();
    tdb.drop_database().await;
}

#[tokio::test]
async fn relay_stopped_mid_batch_and_restarted_loses_nothing_and_repeats_nothing() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    let mut rabbit = Rabbit::new().await;
    let (recorder, consumer) = consume(&mut rabbit).await;
    let ids = enqueue_events(&db, 30).await;

    let failing = Arc::new(FailingAfter {
        inner: Arc::new(rabbit.bus.clone()),
        ok_batches: 2,
        calls: AtomicUsize::new(0),
        failed: CancellationToken::new(),
    });
    let stop = CancellationToken::new();
    let first = OutboxRelay::new(db.clone(), failing.clone(), config(5)).spawn(stop.clone());
    failing.failed.cancelled().await;
    stop.cancel();
    first.await.unwrap();
    assert_eq!(
        backlog(&db).await,
        20,
        "two batches of 5 sent, the failed one kept"
    );
    let failed_rows = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*)::bigint AS n FROM outbox_events WHERE attempts > 0 AND last_error LIKE '%broker went away%'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert!(failed_rows >= 5, "the failed batch records its error");

    let stop = CancellationToken::new();
    let second = OutboxRelay::new(db.clone(), Arc::new(rabbit.bus.clone()), config(5));
    let poke = second.notifier();
    let second = second.spawn(stop.clone());
    poke.notify_one();
    eventually("the outbox is drained", || backlog_is_zero(&db)).await;
    flush(&rabbit.bus, &recorder, "order.flush").await;
    let seen = counts(&recorder.handled());
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id} arrived exactly once");
    }
    stop.cancel();
    second.await.unwrap();
    consumer.shutdown().await;
    rabbit.cleanup().await;
    db.close().await.unwrap();
    tdb.drop_database().await;
}

async fn backlog_is_zero(db: &DatabaseConnection) -> bool {
    backlog(db).await == 0
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_row_once() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    let mut rabbit = Rabbit::new().await;
    let (recorder, consumer) = consume(&mut rabbit).await;
    let ids = enqueue_events(&db, 200).await;

    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|n| {
            // Each relay has its own pool, like two replicas: one shares its service's pool and
            // sets its claim settings per transaction, the other opens connections whose
            // sessions carry them.
            let bus: Arc<dyn EventBus> = Arc::new(rabbit.bus.clone());
            let url = tdb.url().to_owned();
            let stop = stop.clone();
            tokio::spawn(async move {
                let db = Database::connect(url.as_str()).await.unwrap();
                let relay = if n == 0 {
                    OutboxRelay::new(db, bus, config(10))
                } else {
                    OutboxRelay::connect(&url, &db, bus, config(10))
                        .await
                        .unwrap()
                };
                relay.run(stop).await;
            })
        })
        .collect();
    eventually("the outbox is drained", || backlog_is_zero(&db)).await;
    flush(&rabbit.bus, &recorder, "order.flush").await;
    let seen = counts(&recorder.handled());
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id} arrived exactly once");
    }
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    consumer.shutdown().await;
    rabbit.cleanup().await;
    db.close().await.unwrap();
    tdb.drop_database().await;
}

#[tokio::test]
async fn session_settings_of_a_pool_hold_in_every_session() {
    let tdb = TestDatabase::postgres().await;
    let options = DbOptions {
        session_settings: vec![("enable_bitmapscan", "off")],
        wait_for_flush: false,
        ..DbOptions::default()
    };
    let db = omni_platform::db::connect(tdb.url(), &options)
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('enable_bitmapscan') AS bitmap, \
             current_setting('synchronous_commit') AS sync",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "bitmap").unwrap(), "off");
    assert_eq!(row.try_get::<String>("", "sync").unwrap(), "off");
    db.close().await.unwrap();
    tdb.drop_database().await;
}

#[tokio::test]
async fn commits_poked_within_the_linger_leave_in_one_batch() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::new(InProcessBus::new()),
        RelayConfig {
            linger: Duration::from_millis(400),
            poll_interval: Duration::from_secs(30),
            ..config(100)
        },
    );
    let poke = relay.notifier();
    let stop = CancellationToken::new();
    let running = relay.spawn(stop.clone());
    // The relay drains once when it starts; let it go idle first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        enqueue_events(&db, 2).await;
        poke.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("the outbox is drained", || backlog_is_zero(&db)).await;
    let batches = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(DISTINCT published_at) AS n FROM outbox_events",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(batches, 1, "three pokes 20 ms apart, one batch");
    stop.cancel();
    running.await.unwrap();
    db.close().await.unwrap();
    tdb.drop_database().await;
}

#[tokio::test]
async fn published_rows_are_deleted_after_retention() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    enqueue_events(&db, 3).await;
    let clock = omni_platform::clock::ManualClock::new(chrono::Utc::now());
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::new(InProcessBus::new()),
        RelayConfig {
            retention: Duration::from_secs(3600),
            clock: Arc::new(clock.clone()),
            ..config(10)
        },
    );
    assert_eq!(relay.publish_batch().await.unwrap(), 3);
    assert_eq!(relay.publish_batch().await.unwrap(), 0);
    assert_eq!(
        relay.delete_published().await.unwrap(),
        0,
        "still within retention"
    );
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(relay.delete_published().await.unwrap(), 3);
    db.close().await.unwrap();
    tdb.drop_database().await;
}

#[tokio::test]
async fn a_row_committed_late_with_an_older_time_is_published_by_the_next_sweep() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    let clock = omni_platform::clock::ManualClock::new(chrono::Utc::now());
    let relay = OutboxRelay::new(
        db.clone(),
        Arc::new(InProcessBus::new()),
        RelayConfig {
            poll_interval: Duration::from_secs(1),
            clock: Arc::new(clock.clone()),
            ..config(10)
        },
    );
    let t = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    outbox::enqueue(&db, &event("order.placed", 1).at(t))
        .await
        .unwrap();
    assert_eq!(relay.publish_batch().await.unwrap(), 1);

    // As from a transaction that stayed open for a minute before it committed.
    let late = event("order.placed", 2).at(t - chrono::Duration::minutes(1));
    outbox::enqueue(&db, &late).await.unwrap();
    let next = event("order.placed", 3).at(t + chrono::Duration::seconds(1));
    outbox::enqueue(&db, &next).await.unwrap();
    assert_eq!(
        relay.publish_batch().await.unwrap(),
        1,
        "a claim between sweeps reads from just before the newest row claimed"
    );
    assert_eq!(backlog(&db).await, 1);
    clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        relay.publish_batch().await.unwrap(),
        1,
        "the sweep a poll interval later publishes the late row"
    );
    assert_eq!(backlog(&db).await, 0);
    db.close().await.unwrap();
    tdb.drop_database().await;
}

/// Embedded mode: SQLite file, in-process bus, one relay.
#[tokio::test]
async fn sqlite_outbox_relays_to_the_in_process_bus() {
    let path = std::env::temp_dir().join(format!(
        "{}.sqlite",
        omni_platform::testkit::unique_name("omni_outbox")
    ));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Database::connect(url.as_str()).await.unwrap();
    migrated(&db).await;
    let bus = Arc::new(InProcessBus::new());
    let recorder = Recorder::new(ACK);
    let consumer = bus
        .subscribe(
            Subscription::new("member.points", ["order.#"]),
            recorder.clone(),
        )
        .await
        .unwrap();
    let ids = enqueue_events(&db, 12).await;
    let stop = CancellationToken::new();
    let relay = OutboxRelay::new(db.clone(), bus.clone(), config(5)).spawn(stop.clone());
    eventually("all events handled", || {
        let n = recorder.handled().len();
        async move { n == 12 }
    })
    .await;
    assert_eq!(recorder.handled(), ids, "in outbox order");
    stop.cancel();
    relay.await.unwrap();
    consumer.shutdown().await;
    db.close().await.unwrap();
    let _ = std::fs::remove_file(&path);
}
