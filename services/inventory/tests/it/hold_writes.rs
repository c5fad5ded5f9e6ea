//! Accepted holds written to PostgreSQL together: each caller gets its own answer, and a batch
//! leaves nothing half-written.

use std::sync::Arc;

use chrono::NaiveDate;
use omni_inventory::domain::{CapacityDay, Reservation};
use omni_inventory::store::{InsertHold, Store, StoreError};
use omni_platform::db::migrate;
use omni_platform::events::Envelope;
use omni_platform::testkit::TestDatabase;
use omni_types::ReservationId;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::{at, hold_id, line, loc};

pub async fn store() -> (Store, TestDatabase) {
    let db = TestDatabase::postgres().await;
    migrate::<omni_inventory_migration::Migrator>(db.url(), "omni_inventory")
        .await
        .unwrap();
    (Store::new(db.connect().await), db)
}

pub fn hold(id: &ReservationId, with_capacity: bool) -> InsertHold {
    let lines = vec![line("SKU-A", "store-1", 2), line("SKU-B", "store-2", 1)];
    let day = CapacityDay(NaiveDate::from_ymd_opt(2026, 12, 6).unwrap());
    InsertHold {
        reservation: Reservation::hold(id.clone(), lines, Some(at(120))),
        fingerprint: format!("fp-{id}"),
        capacity: if with_capacity {
            vec![(loc("store-1"), day), (loc("store-2"), day)]
        } else {
            Vec::new()
        },
        created_at: at(0),
    }
}

pub fn event(id: &ReservationId) -> Envelope {
    Envelope::new(
        "inventory",
        "stock.changed",
        &id.to_string(),
        serde_json::json!({}),
    )
    .unwrap()
    .at(at(0))
}

async fn count(store: &Store, sql: &str) -> i64 {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test]
async fn concurrent_holds_are_each_answered_and_a_stored_id_conflicts_alone() {
    let (store, _db) = store().await;
    let taken = hold_id("taken");
    store
        .insert_hold(&hold(&taken, false), &[event(&taken)])
        .await
        .unwrap();

    let store = Arc::new(store);
    let ids: Vec<ReservationId> = (0..60)
        .map(|i| hold_id(&format!("o-{i}")))
        .chain([taken.clone()])
        .collect();
    let writes = ids.iter().enumerate().map(|(i, id)| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let result = store
                .insert_hold(&hold(&id, i % 2 == 0), &[event(&id)])
                .await;
            (id, result)
        })
    });
    for written in futures::future::join_all(writes).await {
        let (id, result) = written.unwrap();
        if id == taken {
            assert!(
                matches!(result, Err(StoreError::Conflict(ref m)) if m.contains("hold:web:taken")),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }

    assert_eq!(count(&store, "SELECT count(*) FROM reservations").await, 61);
    assert_eq!(
        count(&store, "SELECT count(*) FROM reservation_lines").await,
        122
    );
    // The refused duplicate wrote no event of its own.
    assert_eq!(
        count(&store, "SELECT count(*) FROM outbox_events").await,
        61
    );

    let stored = store.reservation(&hold_id("o-4")).await.unwrap().unwrap();
    assert_eq!(
        stored.reservation,
        hold(&stored.reservation.id, true).reservation
    );
    assert_eq!(stored.fingerprint, "fp-hold:web:o-4");
    assert_eq!(stored.created_at, at(0));
    assert_eq!(stored.capacity.len(), 2);
    let without = store.reservation(&hold_id("o-5")).await.unwrap().unwrap();
    assert!(without.capacity.is_empty());
}

#[tokio::test]
async fn a_hold_the_server_refuses_fails_alone_and_leaves_no_row() {
    let (store, _db) = store().await;
    let store = Arc::new(store);
    // Two holds sharing an outbox event id: whichever is written second breaks the event's
    // primary key, in a batch or alone, and must take nothing of its own with it.
    let shared = event(&hold_id("first"));
    let writes = ["first", "second"].map(|cart| {
        let store = store.clone();
        let shared = shared.clone();
        let id = hold_id(cart);
        tokio::spawn(async move { store.insert_hold(&hold(&id, false), &[shared]).await })
    });
    let results: Vec<_> = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM reservations").await, 1);
    assert_eq!(
        count(&store, "SELECT count(*) FROM reservation_lines").await,
        2
    );
    assert_eq!(count(&store, "SELECT count(*) FROM outbox_events").await, 1);
}

#[tokio::test]
async fn a_hold_that_waited_too_long_for_its_write_is_refused_unwritten() {
    let (store, _db) = store().await;
    let store = store.with_max_hold_wait(std::time::Duration::ZERO);
    let id = hold_id("late");
    let result = store.insert_hold(&hold(&id, false), &[event(&id)]).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Unavailable {
                ambiguous: false,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM reservations").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM outbox_events").await, 0);
}
