pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod reservations;
pub mod service;
pub mod store;
