//! The WebSocket transport (docs/PROTOCOL.md), the only code that knows actix-web-actors
//! (deprecated upstream in favour of actix-ws; kept here so a move touches one folder).
//! `handshake.rs` checks the upgrade request, `transport.rs` is the per-connection actor that
//! authenticates and then relays frames to its `SessionActor`, and `ports.rs` gives session
//! actors storage, permissions and audit.

mod handshake;
mod intake;
pub mod messaging;
mod ports;
mod schedule;
pub mod sweep;
mod transport;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

pub use ports::ServerPorts;

/// Registers `/ws`, with the node's one count of unauthenticated sockets per address.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig, slots: &actix_web::web::Data<Unauthenticated>) {
    cfg.app_data(slots.clone()).service(handshake::connect);
}

/// Unauthenticated sockets per source address: opening one takes a slot, authenticating or
/// closing gives it back.
#[derive(Debug, Default)]
pub struct Unauthenticated(Mutex<HashMap<IpAddr, usize>>);

impl Unauthenticated {
    /// Takes a slot for `ip` unless it already holds `max`.
    pub fn acquire(&self, ip: IpAddr, max: usize) -> bool {
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives a slot back.
    pub fn release(&self, ip: IpAddr) {
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_address_and_given_back() {
        let slots = Unauthenticated::default();
        let (a, b): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])), IpAddr::from([10, 0, 0, 2]));
        assert!(slots.acquire(a, 2) && slots.acquire(a, 2));
        assert!(!slots.acquire(a, 2));
        assert!(slots.acquire(b, 2), "another address has its own slots");
        slots.release(a);
        assert!(slots.acquire(a, 2));
    }
}
