//! The order's planner input and each routing record's explanation are tens of kilobytes of
//! JSON over hundreds of locations. PostgreSQL's default compression (pglz) spent ~0.35 ms of
//! server CPU per such value in the place-order benchmark; lz4 takes a fifth of that and
//! compresses these documents as well. Applies to values written from now on.
//!
//! PostgreSQL 14+ built with lz4 (Debian's and the official images are); elsewhere the
//! columns keep pglz, which changes speed, not behaviour. SQLite: nothing to do.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn set_compression(method: &str) -> String {
    // EXECUTE defers parsing to run time, so an older server's syntax error is caught too.
    format!(
        "DO $$ BEGIN \
           EXECUTE 'ALTER TABLE orders ALTER COLUMN planner_input SET COMPRESSION {method}, \
                    ALTER COLUMN document SET COMPRESSION {method}'; \
           EXECUTE 'ALTER TABLE routing_records ALTER COLUMN explanation SET COMPRESSION {method}'; \
         EXCEPTION WHEN feature_not_supported OR syntax_error THEN \
           RAISE NOTICE 'column compression {method} is not available; keeping the default'; \
         END $$"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&set_compression("lz4"))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&set_compression("pglz"))
            .await?;
        Ok(())
    }
}
