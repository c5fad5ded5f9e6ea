//! Row types of the member tables, created by `omni-member-migration`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub status: String,
        pub merged_into: Option<Uuid>,
        pub name: Option<String>,
        pub birth_date: Option<Date>,
        pub tier: String,
        pub enrolled_channel_id: String,
        pub enroll_key: Option<String>,
        pub erasure_reference: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_identities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub value: String,
        pub member_id: Uuid,
        pub linked_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod lot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_lots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub member_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lot_id: i64,
        pub source_order: Option<Uuid>,
        pub earned: i64,
        pub remaining: i64,
        pub earned_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod redemption {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "redemptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        pub member_id: Uuid,
        pub points: i64,
        pub refunded: i64,
        pub status: String,
        pub draws: String,
        pub channel_id: Option<String>,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_entries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub id: Uuid,
        pub member_id: Uuid,
        pub kind: String,
        pub points: i64,
        pub balance_after: i64,
        pub order_id: Option<Uuid>,
        pub receipt_id: Option<String>,
        pub channel_id: Option<String>,
        pub reason: Option<String>,
        pub counterpart: Option<Uuid>,
        pub lots: String,
        pub shortfall: i64,
        pub expires_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod purchase {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "purchases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub member_id: Option<Uuid>,
        pub channel_id: String,
        pub store_id: Option<String>,
        pub reference: String,
        pub order_id: Option<Uuid>,
        pub amount_minor: i64,
        pub currency: String,
        pub returned_minor: i64,
        pub points_earned: i64,
        pub occurred_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod purchase_return {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "purchase_returns")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub purchase_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub return_id: String,
        pub amount_minor: i64,
        pub points_reversed: i64,
        pub shortfall: i64,
        pub occurred_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod merge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_merges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub merged_id: Uuid,
        pub survivor_id: Uuid,
        pub reason: String,
        pub points_moved: i64,
        pub merged_at: DateTimeUtc,
    }

    no_relations!();
}

pub mod tier_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "tier_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub member_id: Uuid,
        pub from_tier: String,
        pub to_tier: String,
        pub spend_minor: i64,
        pub currency: String,
        pub changed_at: DateTimeUtc,
    }

    no_relations!();
}
