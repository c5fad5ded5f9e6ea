pub mod config;
pub mod domain;
pub mod events;
pub mod reservations;
pub mod service;
pub mod store;
