use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "locations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub ships: bool,
    pub pickup: bool,
    pub ship_from_store: bool,
    pub daily_capacity: i32,
    pub time_zone: String,
    pub pickup_hold_secs: i64,
    pub active: bool,
    pub address: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
