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
