//! The audit trail's storage side: the hash chain ([`chain`]), the store behind the actors'
//! `AuditSink` port ([`store`]), verification ([`trail`]: one whole verification, built of
//! [`verify`], the keys it trusts, [`trust`], and the heads kept elsewhere, [`witness`]) and the
//! owners' view of its state ([`status`]). Events themselves and the single writer per node live in
//! `confidant_actors::audit`.

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod purge;
pub mod status;
pub mod store;
pub mod trail;
pub mod trust;
pub mod verify;
pub mod witness;

pub use store::{AuditStore, role};
pub use trail::{Evidence, TrailError, TrailReport, verify_trail};
pub use trust::Trust;
pub use verify::{Broken, ChainSummary, Problem, verify_chains, verify_checkpoints};
pub use witness::Witnesses;
