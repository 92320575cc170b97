//! The audit trail's storage side: the hash chain ([`chain`]), the store behind the actors'
//! `AuditSink` port ([`store`]), verification ([`trail`]: one whole verification, built of
//! [`verify`], the keys it trusts, [`trust`], and the heads kept elsewhere, [`witness`]), the
//! owners' view of its state ([`status`]) and the periodic email of each node's signed heads to
//! the owners ([`email_witness`], one line each, [`signed_head`]). Events themselves and the single writer per node live in
//! `confidant_actors::audit`.

pub mod chain;
pub mod checkpoint;
pub mod email_witness;
pub mod export;
pub mod purge;
pub mod signed_head;
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
