//! The member service: one member per person across channels, one points ledger, tiers,
//! segments and the channel report (`omni.member.v1.MemberService`).

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod jobs;
pub mod ops;
pub mod store;
