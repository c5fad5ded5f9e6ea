use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub channel_id: String,
    pub member_id: Option<String>,
    pub status: String,
    pub pickup_store_id: Option<String>,
    pub pickup_status: Option<String>,
    pub pickup_expires_at: Option<DateTimeUtc>,
    pub confirmations_pending: bool,
    pub sequence: i64,
    pub document: String,
    pub planner_input: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
