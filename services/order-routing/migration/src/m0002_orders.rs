use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    ChannelId,
    MemberId,
    Status,
    PickupStoreId,
    PickupStatus,
    PickupExpiresAt,
    ConfirmationsPending,
    Sequence,
    Document,
    PlannerInput,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Placements {
    Table,
    ChannelId,
    IdempotencyKey,
    OrderId,
    PayloadHash,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum RoutingRecords {
    Table,
    OrderId,
    Seq,
    Trigger,
    PlannedAt,
    ProfileVersion,
    Explanation,
}

#[derive(DeriveIden)]
enum RoutingProfiles {
    Table,
    ChannelId,
    Version,
    Spec,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RequestKeys {
    Table,
    Scope,
    Key,
    RequestHash,
    Response,
    CreatedAt,
}

fn ts(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    // Text ids: the same schema runs on SQLite (embedded mode), which has no uuid.
                    .col(
                        ColumnDef::new(Orders::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Orders::ChannelId).string_len(64).not_null())
                    .col(ColumnDef::new(Orders::MemberId).string_len(36).null())
                    .col(ColumnDef::new(Orders::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Orders::PickupStoreId).string_len(64).null())
                    .col(ColumnDef::new(Orders::PickupStatus).string_len(32).null())
                    // Set only while a pickup is READY: what the expiry job scans.
                    .col(
                        ColumnDef::new(Orders::PickupExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // A durable order whose reservation or redemption is not confirmed yet:
                    // what the confirmation sweeper scans.
                    .col(
                        ColumnDef::new(Orders::ConfirmationsPending)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Orders::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(Orders::Document).text().not_null())
                    .col(ColumnDef::new(Orders::PlannerInput).text().not_null())
                    .col(ts(Orders::CreatedAt))
                    .col(ts(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "orders_channel_created",
                vec![Orders::ChannelId, Orders::CreatedAt],
            ),
            (
                "orders_store_created",
                vec![Orders::PickupStoreId, Orders::CreatedAt],
            ),
            ("orders_pickup_expiry", vec![Orders::PickupExpiresAt]),
            ("orders_pending_confirm", vec![Orders::ConfirmationsPending]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Orders::Table).if_not_exists();
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Placements::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Placements::ChannelId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Placements::IdempotencyKey)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Placements::OrderId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Placements::PayloadHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ts(Placements::LeaseUntil))
                    .primary_key(
                        Index::create()
                            .col(Placements::ChannelId)
                            .col(Placements::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingRecords::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RoutingRecords::OrderId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RoutingRecords::Seq).integer().not_null())
                    .col(
                        ColumnDef::new(RoutingRecords::Trigger)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ts(RoutingRecords::PlannedAt))
                    .col(
                        ColumnDef::new(RoutingRecords::ProfileVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RoutingRecords::Explanation)
                            .text()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(RoutingRecords::OrderId)
                            .col(RoutingRecords::Seq),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoutingProfiles::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(RoutingProfiles::ChannelId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RoutingProfiles::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RoutingProfiles::Spec).text().not_null())
                    .col(ts(RoutingProfiles::UpdatedAt))
                    // The primary key is the optimistic lock: two writers of the same next
                    // version cannot both insert it.
                    .primary_key(
                        Index::create()
                            .col(RoutingProfiles::ChannelId)
                            .col(RoutingProfiles::Version),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RequestKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RequestKeys::Scope).string_len(64).not_null())
                    .col(ColumnDef::new(RequestKeys::Key).string_len(200).not_null())
                    .col(
                        ColumnDef::new(RequestKeys::RequestHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RequestKeys::Response).text().not_null())
                    .col(ts(RequestKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(RequestKeys::Scope)
                            .col(RequestKeys::Key),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "request_keys",
            "routing_profiles",
            "routing_records",
            "placements",
            "orders",
        ] {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
