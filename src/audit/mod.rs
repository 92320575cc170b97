//! The audit trail's storage side: the hash chain ([`chain`]), the store behind the actors'
//! `AuditSink` port ([`store`]), verification ([`verify`]) and the owners' view of its state
//! ([`status`]). Events themselves and the single writer per node live in
//! `confidant_actors::audit`.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod purge;
pub mod status;
pub mod store;
pub mod verify;

pub use store::{AuditStore, role};
pub use verify::{Broken, ChainSummary, Problem, verify_chains, verify_checkpoints};
