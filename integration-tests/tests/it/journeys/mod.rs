//! One module per customer journey; each starts its own system and tears it down.

mod embedded;
mod flash_sale;
mod in_store_return;
mod marketplace_pool;
mod pickup_in_store;
mod pos_shortage;
mod ship_from_store;
mod trace;
mod warehouse_contract;
