//! The audit trail's storage side: the hash chain ([`chain`]), the store behind the actors'
//! `AuditSink` port ([`store`]) and verification ([`verify`]). Events themselves and the single
//! writer per node live in `confidant_actors::audit`.

pub mod chain;
pub mod checkpoint;
pub mod export;
mod pages;
pub mod purge;
pub mod role;
pub mod store;
pub mod verify;

pub use store::AuditStore;
pub use verify::{Broken, ChainSummary, Problem, verify_chains, verify_checkpoints};
