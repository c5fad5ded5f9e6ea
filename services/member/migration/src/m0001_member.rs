use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn at(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn at_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

fn text(name: &'static str, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().to_owned()
}

fn text_null(name: &'static str, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().to_owned()
}

fn uuid(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().to_owned()
}

fn uuid_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().null().to_owned()
}

fn index(name: &str, table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The member row is the ledger's lock: every balance change takes `FOR UPDATE` on it
        // first, so concurrent redemptions on any replica serialise per member.
        manager
            .create_table(
                Table::create()
                    .table("members")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("status", 16))
                    .col(uuid_null("merged_into"))
                    .col(ColumnDef::new("name").string_len(200).null())
                    .col(ColumnDef::new("birth_date").date().null())
                    .col(text("tier", 16))
                    .col(text("enrolled_channel_id", 64))
                    // Unique: a retried EnrollMember finds the member it created.
                    .col(text_null("enroll_key", 128).unique_key())
                    .col(text_null("erasure_reference", 128))
                    .col(at("created_at"))
                    .col(at("updated_at"))
                    .to_owned(),
            )
            .await?;
        // The primary key is the "one identity, one owner" rule: two enrolments racing for
        // the same phone cannot both commit.
        manager
            .create_table(
                Table::create()
                    .table("member_identities")
                    .if_not_exists()
                    .col(text("kind", 16))
                    .col(text("value", 256))
                    .col(uuid("member_id"))
                    .col(at("linked_at"))
                    .primary_key(Index::create().col("kind").col("value"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "member_identities_member",
                "member_identities",
                &["member_id"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ledger_lots")
                    .if_not_exists()
                    .col(uuid("member_id"))
                    .col(big("lot_id"))
                    .col(uuid_null("source_order"))
                    .col(big("earned"))
                    .col(big("remaining"))
                    .col(at("earned_at"))
                    .col(at("expires_at"))
                    .primary_key(Index::create().col("member_id").col("lot_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ledger_lots_expiry", "ledger_lots", &["expires_at"]))
            .await?;
        // Keyed by the order: one redemption per order, whichever member, across merges.
        manager
            .create_table(
                Table::create()
                    .table("redemptions")
                    .if_not_exists()
                    .col(uuid("order_id").primary_key())
                    .col(uuid("member_id"))
                    .col(big("points"))
                    .col(big("refunded"))
                    .col(text("status", 16))
                    // Which lots it drew from (JSON), so refunds go back where they came from.
                    .col(ColumnDef::new("draws").text().not_null())
                    .col(text_null("channel_id", 64))
                    .col(at("created_at"))
                    .col(at("expires_at"))
                    .col(at("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "redemptions_pending",
                "redemptions",
                &["status", "expires_at"],
            ))
            .await?;
        manager
            .create_index(index("redemptions_member", "redemptions", &["member_id"]))
            .await?;
        // Append-only. `seq` orders a member's statement (entries are written under the member
        // lock, so the order is the order they happened in).
        manager
            .create_table(
                Table::create()
                    .table("ledger_entries")
                    .if_not_exists()
                    .col(
                        ColumnDef::new("seq")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(uuid("id").unique_key())
                    .col(uuid("member_id"))
                    .col(text("kind", 32))
                    .col(big("points"))
                    .col(big("balance_after"))
                    .col(uuid_null("order_id"))
                    .col(text_null("receipt_id", 128))
                    .col(text_null("channel_id", 64))
                    .col(text_null("reason", 500))
                    .col(uuid_null("counterpart"))
                    .col(ColumnDef::new("lots").text().not_null())
                    .col(big("shortfall"))
                    .col(at_null("expires_at"))
                    .col(at("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ledger_entries_member",
                "ledger_entries",
                &["member_id", "seq"],
            ))
            .await?;
        // Completed orders and till receipts: the facts tiers, segments and the report use.
        manager
            .create_table(
                Table::create()
                    .table("purchases")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(uuid_null("member_id"))
                    .col(text("channel_id", 64))
                    .col(text_null("store_id", 64))
                    .col(text("reference", 128))
                    .col(uuid_null("order_id"))
                    .col(big("amount_minor"))
                    .col(text("currency", 3))
                    .col(big("returned_minor"))
                    .col(big("points_earned"))
                    .col(at("occurred_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "purchases_reference",
                    "purchases",
                    &["channel_id", "reference"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index("purchases_order", "purchases", &["order_id"]))
            .await?;
        manager
            .create_index(index("purchases_member", "purchases", &["member_id"]))
            .await?;
        manager
            .create_index(index("purchases_time", "purchases", &["occurred_at"]))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("purchase_returns")
                    .if_not_exists()
                    .col(uuid("purchase_id"))
                    .col(text("return_id", 128))
                    .col(big("amount_minor"))
                    .col(big("points_reversed"))
                    .col(big("shortfall"))
                    .col(at("occurred_at"))
                    .primary_key(Index::create().col("purchase_id").col("return_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("member_merges")
                    .if_not_exists()
                    .col(uuid("merged_id").primary_key())
                    .col(uuid("survivor_id"))
                    .col(text("reason", 500))
                    .col(big("points_moved"))
                    .col(at("merged_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tier_changes")
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(uuid("member_id"))
                    .col(text("from_tier", 16))
                    .col(text("to_tier", 16))
                    .col(big("spend_minor"))
                    .col(text("currency", 3))
                    .col(at("changed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("tier_changes_member", "tier_changes", &["member_id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "tier_changes",
            "member_merges",
            "purchase_returns",
            "purchases",
            "ledger_entries",
            "redemptions",
            "ledger_lots",
            "member_identities",
            "members",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
