//! Test kit: gates with a ready epoch, value builders and Redis prefix cleanup.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use omni_inventory::domain::{CapacityDay, ReservationLine};
use omni_inventory::reservations::{
    CapacityClaim, Epoch, HoldRequest, MemoryGate, RebuildSnapshot, RedisGate, RedisGateConfig,
    ReservationGate,
};
use omni_types::{LocationId, OrderId, Quantity, ReservationId, Sku};
use rand::Rng;

pub const EPOCH: Epoch = 1;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A gate plus whatever must be cleaned up when the test ends, even by panicking.
pub struct TestGate {
    pub gate: Arc<dyn ReservationGate>,
    pub prefix: Option<String>,
}

impl Drop for TestGate {
    fn drop(&mut self) {
        if let Some(prefix) = &self.prefix {
            delete_prefix(prefix);
        }
    }
}

/// SCAN + DEL of `prefix:*` with a blocking connection, so it also runs while unwinding.
fn delete_prefix(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query::<(u64, Vec<String>)>(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

pub fn random_prefix() -> String {
    let n: u64 = rand::rng().random();
    format!("omni-test:{n:016x}")
}

/// Makes an empty gate usable: it starts with no epoch, like a fresh Redis.
pub async fn make_ready(gate: &dyn ReservationGate) {
    assert!(
        gate.begin_rebuild(EPOCH, Duration::from_secs(30))
            .await
            .unwrap()
    );
    gate.load(RebuildSnapshot {
        epoch: EPOCH,
        ..RebuildSnapshot::default()
    })
    .await
    .unwrap();
    gate.finish_rebuild(EPOCH).await.unwrap();
}

pub async fn memory_gate() -> TestGate {
    let gate = Arc::new(MemoryGate::new());
    make_ready(gate.as_ref()).await;
    TestGate { gate, prefix: None }
}

pub async fn redis_gate() -> TestGate {
    let prefix = random_prefix();
    let gate = RedisGate::connect(RedisGateConfig::new(redis_url(), prefix.clone()))
        .await
        .expect("Redis must be running for the Redis contract tests");
    let gate: Arc<dyn ReservationGate> = Arc::new(gate);
    let test_gate = TestGate {
        gate,
        prefix: Some(prefix),
    };
    make_ready(test_gate.gate.as_ref()).await;
    test_gate
}

pub fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

pub fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}

pub fn line(s: &str, l: &str, qty: i64) -> ReservationLine {
    ReservationLine::new(sku(s), loc(l), Quantity::parse(qty).unwrap())
}

pub fn hold_id(cart: &str) -> ReservationId {
    ReservationId::parse(&format!("hold:web:{cart}")).unwrap()
}

pub fn order_id() -> ReservationId {
    ReservationId::for_order(OrderId::new())
}

/// A fixed test clock: 2026-03-01T00:00:00Z plus `secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_323_200 + secs, 0).unwrap()
}

pub fn day() -> CapacityDay {
    CapacityDay(at(0).date_naive())
}

pub fn claim(l: &str, limit: u32) -> CapacityClaim {
    CapacityClaim {
        location: loc(l),
        day: day(),
        daily_limit: limit,
    }
}

/// A hold created at `at(0)` that expires at `at(600)`.
pub fn hold(id: ReservationId, lines: Vec<ReservationLine>) -> HoldRequest {
    HoldRequest {
        id,
        lines,
        expires_at: Some(at(600)),
        capacity: vec![],
        epoch: EPOCH,
        now: at(0),
    }
}
