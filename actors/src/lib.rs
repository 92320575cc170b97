//! Confidant's actor layer. Actors here know nothing of HTTP, SQL or sockets: they declare the
//! ports they need (such as [`audit::AuditSink`]) and the root crate (`confidant`) implements
//! them, so every actor can be tested alone under `#[actix::test]`.
//!
//! Today the crate holds the identifier types, the [`lifecycle`] actor that orchestrates
//! graceful shutdown, and the [`audit`] writer; session actors, hub, reminder scheduler and
//! mailer join them in later changes.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod ids;
pub mod lifecycle;

pub use lifecycle::{Lifecycle, LifecycleError, Register, Shutdown, ShutdownAll, ShutdownReason, ShutdownReport};
