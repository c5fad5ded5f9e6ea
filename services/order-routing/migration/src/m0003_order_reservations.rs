//! Re-routed lines are held under reservations of their own (`order:<new uuid>`); inventory's
//! events about them name only that id, so this table leads back to the order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrderReservations {
    Table,
    ReservationId,
    OrderId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrderReservations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OrderReservations::ReservationId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OrderReservations::OrderId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderReservations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(OrderReservations::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
