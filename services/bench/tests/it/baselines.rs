use std::time::Duration;

use omni_bench::baselines::{BaselineLine, PgHotReserve, PgOrder, RedisScript};
use omni_bench::driver::{LoadPlan, Stop, run};
use omni_platform::testkit::{TestDatabase, TestRedisPrefix, redis_url};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const K: u32 = 50;
const BUYERS: u64 = 300;

fn sale() -> LoadPlan {
    LoadPlan {
        concurrency: 16,
        warmup: Duration::ZERO,
        stop: Stop::Requests(BUYERS),
        rate: None,
    }
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT count(*) AS n FROM {table}"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

#[tokio::test]
async fn the_raw_gate_script_sells_exactly_k_units_to_a_crowd() {
    let prefix = TestRedisPrefix::new();
    let script = RedisScript::connect(&redis_url(), prefix.prefix.clone())
        .await
        .unwrap();
    script.stock("HOT", "wh-1", i64::from(K)).await.unwrap();
    let s = script.clone();
    let summary = run(sale(), move |c| {
        let s = s.clone();
        async move {
            s.reserve(&format!("order:{}", c.seq), &[("HOT", "wh-1", 1)], 0)
                .await
        }
    })
    .await;
    prefix.cleanup().await;
    assert_eq!(summary.errors_text(), "-");
    assert_eq!(
        (summary.accepted, summary.refused),
        (u64::from(K), BUYERS - u64::from(K))
    );
}

#[tokio::test]
async fn the_postgres_only_reservation_sells_exactly_k_units_to_a_crowd() {
    let db = TestDatabase::postgres().await;
    let pg = PgHotReserve::setup(db.connect().await).await.unwrap();
    pg.stock("HOT", "wh-1", i64::from(K)).await.unwrap();
    let p = pg.clone();
    let summary = run(sale(), move |_| {
        let p = p.clone();
        async move { p.reserve("HOT", "wh-1", 1).await }
    })
    .await;
    let reserved = pg.reserved("HOT", "wh-1").await.unwrap();
    drop(pg);
    db.drop_database().await;
    assert_eq!(summary.errors_text(), "-");
    assert_eq!(
        (summary.accepted, summary.refused),
        (u64::from(K), BUYERS - u64::from(K))
    );
    assert_eq!(reserved, i64::from(K));
}

#[tokio::test]
async fn an_order_baseline_commits_both_transactions_per_order() {
    let (inv, ord) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    );
    let (inv_db, ord_db) = (inv.connect().await, ord.connect().await);
    let pg = PgOrder::setup(inv_db.clone(), ord_db.clone())
        .await
        .unwrap();
    let lines = vec![
        BaselineLine {
            sku: "A".into(),
            location: "wh-1".into(),
            qty: 1,
            unit_price_minor: 100,
        },
        BaselineLine {
            sku: "B".into(),
            location: "wh-1".into(),
            qty: 2,
            unit_price_minor: 250,
        },
    ];
    let plan = LoadPlan {
        concurrency: 4,
        warmup: Duration::ZERO,
        stop: Stop::Requests(20),
        rate: None,
    };
    let p = pg.clone();
    let summary = run(plan, move |_| {
        let (p, lines) = (p.clone(), lines.clone());
        async move { p.place(&lines).await }
    })
    .await;
    let figures = (
        count(&inv_db, "reservations").await,
        count(&inv_db, "outbox").await,
        count(&ord_db, "orders").await,
        count(&ord_db, "order_lines").await,
        count(&ord_db, "outbox").await,
    );
    drop((pg, inv_db, ord_db));
    inv.drop_database().await;
    ord.drop_database().await;
    assert_eq!(summary.accepted, 20, "{}", summary.errors_text());
    assert_eq!(figures, (20, 20, 20, 40, 20));
}
