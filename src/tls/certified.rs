//! A certificate chain and its private key, read from PEM files and checked to belong together:
//! what the listener presents (`rustls::sign::CertifiedKey`, over the `ring` provider).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::TlsError;

/// A certificate chain and its key from PEM files, checked to belong together.
pub fn certified_key(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    certified(load_chain(cert_path)?, load_key(key_path)?)
}

/// A chain and its key, checked to belong together.
fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Arc<CertifiedKey>, TlsError> {
    CertifiedKey::from_der(chain, key, &ring::default_provider()).map(Arc::new).map_err(TlsError::Unusable)
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
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap(),
            rcgen::KeyPair::generate().unwrap(),
        );
        let (cert_a, key_b) = (dir.path().join("a.pem"), dir.path().join("b.key"));
        std::fs::write(&cert_a, a.cert.pem()).unwrap();
        std::fs::write(&key_b, b.serialize_pem()).unwrap();

        let result = certified_key(&cert_a, &key_b);

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
