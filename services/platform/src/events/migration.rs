//! The platform's tables (outbox and inbox), as a migration every service appends to its own
//! `Migrator` so they live in the service's database next to the state they protect:
//!
//! ```ignore
//! fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!     let mut all = omni_platform::events::migration::migrations();
//!     all.push(Box::new(m0002_orders::Migration));
//!     all
//! }
//! ```

use sea_orm_migration::prelude::*;

pub const MIGRATION_NAME: &str = "m0001_platform_outbox_inbox";

pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(OutboxInbox), Box::new(OutboxVacuum)]
}

pub struct OutboxInbox;

impl MigrationName for OutboxInbox {
    fn name(&self) -> &str {
        MIGRATION_NAME
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxInbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("outbox_events")
                    .if_not_exists()
                    // Text, not a native uuid: ids from other publishers need not be UUIDs, and
                    // SQLite has no uuid type.
                    .col(
                        ColumnDef::new("id")
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new("routing_key").string_len(255).not_null())
                    .col(ColumnDef::new("envelope").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("published_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("attempts").integer().not_null().default(0))
                    .col(ColumnDef::new("last_error").text().null())
                    .to_owned(),
            )
            .await?;
        // Partial index: the relay only ever looks for unpublished rows, oldest first, and the
        // published ones (kept for the retention period) would only bloat it. Same syntax on
        // PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS outbox_events_unpublished \
                 ON outbox_events (created_at, id) WHERE published_at IS NULL",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("inbox_events")
                    .if_not_exists()
                    .col(ColumnDef::new("consumer").string_len(200).not_null())
                    .col(ColumnDef::new("event_id").string_len(128).not_null())
                    .col(
                        ColumnDef::new("processed_at")
                            .timestamp_with_time_zone()
                            .not_null()
                            .default(Expr::current_timestamp()),
                    )
                    .primary_key(Index::create().col("consumer").col("event_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("inbox_events").if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("outbox_events").if_exists().to_owned())
            .await
    }
}

/// Vacuums the outbox after every few thousand published rows instead of after a fifth of the
/// table. Each published row leaves a dead entry in the partial index the relay claims from;
/// with the default thresholds a table holding a week of events would carry millions of them
/// between vacuums. PostgreSQL only (SQLite has no autovacuum settings).
pub struct OutboxVacuum;

impl MigrationName for OutboxVacuum {
    fn name(&self) -> &str {
        "m0001_platform_outbox_vacuum"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxVacuum {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE outbox_events SET (\
                 autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE outbox_events RESET (\
                 autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)",
            )
            .await?;
        Ok(())
    }
}
