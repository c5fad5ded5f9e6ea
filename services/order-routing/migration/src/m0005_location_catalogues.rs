//! Each location's kind and coordinates as orders routed over it, stored once for all of them
//! (stored planner input form 3) instead of in every order's planner input, where over hundreds
//! of locations they were most of its bytes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LocationCatalogues {
    Table,
    Id,
    Locations,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LocationCatalogues::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(LocationCatalogues::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LocationCatalogues::Locations)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LocationCatalogues::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // A process starts from the newest catalogue rather than writing a new one.
        manager
            .create_index(
                Index::create()
                    .name("location_catalogues_created_at")
                    .table(LocationCatalogues::Table)
                    .col(LocationCatalogues::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(LocationCatalogues::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
