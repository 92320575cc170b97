//! The listener's TLS: its rustls configuration (the `ring` provider; TLS 1.3 only unless
//! `tls.min_version = "1.2"`, and rustls cannot speak anything older) and where its certificate
//! comes from, which decides what keeps it current:
//! - `tls.cert`/`tls.key`: served as configured; replacing it means a restart.
//! - `[tls.acme]`: obtained and renewed from an ACME CA by the node itself (`acme/`).
//! - neither: the development certificate (`dev_cert.rs`), re-issued before it expires.
//!
//! Every certificate is presented through one [`CertResolver`], so a renewal takes effect at the
//! next handshake without a restart.

mod acme;
mod certified;
mod dev_cert;
mod error;
mod key_files;
mod resolver;
mod validity;

use std::sync::Arc;

use confidant_actors::clock::Clock;
use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::sign::CertifiedKey;

pub use acme::{Acme, AcmeError};
pub use certified::certified_key;
pub use dev_cert::{DEVELOPMENT_MARK, DevCertificate, DevRenewal, Issuance, ensure_dev_certificate};
pub use error::TlsError;
pub use resolver::{ACME_TLS_ALPN, CertResolver};
pub use validity::Validity;

use crate::settings::{Settings, TlsVersion};

/// The listener's TLS, ready to bind: the rustls configuration and what keeps its certificate
/// current once the node serves.
pub struct ListenerTls {
    config: ServerConfig,
    keeper: Keeper,
}

/// What keeps the presented certificate current.
enum Keeper {
    /// A configured certificate: nothing (the operator replaces it and restarts).
    Configured,
    /// The development certificate, re-issued before it expires.
    Development(DevRenewal),
    /// ACME: obtains a certificate if there is none yet, renews it before it expires.
    Acme {
        /// The client.
        acme: Acme,
        /// What it installs certificates in.
        resolver: Arc<CertResolver>,
    },
}

impl ListenerTls {
    /// Loads (or makes) the certificate to present first. With ACME that is the cached
    /// certificate when one is valid, else the development certificate until the CA issues one:
    /// the listener must be up to answer the CA's TLS-ALPN-01 validation, so it cannot wait.
    pub fn prepare(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, TlsError> {
        let min = settings.tls.min_version;
        if let (Some(cert), Some(key)) = (&settings.tls.cert, &settings.tls.key) {
            // Settings guarantee cert and key come together and never with ACME.
            let resolver = Arc::new(CertResolver::new(certified_key(cert, key)?));
            return Ok(Self { config: build(resolver, min, false)?, keeper: Keeper::Configured });
        }
        if let Some(acme_settings) = &settings.tls.acme {
            let now = clock.now_ms();
            let placeholder = || -> Result<Arc<CertifiedKey>, TlsError> {
                let dev = dev_cert::ensure_at(&settings.data_dir, now).map_err(TlsError::DevCertificate)?;
                tracing::warn!(
                    expires_at = %dev.validity.expires_at(),
                    "no ACME certificate yet: serving the development certificate until the CA issues one"
                );
                certified_key(&dev.cert_path, &dev.key_path)
            };
            let mut acme = Acme::new(acme_settings, settings.acme_cache_dir(), clock)?;
            let first = match acme.load_cached() {
                Some(certified) => certified,
                None => placeholder()?,
            };
            let resolver = Arc::new(CertResolver::new(first));
            let config = build(resolver.clone(), min, true)?;
            return Ok(Self { config, keeper: Keeper::Acme { acme, resolver } });
        }
        let dev = dev_cert::ensure_at(&settings.data_dir, clock.now_ms()).map_err(TlsError::DevCertificate)?;
        let resolver = Arc::new(CertResolver::new(certified_key(&dev.cert_path, &dev.key_path)?));
        let renewal = DevRenewal::new(settings.data_dir.clone(), resolver.clone(), clock, dev.validity);
        Ok(Self { config: build(resolver, min, false)?, keeper: Keeper::Development(renewal) })
    }

    /// The rustls configuration to bind the listener with.
    pub fn server_config(&self) -> ServerConfig {
        self.config.clone()
    }

    /// Starts keeping the certificate current, on the current (actix) runtime. Call once the
    /// listener is bound: ACME's validation connects to it.
    pub fn keep_current(self) {
        match self.keeper {
            Keeper::Configured => {}
            Keeper::Development(renewal) => renewal.spawn(),
            Keeper::Acme { acme, resolver } => acme.spawn(resolver),
        }
    }
}

/// The protocol versions a minimum version allows, newest first.
pub fn protocol_versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static TLS13_AND_12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    match min {
        TlsVersion::Tls13 => TLS13_ONLY,
        TlsVersion::Tls12 => TLS13_AND_12,
    }
}

/// The server configuration over `resolver`. With `acme_validation`, `acme-tls/1` is offered
/// too (after actix-web's `h2` and `http/1.1`, which it puts first), so the CA's validator can
/// reach the challenge certificate.
fn build(resolver: Arc<CertResolver>, min: TlsVersion, acme_validation: bool) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(protocol_versions(min))
        .map_err(TlsError::Unusable)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    if acme_validation {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_tls_is_offered_only_when_acme_validates_through_the_listener() {
        let dir = tempfile::tempdir().unwrap();
        let dev = ensure_dev_certificate(dir.path()).unwrap();
        let resolver = || Arc::new(CertResolver::new(certified_key(&dev.cert_path, &dev.key_path).unwrap()));

        let plain = build(resolver(), TlsVersion::Tls13, false).unwrap();
        let acme = build(resolver(), TlsVersion::Tls13, true).unwrap();

        assert!(plain.alpn_protocols.is_empty());
        assert_eq!(acme.alpn_protocols, vec![ACME_TLS_ALPN.to_vec()]);
    }
}
