//! The WebSocket transport (docs/PROTOCOL.md), the only code that knows actix-web-actors
//! (deprecated upstream in favour of actix-ws; kept here so a move touches one folder).
//! `handshake.rs` checks the upgrade request, `transport.rs` is the per-connection actor that
//! authenticates and then relays frames to its `SessionActor`, and `ports.rs` gives session
//! actors storage, permissions and audit.

mod alerts;
mod caller;
mod handshake;
mod intake;
pub mod messaging;
mod notes;
mod ports;
mod push_records;
mod schedule;
mod slots;
pub mod sweep;
mod transport;

pub use ports::ServerPorts;
pub use push_records::PushRecords;
pub use slots::Unauthenticated;

/// Registers `/ws`, with the node's one count of unauthenticated sockets per address (any other
/// method there is 405).
pub fn routes(cfg: &mut actix_web::web::ServiceConfig, slots: &actix_web::web::Data<Unauthenticated>) {
    cfg.app_data(slots.clone()).service(handshake::connect).service(crate::web::methods::not_allowed(["/ws"]));
}
