//! Confidant's actor layer. Actors here know nothing of HTTP, SQL or sockets: they declare the
//! ports they need (such as [`audit::AuditSink`]) and the root crate (`confidant`) implements
//! them, so every actor can be tested alone under `#[actix::test]`.
//!
//! The crate holds the identifier types, the [`lifecycle`] actor that orchestrates graceful
//! shutdown, the [`audit`] writer, the [`session`] actor (one per WebSocket connection) and the
//! [`hub`] that fans out to sessions. The reminder scheduler and mailer live in the root crate
//! (`src/reminders/`): they are thin over lettre and sqlx and are tested in-process there.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod hub;
pub mod ids;
pub mod lifecycle;
pub mod session;

pub use lifecycle::{Lifecycle, LifecycleError, Register, Shutdown, ShutdownAll, ShutdownReason, ShutdownReport};
