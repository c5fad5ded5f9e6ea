//! Redelivery of one event id has one effect.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;
use omni_platform::{
    events::{Envelope, EventBus, EventHandler, HandlerError, Subscription, inbox},
    testkit::TestDatabase,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};

use super::support::{Rabbit, event, eventually, migrated};

const CONSUMER: &str = "member.points";

/// Adds one row to `effects` per first-time event; the first delivery of all "crashes"
/// after its effect, before the commit.
struct Effects {
    db: DatabaseConnection,
    crash_once: AtomicBool,
}

#[async_trait]
impl EventHandler for Effects {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let retry = |e: sea_orm::DbErr| HandlerError::Retry(e.to_string());
        let txn = self.db.begin().await.map_err(retry)?;
        if inbox::claim(&txn, CONSUMER, event.id())
            .await
            .map_err(retry)?
        {
            txn.execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                "INSERT INTO effects (event_id) VALUES ($1)",
                [event.id().into()],
            ))
            .await
            .map_err(retry)?;
        }
        if self.crash_once.swap(false, Ordering::SeqCst) {
            // Dropping the transaction rolls it back, claim and effect together.
            return Err(HandlerError::Retry("crashed before commit".into()));
        }
        txn.commit().await.map_err(retry)
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

#[tokio::test]
async fn redelivered_event_has_one_effect() {
    let tdb = TestDatabase::postgres().await;
    let db = tdb.connect().await;
    migrated(&db).await;
    db.execute_unprepared("CREATE TABLE effects (event_id text NOT NULL)")
        .await
        .unwrap();
    let mut rabbit = Rabbit::new().await;
    let queue = rabbit.queue("inbox");
    let handler = Arc::new(Effects {
        db: db.clone(),
        crash_once: AtomicBool::new(true),
    });
    let sub = Subscription {
        prefetch: 1,
        retry_backoff: std::time::Duration::from_millis(10),
        ..Subscription::new(queue, ["order.#"])
    };
    let consumer = rabbit.bus.subscribe(sub, handler).await.unwrap();

    let e = event("order.completed", 1);
    // The same event three times, as a relay that crashed before marking it would.
    for _ in 0..3 {
        rabbit.bus.publish(std::slice::from_ref(&e)).await.unwrap();
    }
    let marker = event("order.completed", 2);
    rabbit
        .bus
        .publish(std::slice::from_ref(&marker))
        .await
        .unwrap();
    let marker_sql = format!(
        "SELECT count(*)::bigint AS n FROM effects WHERE event_id = '{}'",
        marker.id()
    );
    eventually("the marker's effect", || {
        let db = db.clone();
        let sql = marker_sql.clone();
        async move { count(&db, &sql).await == 1 }
    })
    .await;
    let effects = format!(
        "SELECT count(*)::bigint AS n FROM effects WHERE event_id = '{}'",
        e.id()
    );
    assert_eq!(count(&db, &effects).await, 1);
    assert_eq!(
        count(&db, "SELECT count(*)::bigint AS n FROM inbox_events").await,
        2
    );
    consumer.shutdown().await;
    rabbit.cleanup().await;
    db.close().await.unwrap();
    tdb.drop_database().await;
}
