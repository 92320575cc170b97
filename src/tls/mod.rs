//! The listener's TLS configuration (rustls with the `ring` provider). TLS 1.3 only unless
//! `tls.min_version = "1.2"`; rustls cannot speak anything older, so nothing older is possible.

mod dev_cert;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use dev_cert::{DevCertificate, ensure_dev_certificate};

use crate::settings::{Settings, TlsVersion};

/// Why the listener's TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The configured certificate file cannot be read or holds no certificate (bad configuration).
    #[error("`tls.cert`: cannot load a certificate chain from {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The configured key file cannot be read or holds no private key (bad configuration).
    #[error("`tls.key`: cannot load a private key from {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair, typically because the key does not match the certificate.
    #[error("`tls.cert`/`tls.key` are not a usable pair: {0}")]
    Unusable(#[source] rustls::Error),
    /// The development certificate cannot be generated or stored.
    #[error("cannot create the development certificate in the data directory")]
    DevCertificate(#[source] std::io::Error),
}

impl TlsError {
    /// True when the operator configured something unusable (exit code 2), false when the
    /// machine failed us (exit code 1).
    pub fn is_configuration(&self) -> bool {
        !matches!(self, TlsError::DevCertificate(_))
    }
}

/// Builds the listener's rustls configuration from the configured certificate, or from the
/// development certificate (generated on first run) when none is configured.
pub fn server_config(settings: &Settings) -> Result<ServerConfig, TlsError> {
    let (cert_path, key_path) = match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        // Settings guarantee cert and key come together; anything else means "not configured".
        _ => {
            let dev = ensure_dev_certificate(&settings.data_dir).map_err(TlsError::DevCertificate)?;
            (dev.cert_path, dev.key_path)
        }
    };
    let chain = load_chain(&cert_path)?;
    let key = load_key(&key_path)?;
    build(chain, key, settings.tls.min_version)
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

fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    min: TlsVersion,
) -> Result<ServerConfig, TlsError> {
    ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(protocol_versions(min))
        .map_err(TlsError::Unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Unusable)
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::Certificate { path: path.to_owned(), reason };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if chain.is_empty() {
        return Err(fail("no PEM certificate in the file".into()));
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    // The reason names the file and the PEM problem only: key material is never echoed.
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (cert_a, key_b) = (ensure_dev_certificate(a.path()).unwrap(), ensure_dev_certificate(b.path()).unwrap());

        let result =
            build(load_chain(&cert_a.cert_path).unwrap(), load_key(&key_b.key_path).unwrap(), TlsVersion::Tls13);

        assert!(matches!(result, Err(TlsError::Unusable(_))));
    }

    #[test]
    fn a_file_without_pem_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();

        let error = load_chain(&junk).unwrap_err();

        assert!(error.is_configuration());
        assert!(error.to_string().contains("tls.cert"));
    }
}
