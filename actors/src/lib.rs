//! Confidant's actor layer. Actors here know nothing of HTTP, SQL or sockets: they declare the
//! ports they need and the root crate (`confidant`) implements them, so every actor can be tested
//! alone under `#[actix::test]`.
//!
//! Today the crate holds the [`lifecycle`] actor that orchestrates graceful shutdown; the session
//! actors, hub, audit writer, reminder scheduler and mailer join it in later changes.
#![forbid(unsafe_code)]

pub mod lifecycle;

pub use lifecycle::{Lifecycle, LifecycleError, Register, Shutdown, ShutdownAll, ShutdownReason, ShutdownReport};
