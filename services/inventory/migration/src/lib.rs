//! The inventory database. `on_hand` in `stock_levels` is always the sum of `stock_movements`
//! for its (sku, location), and `reserved` the sum of HELD reservation lines; both are kept in
//! the same transaction as the rows that change them.

use sea_orm_migration::prelude::*;

mod m0001_inventory;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = omni_platform::events::migration::migrations();
        all.push(Box::new(m0001_inventory::Migration));
        all
    }
}
