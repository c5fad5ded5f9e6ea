//! Confirm and extend read the reservation without a lock and write its header back only if
//! nobody wrote it meanwhile (PostgreSQL).

use std::sync::Arc;
use std::time::Duration;

use omni_inventory::domain::ReservationStatus;
use omni_inventory::store::{HoldChange, SettleRefused};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

use crate::hold_writes::{event, hold, store};
use crate::support::{at, hold_id};

#[tokio::test]
async fn a_hold_released_while_it_is_being_extended_stays_released() {
    let (store, _db) = store().await;
    let id = hold_id("raced");
    store
        .insert_hold(&hold(&id, false), &[event(&id)])
        .await
        .unwrap();
    let store = Arc::new(store);
    let backend = store.connection().get_database_backend();

    // Another writer releases the hold and has not committed yet.
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
    let extending = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            store
                .update_hold(&id, HoldChange::Extend(at(600)), at(10))
                .await
        })
    };
    // The extend read the hold as HELD and now waits for the releaser's row lock.
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
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the extend never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    releaser.commit().await.unwrap();

    let answer = extending.await.unwrap().unwrap();
    assert!(
        matches!(&answer, Err(SettleRefused::State(_, r)) if r.status == ReservationStatus::Released),
        "the extend read the hold again and found it released: {answer:?}"
    );
    let stored = store.reservation(&id).await.unwrap().unwrap();
    assert_eq!(stored.reservation.status, ReservationStatus::Released);
    assert_eq!(stored.reservation.expires_at, None);
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
    }
    let stored = store.reservation(&id).await.unwrap().unwrap();
    assert!(stored.reservation.confirmed);
    assert_eq!(stored.updated_at, at(5));
}
