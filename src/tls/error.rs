//! Why the listener's TLS cannot be set up, and whether that is the operator's configuration
//! (exit code 2) or the machine (exit code 1).

use std::path::PathBuf;

use super::acme::AcmeError;

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
    /// The development certificate cannot be generated or stored (the machine failed us).
    #[error("cannot create the development certificate in the data directory")]
    DevCertificate(#[source] std::io::Error),
    /// ACME cannot start: its cache directory is unusable (the machine failed us) or
    /// `tls.acme.root_ca_file` is not a certificate (bad configuration).
    #[error(transparent)]
    Acme(#[from] AcmeError),
}

impl TlsError {
    /// True when the operator configured something unusable (exit code 2), false when the
    /// machine failed us (exit code 1).
    pub fn is_configuration(&self) -> bool {
        match self {
            TlsError::DevCertificate(_) => false,
            TlsError::Acme(error) => error.is_configuration(),
            _ => true,
        }
    }
}
