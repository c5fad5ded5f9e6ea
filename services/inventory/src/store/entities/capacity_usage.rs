use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "capacity_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub location_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub local_date: String,
    pub used: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
