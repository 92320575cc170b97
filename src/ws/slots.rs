//! The cap on unauthenticated sockets per source address: a socket takes a slot when it opens
//! and gives it back when it authenticates or closes, so one address cannot hold the server's
//! sockets open without signing in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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
