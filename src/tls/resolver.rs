//! What the listener presents in each handshake: the current certificate, which renewal swaps
//! in place (new connections get the new one, no restart, open connections keep theirs), and,
//! while an ACME order is being validated, the TLS-ALPN-01 challenge certificates (RFC 8737),
//! shown only to a client that asks for `acme-tls/1` alone.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737, section 6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The listener's certificate holder, shared by every worker's rustls configuration.
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
    /// Challenge certificates by (lower-case) domain.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertResolver {
    /// Starts by presenting `current`.
    pub fn new(current: Arc<CertifiedKey>) -> Self {
        Self { current: RwLock::new(current), challenges: RwLock::default() }
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Presents `next` from the next handshake on.
    pub fn replace(&self, next: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Presents `certificate` to TLS-ALPN-01 validators of `domain` until it is withdrawn.
    pub fn add_challenge(&self, domain: &str, certificate: Arc<CertifiedKey>) {
        self.challenges
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(domain.to_ascii_lowercase(), certificate);
    }

    /// Withdraws the challenge certificate of `domain`.
    pub fn remove_challenge(&self, domain: &str) {
        self.challenges.write().unwrap_or_else(PoisonError::into_inner).remove(&domain.to_ascii_lowercase());
    }

    /// The certificate for a handshake: a validator (offering `acme-tls/1` and nothing else)
    /// gets the challenge certificate of the name it asks for, or none, which ends its
    /// handshake; everyone else gets the current certificate, whatever name they ask for.
    fn choose(&self, server_name: Option<&str>, alpn: Option<Vec<&[u8]>>) -> Option<Arc<CertifiedKey>> {
        let validator = alpn.is_some_and(|protocols| protocols == [ACME_TLS_ALPN]);
        if !validator {
            return Some(self.current());
        }
        let name = server_name?.to_ascii_lowercase();
        let found = self.challenges.read().unwrap_or_else(PoisonError::into_inner).get(&name).cloned();
        if found.is_none() {
            tracing::debug!(server_name = %name, "a TLS-ALPN-01 validator asked for a name with no challenge pending");
        }
        found
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name(), client_hello.alpn().map(Iterator::collect))
    }
}

/// Says how many challenges are pending; never prints keys.
impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.challenges.read().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("CertResolver").field("pending_challenges", &pending).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certified(name: &str) -> Arc<CertifiedKey> {
        let issued = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let key = rustls_pki_types::PrivateKeyDer::try_from(issued.signing_key.serialize_der()).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(CertifiedKey::from_der(vec![issued.cert.der().clone()], key, &provider).unwrap())
    }

    #[test]
    fn a_replaced_certificate_is_presented_from_the_next_handshake() {
        let (first, second) = (certified("localhost"), certified("localhost"));
        let resolver = CertResolver::new(first.clone());
        let chosen = resolver.choose(Some("localhost"), Some(vec![b"h2"])).unwrap();
        assert!(Arc::ptr_eq(&chosen, &first));

        resolver.replace(second.clone());

        assert!(Arc::ptr_eq(&resolver.choose(Some("localhost"), None).unwrap(), &second));
    }

    #[test]
    fn only_a_validator_asking_for_acme_tls_alone_sees_the_challenge_certificate() {
        let (current, challenge) = (certified("portal.example.org"), certified("portal.example.org"));
        let resolver = CertResolver::new(current.clone());
        resolver.add_challenge("Portal.Example.org", challenge.clone());

        let validator = resolver.choose(Some("portal.example.org"), Some(vec![ACME_TLS_ALPN]));
        let browser = resolver.choose(Some("portal.example.org"), Some(vec![b"h2", ACME_TLS_ALPN]));
        let other_name = resolver.choose(Some("other.example.org"), Some(vec![ACME_TLS_ALPN]));

        assert!(Arc::ptr_eq(&validator.unwrap(), &challenge));
        assert!(Arc::ptr_eq(&browser.unwrap(), &current));
        assert!(other_name.is_none(), "a validator never gets the real certificate");

        resolver.remove_challenge("portal.example.org");
        assert!(resolver.choose(Some("portal.example.org"), Some(vec![ACME_TLS_ALPN])).is_none());
    }
}
