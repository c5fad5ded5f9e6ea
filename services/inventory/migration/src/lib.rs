//! The inventory database. `on_hand` in `stock_levels` is always the sum of `stock_movements`
//! for its (sku, location), kept in the same transaction as the ledger row. `reserved` and the
//! capacity used are not stored: they are the sums of HELD reservation lines and of counted
//! reservations, so a reservation is an insert that never waits on a hot counter row.

use sea_orm_migration::prelude::*;

mod m0001_inventory;
mod m0002_expiring_holds_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = omni_platform::events::migration::migrations();
        all.push(Box::new(m0001_inventory::Migration));
        all.push(Box::new(m0002_expiring_holds_index::Migration));
        all
    }
}
