//! The order-routing database. An order is stored as one document (its state machine, pickup and
//! confirmation state) next to the columns that queries and scheduled jobs filter on; both are
//! written in one statement, so they never disagree.

use sea_orm_migration::prelude::*;

mod m0002_orders;
mod m0003_order_reservations;
mod m0004_lz4_documents;
mod m0005_location_catalogues;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = omni_platform::events::migration::migrations();
        all.push(Box::new(m0002_orders::Migration));
        all.push(Box::new(m0003_order_reservations::Migration));
        all.push(Box::new(m0004_lz4_documents::Migration));
        all.push(Box::new(m0005_location_catalogues::Migration));
        all
    }
}
