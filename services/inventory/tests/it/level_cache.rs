//! Redis-only: every replica's level cache answers as Redis does, reads its own writes at once,
//! follows other replicas' writes through the change feed, and forgets what a rebuild replaced.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use omni_inventory::domain::StockLevel;
use omni_inventory::reservations::{RebuildSnapshot, RedisGate, RedisGateConfig, ReservationGate};
use omni_types::{LocationId, Sku};

use crate::service::eventually;
use crate::support::*;

/// How long the change feed may take to deliver on a busy test machine.
const FEED: Duration = Duration::from_secs(5);

/// A replica of the gate on `prefix`, once its cache follows the feed.
async fn replica(prefix: &str) -> RedisGate {
    let gate = RedisGate::connect(RedisGateConfig::new(redis_url(), prefix.to_owned()))
        .await
        .expect("Redis must be running for the level cache tests");
    eventually(FEED, || async { gate.level_cache_live() }).await;
    gate
}

/// Two replicas on one fresh prefix with a ready epoch; the prefix is deleted on drop.
async fn two_replicas() -> (RedisGate, RedisGate, TestGate) {
    let prefix = random_prefix();
    let a = replica(&prefix).await;
    let b = replica(&prefix).await;
    make_ready(&a).await;
    let cleanup = TestGate {
        gate: Arc::new(a.clone()),
        prefix: Some(prefix),
    };
    (a, b, cleanup)
}

async fn level_of(gate: &RedisGate, key: &(Sku, LocationId)) -> StockLevel {
    gate.levels(std::slice::from_ref(key)).await.unwrap()[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_read_at_once_and_other_replicas_follow() {
    let (a, b, cleanup) = two_replicas().await;
    let key = (sku("CACHE-A"), loc("s1"));
    a.set_counters(&key.0, &key.1, 10, 0).await.unwrap();
    assert_eq!(level_of(&a, &key).await, StockLevel::new(10, 0, 0));
    assert_eq!(level_of(&b, &key).await, StockLevel::new(10, 0, 0));

    a.reserve(hold(order_id(), vec![line("CACHE-A", "s1", 3)]))
        .await
        .unwrap();
    assert_eq!(
        level_of(&a, &key).await,
        StockLevel::new(10, 3, 0),
        "the replica that reserved reads its own write without waiting"
    );
    eventually(FEED, || async {
        level_of(&b, &key).await == StockLevel::new(10, 3, 0)
    })
    .await;

    // A write that bypasses the scripts is invisible to the cache but not to the reconciler's
    // read: proof that the answers above came from memory.
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = cleanup.prefix.clone().unwrap();
    let _: () = ::redis::cmd("HSET")
        .arg(format!("{prefix}:stock:{{CACHE-A}}:s1"))
        .arg("on_hand")
        .arg(99)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(level_of(&b, &key).await, StockLevel::new(10, 3, 0));
    assert_eq!(
        b.stored_levels(std::slice::from_ref(&key)).await.unwrap(),
        vec![StockLevel::new(99, 3, 0)]
    );
    drop(cleanup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_replica_converges_while_another_writes() {
    let (a, b, _cleanup) = two_replicas().await;
    let keys: Vec<(Sku, LocationId)> = (0..20)
        .map(|i| (sku(&format!("RACE-{i}")), loc("s1")))
        .collect();
    for (s, l) in &keys {
        b.set_counters(s, l, 1_000, 0).await.unwrap();
    }
    let writers = (0..8).map(|w| {
        let b = b.clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            for n in 0..40 {
                let (s, l) = &keys[(w * 7 + n * 3) % keys.len()];
                if n % 2 == 0 {
                    b.apply_on_hand(s, l, 1).await.unwrap();
                } else {
                    let id = order_id();
                    let held = b
                        .reserve(hold(id, vec![line(s.as_str(), l.as_str(), 1)]))
                        .await
                        .unwrap();
                    assert!(matches!(
                        held,
                        omni_inventory::reservations::HoldOutcome::Held { .. }
                    ));
                }
            }
        })
    });
    let writing = tokio::spawn(join_all(writers));
    // Reads racing the writes: each fill either lands before a change or is voided by it.
    while !writing.is_finished() {
        let cached = a.levels(&keys).await.unwrap();
        assert_eq!(cached.len(), keys.len());
    }
    for done in writing.await.unwrap() {
        done.unwrap();
    }
    eventually(FEED, || async {
        a.levels(&keys).await.unwrap() == a.stored_levels(&keys).await.unwrap()
    })
    .await;
    assert_eq!(
        a.level_cache_len(),
        keys.len(),
        "every key is served from memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_replaces_what_every_replica_remembers() {
    let (a, b, _cleanup) = two_replicas().await;
    let key = (sku("REBUILT"), loc("s1"));
    a.set_counters(&key.0, &key.1, 5, 0).await.unwrap();
    assert_eq!(level_of(&a, &key).await, StockLevel::new(5, 0, 0));
    assert_eq!(level_of(&b, &key).await, StockLevel::new(5, 0, 0));

    let next = EPOCH + 1;
    assert!(
        a.begin_rebuild(next, Duration::from_secs(30))
            .await
            .unwrap()
    );
    a.load(RebuildSnapshot {
        epoch: next,
        levels: vec![(key.0.clone(), key.1.clone(), StockLevel::new(8, 0, 1))],
        ..RebuildSnapshot::default()
    })
    .await
    .unwrap();
    a.finish_rebuild(next).await.unwrap();
    assert_eq!(
        level_of(&a, &key).await,
        StockLevel::new(8, 0, 1),
        "the rebuilding replica answers from the new counters at once"
    );
    eventually(FEED, || async {
        level_of(&b, &key).await == StockLevel::new(8, 0, 1)
    })
    .await;
}
