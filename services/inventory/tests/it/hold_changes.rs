//! Confirm and extend read the reservation without a lock and write its header back only if
//! nobody wrote it meanwhile (PostgreSQL).

use std::sync::Arc;
use std::time::Duration;

use omni_inventory::domain::ReservationStatus;
use omni_inventory::store::{HoldChange, SettleRefused, Store};
use omni_types::ReservationId;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

use crate::hold_writes::{event, hold, store};
use crate::support::{at, hold_id};

/// Another writer releases `id` in a transaction left open for the caller to commit.
async fn release_uncommitted(store: &Store, id: &ReservationId) -> sea_orm::DatabaseTransaction {
    let backend = store.connection().get_database_backend();
    let releaser = store.connection().begin().await.unwrap();
    for release in [
        "UPDATE reservations SET status = 'RELEASED', expires_at = NULL WHERE id = $1",
        "UPDATE reservation_lines SET released = quantity WHERE reservation_id = $1",
    ] {
        releaser
            .execute_raw(Statement::from_sql_and_values(
                backend,
                release,
                [id.to_string().into()],
            ))
            .await
            .unwrap();
    }
    releaser
}

/// Waits until one statement of the test's database waits for a row lock.
async fn until_one_waits_for_a_lock(store: &Store, what: &str) {
    let backend = store.connection().get_database_backend();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = store
            .connection()
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        if waiting == 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {what} never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A change that waited for a releaser's lock must find the hold released, not overwrite it.
async fn a_change_racing_a_release_finds_it_released(change: HoldChange, name: &str) {
    let (store, _db) = store().await;
    let id = hold_id(name);
    store
        .insert_hold(&hold(&id, false), &[event(&id)])
        .await
        .unwrap();
    let store = Arc::new(store);

    let releaser = release_uncommitted(&store, &id).await;
    let changing = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move { store.update_hold(&id, change, at(10)).await })
    };
    until_one_waits_for_a_lock(&store, name).await;
    releaser.commit().await.unwrap();

    let answer = changing.await.unwrap().unwrap();
    assert!(
        matches!(&answer, Err(SettleRefused::State(_, r)) if r.status == ReservationStatus::Released),
        "the {name} read the hold again and found it released: {answer:?}"
    );
    let stored = store.reservation(&id).await.unwrap().unwrap();
    assert_eq!(stored.reservation.status, ReservationStatus::Released);
    assert_eq!(stored.reservation.expires_at, None);
    assert!(!stored.reservation.confirmed);
}

#[tokio::test]
async fn a_hold_released_while_it_is_being_extended_stays_released() {
    a_change_racing_a_release_finds_it_released(HoldChange::Extend(at(600)), "extend").await;
}

#[tokio::test]
async fn a_hold_released_while_it_is_being_confirmed_stays_released() {
    a_change_racing_a_release_finds_it_released(HoldChange::Confirm, "confirm").await;
}

#[tokio::test]
async fn confirm_drops_the_expiry_and_is_idempotent() {
    let (store, _db) = store().await;
    let id = hold_id("confirmed");
    store
        .insert_hold(&hold(&id, false), &[event(&id)])
        .await
        .unwrap();
    for _ in 0..2 {
        let confirmed = store
            .update_hold(&id, HoldChange::Confirm, at(5))
            .await
            .unwrap()
            .unwrap();
        assert!(confirmed.confirmed);
        assert_eq!(confirmed.status, ReservationStatus::Held);
        assert_eq!(confirmed.expires_at, None);
        let stored = store.reservation(&id).await.unwrap().unwrap();
        // The answer is the reservation as stored, lines included.
        assert_eq!(confirmed, stored.reservation);
        assert!(!confirmed.lines.is_empty());
    }
    let stored = store.reservation(&id).await.unwrap().unwrap();
    assert_eq!(stored.updated_at, at(5));
}

#[tokio::test]
async fn confirming_a_released_hold_is_refused_naming_its_state() {
    let (store, _db) = store().await;
    let id = hold_id("released");
    store
        .insert_hold(&hold(&id, false), &[event(&id)])
        .await
        .unwrap();
    release_uncommitted(&store, &id)
        .await
        .commit()
        .await
        .unwrap();
    let answer = store
        .update_hold(&id, HoldChange::Confirm, at(5))
        .await
        .unwrap();
    assert!(
        matches!(&answer, Err(SettleRefused::State(_, r)) if r.status == ReservationStatus::Released),
        "{answer:?}"
    );
    let missing = store
        .update_hold(&hold_id("never-held"), HoldChange::Confirm, at(5))
        .await
        .unwrap();
    assert!(
        matches!(missing, Err(SettleRefused::NotFound)),
        "{missing:?}"
    );
}

/// What the plans can be, not which one a planner picks today: the reaper's query can use an
/// index of only unconfirmed, expiring holds, and nothing but the primary key can serve a
/// write by id (m0002).
#[tokio::test]
async fn the_reaper_has_an_index_of_its_own_that_writes_by_id_cannot_take() {
    let (store, db) = store().await;
    let (due, confirmed) = (hold_id("due"), hold_id("confirmed"));
    for id in [&due, &confirmed] {
        store
            .insert_hold(&hold(id, false), &[event(id)])
            .await
            .unwrap();
    }
    store
        .update_hold(&confirmed, HoldChange::Confirm, at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.due_for_expiry(at(500), 10).await.unwrap(), vec![due]);

    let conn = db.connect().await;
    let indexes: Vec<String> = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT indexname FROM pg_indexes WHERE tablename = 'reservations' ORDER BY 1",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("", "indexname").unwrap())
        .collect();
    assert_eq!(indexes, ["reservations_expiring", "reservations_pkey"]);

    let txn = conn.begin().await.unwrap();
    let plan =
        |sql: &str| Statement::from_string(conn.get_database_backend(), format!("EXPLAIN {sql}"));
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .unwrap();
    let reaper = txn
        .query_all_raw(plan(
            "SELECT id FROM reservations WHERE status = 'HELD' AND NOT confirmed \
             AND expires_at IS NOT NULL AND expires_at <= now() ORDER BY expires_at LIMIT 10",
        ))
        .await
        .unwrap();
    let text: Vec<String> = reaper
        .iter()
        .map(|r| r.try_get("", "QUERY PLAN").unwrap())
        .collect();
    assert!(
        text.iter().any(|l| l.contains("reservations_expiring")),
        "{text:#?}"
    );
    txn.rollback().await.unwrap();
}
