use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Locations {
    Table,
    Id,
    Kind,
    Name,
    Lat,
    Lon,
    Ships,
    Pickup,
    ShipFromStore,
    DailyCapacity,
    TimeZone,
    PickupHoldSecs,
    Active,
    Address,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ChannelPools {
    Table,
    ChannelId,
    LocationId,
}

#[derive(DeriveIden)]
enum StockLevels {
    Table,
    Sku,
    LocationId,
    OnHand,
    SafetyStock,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockMovements {
    Table,
    Id,
    Sku,
    LocationId,
    Kind,
    Delta,
    OnHandAfter,
    IdempotencyKey,
    Reference,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    Id,
    Status,
    Fingerprint,
    ExpiresAt,
    Confirmed,
    CountCapacity,
    CapacityDate,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    ReservationId,
    Sku,
    LocationId,
    Quantity,
    Committed,
    Released,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Locations::Table)
                    .col(string_len(Locations::Id, 64).primary_key())
                    .col(string_len(Locations::Kind, 16))
                    .col(string_len(Locations::Name, 200))
                    .col(double(Locations::Lat))
                    .col(double(Locations::Lon))
                    .col(boolean(Locations::Ships))
                    .col(boolean(Locations::Pickup))
                    .col(boolean(Locations::ShipFromStore))
                    .col(integer(Locations::DailyCapacity))
                    .col(string_len(Locations::TimeZone, 64))
                    .col(big_integer(Locations::PickupHoldSecs))
                    .col(boolean(Locations::Active))
                    .col(text(Locations::Address))
                    .col(timestamp_with_time_zone(Locations::CreatedAt))
                    .col(timestamp_with_time_zone(Locations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChannelPools::Table)
                    .col(string_len(ChannelPools::ChannelId, 64))
                    .col(string_len(ChannelPools::LocationId, 64))
                    .primary_key(
                        Index::create()
                            .col(ChannelPools::ChannelId)
                            .col(ChannelPools::LocationId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StockLevels::Table)
                    .col(string_len(StockLevels::Sku, 64))
                    .col(string_len(StockLevels::LocationId, 64))
                    .col(big_integer(StockLevels::OnHand))
                    .col(big_integer(StockLevels::SafetyStock))
                    .col(timestamp_with_time_zone(StockLevels::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(StockLevels::Sku)
                            .col(StockLevels::LocationId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StockMovements::Table)
                    .col(string_len(StockMovements::Id, 36).primary_key())
                    .col(string_len(StockMovements::Sku, 64))
                    .col(string_len(StockMovements::LocationId, 64))
                    .col(string_len(StockMovements::Kind, 16))
                    .col(big_integer(StockMovements::Delta))
                    .col(big_integer(StockMovements::OnHandAfter))
                    .col(string_len(StockMovements::IdempotencyKey, 200))
                    .col(string_len(StockMovements::Reference, 200))
                    .col(timestamp_with_time_zone(StockMovements::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // A replayed movement (POS retry, redelivered event) must be answered, not applied twice.
        manager
            .create_index(
                Index::create()
                    .name("stock_movements_idempotency_key")
                    .table(StockMovements::Table)
                    .col(StockMovements::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("stock_movements_sku_location")
                    .table(StockMovements::Table)
                    .col(StockMovements::Sku)
                    .col(StockMovements::LocationId)
                    .col(StockMovements::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .col(string_len(Reservations::Id, 200).primary_key())
                    .col(string_len(Reservations::Status, 16))
                    .col(string_len(Reservations::Fingerprint, 64))
                    .col(timestamp_with_time_zone_null(Reservations::ExpiresAt))
                    .col(boolean(Reservations::Confirmed))
                    .col(boolean(Reservations::CountCapacity))
                    .col(string_len_null(Reservations::CapacityDate, 10))
                    .col(timestamp_with_time_zone(Reservations::CreatedAt))
                    .col(timestamp_with_time_zone(Reservations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The reaper scans HELD reservations by expiry.
        manager
            .create_index(
                Index::create()
                    .name("reservations_status_expires_at")
                    .table(Reservations::Table)
                    .col(Reservations::Status)
                    .col(Reservations::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReservationLines::Table)
                    .col(string_len(ReservationLines::ReservationId, 200))
                    .col(string_len(ReservationLines::Sku, 64))
                    .col(string_len(ReservationLines::LocationId, 64))
                    .col(big_integer(ReservationLines::Quantity))
                    .col(big_integer(ReservationLines::Committed))
                    .col(big_integer(ReservationLines::Released))
                    .primary_key(
                        Index::create()
                            .col(ReservationLines::ReservationId)
                            .col(ReservationLines::Sku)
                            .col(ReservationLines::LocationId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReservationLines::Table, ReservationLines::ReservationId)
                            .to(Reservations::Table, Reservations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Shortage and invariant checks look up the held lines of one (sku, location).
        manager
            .create_index(
                Index::create()
                    .name("reservation_lines_sku_location")
                    .table(ReservationLines::Table)
                    .col(ReservationLines::Sku)
                    .col(ReservationLines::LocationId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReservationLines::Table.into_iden(),
            Reservations::Table.into_iden(),
            StockMovements::Table.into_iden(),
            StockLevels::Table.into_iden(),
            ChannelPools::Table.into_iden(),
            Locations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
