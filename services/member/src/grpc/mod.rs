//! The gRPC transport: `omni.member.v1.MemberService`.

pub mod auth_rules;
mod convert;
mod errors;
mod paging;
mod service;

pub use service::MemberGrpc;
