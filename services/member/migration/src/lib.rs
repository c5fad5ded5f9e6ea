//! The member database: members and their identities, the points ledger (lots, redemptions and
//! the append-only entries), the purchases segments and tiers are computed from, merge
//! tombstones and tier history. The platform's outbox and inbox come first, so the ledger and
//! the events announcing its changes commit together.

use sea_orm_migration::prelude::*;

mod m0001_member;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = omni_platform::events::migration::migrations();
        all.push(Box::new(m0001_member::Migration));
        all
    }
}
