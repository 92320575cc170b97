//! The TLS-ALPN-01 challenge certificate (RFC 8737, section 3): self-signed, for the one domain
//! being validated, carrying the SHA-256 of the key authorization in a critical `acmeIdentifier`
//! extension. A fresh key each time; never stored.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::PrivateKeyDer;

use super::error::AcmeError;

/// The challenge certificate for `domain` proving the key authorization whose SHA-256 is
/// `digest`.
pub fn certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, AcmeError> {
    let fail = |source| AcmeError::Generate { what: "a TLS-ALPN-01 certificate", source };
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(fail)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(fail)?;
    let der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|_| AcmeError::Unusable("the challenge key is not PKCS#8".into()))?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension. The pair was made together just above.
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Unusable(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)))
}

#[cfg(test)]
mod tests {
    use x509_cert::der::{Decode, Encode};

    use super::*;

    /// id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31.
    const ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

    #[test]
    fn the_certificate_names_the_domain_alone_and_carries_the_digest_in_a_critical_extension() {
        let digest = [7u8; 32];

        let certified = certificate("portal.example.org", &digest).unwrap();

        let cert = x509_cert::Certificate::from_der(certified.cert[0].as_ref()).unwrap();
        let extensions = cert.tbs_certificate.extensions.unwrap();
        let acme = extensions.iter().find(|e| e.extn_id.to_string() == ACME_IDENTIFIER).unwrap();
        assert!(acme.critical);
        // The extension's value is an OCTET STRING holding the digest.
        let value = x509_cert::der::asn1::OctetString::from_der(acme.extn_value.as_bytes()).unwrap();
        assert_eq!(value.as_bytes(), digest);
        let san = extensions.iter().find(|e| e.extn_id.to_string() == "2.5.29.17").unwrap();
        let names = x509_cert::ext::pkix::SubjectAltName::from_der(san.extn_value.as_bytes()).unwrap();
        assert_eq!(names.0.len(), 1);
        assert!(san.to_der().unwrap().windows(18).any(|w| w == b"portal.example.org"));
    }
}
