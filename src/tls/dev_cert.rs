//! The development certificate: self-signed for `localhost`, `127.0.0.1` and `::1`, so a fresh
//! checkout serves HTTPS with no set-up, and named for what it is in its subject and issuer. It
//! lives in `<data_dir>/tls/` (clients trust `dev-cert.pem`), is valid for [`LIFETIME`], and is
//! re-issued when [`RENEW_WITHIN`] or less is left: at start-up, and hourly while the node runs
//! ([`DevRenewal`]), swapped into the listener without a restart. Re-issuing keeps the key, so a
//! client that pins the public key keeps working; one that pins the certificate's fingerprint
//! must take the new one (it is logged). Never for production: configure `tls.acme`, or
//! `tls.cert` and `tls.key`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use confidant_actors::clock::Clock;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use super::certified::certified_key;
use super::error::TlsError;
use super::key_files::{self, PRIVATE};
use super::resolver::CertResolver;
use super::validity::Validity;

/// Names the certificate covers.
const SUBJECT_ALT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Its common name (subject and issuer): what `openssl x509 -subject`, testssl and a browser's
/// certificate viewer show.
pub const DEVELOPMENT_MARK: &str = "Confidant development certificate - not for production";

/// Its organization.
const ORGANIZATION: &str = "Confidant (development only)";

/// How long a development certificate is valid: 30 days. Well under the 90 days of public ACME
/// certificates, so a copied development key is worthless within weeks and the certificate
/// reads as a short-lived stand-in; long enough that a laptop left off for a fortnight starts
/// with a certificate that is still valid (and it is renewed at start-up anyway).
pub const LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Re-issued when this little of its life is left: the last third, as for ACME certificates.
pub const RENEW_WITHIN: Duration = Duration::from_secs(10 * 24 * 3600);

/// How often a running node looks at its development certificate.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Certificates back-dated this much, so a client whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What [`ensure_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuance {
    /// No certificate (or no usable key) was there: a new key and certificate were made.
    Generated,
    /// The certificate was due (or not ours: older versions made one for 2,700 years) and was
    /// re-issued with the same key.
    Renewed,
    /// The certificate on disk is current and was kept.
    Reused,
}

/// The development certificate on disk.
#[derive(Debug, Clone)]
pub struct DevCertificate {
    /// PEM certificate.
    pub cert_path: PathBuf,
    /// PEM private key, mode 0600.
    pub key_path: PathBuf,
    /// SHA-256 of the DER certificate, colon-separated upper-case hex.
    pub fingerprint: String,
    /// Its validity.
    pub validity: Validity,
    /// What this call did.
    pub issuance: Issuance,
}

/// Returns the development certificate in `data_dir`, made or re-issued as needed at the
/// system's time, and logs it.
pub fn ensure_dev_certificate(data_dir: &Path) -> std::io::Result<DevCertificate> {
    ensure_at(data_dir, confidant_actors::clock::now_ms())
}

/// Returns the development certificate in `data_dir` as it must be at `now_ms`: generated if
/// missing, re-issued (same key) if due, else as it is. Logs one line saying it is a development
/// certificate, with its path, fingerprint and expiry.
pub fn ensure_at(data_dir: &Path, now_ms: i64) -> std::io::Result<DevCertificate> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("dev-cert.pem");
    let key_path = dir.join("dev-key.pem");
    let existing_key = std::fs::read_to_string(&key_path).ok().and_then(|pem| rcgen::KeyPair::from_pem(&pem).ok());
    let existing_cert = CertificateDer::from_pem_file(&cert_path).ok();
    // The certificate on disk counts only if it is for the key on disk.
    let current = existing_cert
        .as_ref()
        .filter(|der| existing_key.as_ref().is_some_and(|key| certifies(der, key)))
        .and_then(|der| Validity::of(der).ok());
    let issuance = match (&existing_key, &current) {
        (Some(_), Some(validity)) if !is_due(validity, now_ms) => Issuance::Reused,
        (Some(_), _) => Issuance::Renewed,
        (None, _) => Issuance::Generated,
    };
    if issuance != Issuance::Reused {
        key_files::private_dir(&dir)?;
        let key = match existing_key {
            Some(key) => key,
            None => {
                let key = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
                // Key first, then certificate: a crash in between leaves a certificate that does
                // not match, which the next start finds unusable and replaces.
                key_files::write_whole(&key_path, key.serialize_pem().as_bytes(), PRIVATE)?;
                key
            }
        };
        let cert = issue(&key, now_ms).map_err(std::io::Error::other)?;
        key_files::write_whole(&cert_path, cert.pem().as_bytes(), PRIVATE)?;
    }
    let der = CertificateDer::from_pem_file(&cert_path).map_err(|e| std::io::Error::other(e.to_string()))?;
    let validity = Validity::of(&der).map_err(std::io::Error::other)?;
    let fingerprint = fingerprint(&der);
    let (path, expires_at) = (cert_path.display(), validity.expires_at());
    match issuance {
        Issuance::Generated => {
            tracing::warn!(path = %path, sha256 = %fingerprint, expires_at = %expires_at, "generated a self-signed development certificate; configure tls.acme, or tls.cert and tls.key, for production")
        }
        Issuance::Renewed => {
            tracing::warn!(path = %path, sha256 = %fingerprint, expires_at = %expires_at, "renewed the self-signed development certificate with the same key; configure tls.acme, or tls.cert and tls.key, for production")
        }
        Issuance::Reused => {
            tracing::warn!(path = %path, sha256 = %fingerprint, expires_at = %expires_at, "using the self-signed development certificate; configure tls.acme, or tls.cert and tls.key, for production")
        }
    }
    Ok(DevCertificate { cert_path, key_path, fingerprint, validity, issuance })
}

/// Whether a certificate must be re-issued at `now_ms`: inside the renewal window or expired,
/// not yet valid, longer-lived than ours (made by an older version), or not marked as ours.
pub fn is_due(validity: &Validity, now_ms: i64) -> bool {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let remaining = validity.not_after_ms.saturating_sub(now_ms);
    remaining <= ms(RENEW_WITHIN)
        || validity.not_before_ms > now_ms
        || validity.lifetime_ms() > ms(LIFETIME + BACKDATE)
        || !validity.subject.contains(DEVELOPMENT_MARK)
}

/// Whether `cert` is for `key` (a crash between writing a new key and its certificate leaves a
/// pair that is not).
fn certifies(cert: &CertificateDer<'_>, key: &rcgen::KeyPair) -> bool {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(cert.as_ref())
        .is_ok_and(|c| c.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes() == key.public_key_raw())
}

/// A certificate for `key`, valid from shortly before `now_ms` until [`LIFETIME`] after it.
fn issue(key: &rcgen::KeyPair, now_ms: i64) -> Result<rcgen::Certificate, rcgen::Error> {
    let names: Vec<String> = SUBJECT_ALT_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, DEVELOPMENT_MARK);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, ORGANIZATION);
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)).map_err(|_| rcgen::Error::Time)?;
    params.not_before = now - BACKDATE;
    params.not_after = now + LIFETIME;
    params.self_signed(key)
}

/// SHA-256 fingerprint in the `AA:BB:...` form browsers and `openssl x509 -fingerprint` show.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Keeps a running node's development certificate current: every [`CHECK_EVERY`] it re-issues
/// the certificate if it is due and swaps it into the listener.
pub struct DevRenewal {
    data_dir: PathBuf,
    resolver: Arc<CertResolver>,
    clock: Arc<dyn Clock>,
    current: Validity,
}

impl DevRenewal {
    /// Watches the certificate `current`, which `resolver` presents.
    pub fn new(data_dir: PathBuf, resolver: Arc<CertResolver>, clock: Arc<dyn Clock>, current: Validity) -> Self {
        Self { data_dir, resolver, clock, current }
    }

    /// One look: re-issues and installs the certificate if it is due. True when it did.
    pub fn tick(&mut self) -> Result<bool, TlsError> {
        let now = self.clock.now_ms();
        if !is_due(&self.current, now) {
            return Ok(false);
        }
        let dev = ensure_at(&self.data_dir, now).map_err(TlsError::DevCertificate)?;
        let certified = certified_key(&dev.cert_path, &dev.key_path)?;
        self.resolver.replace(certified);
        self.current = dev.validity;
        Ok(true)
    }

    /// Looks every [`CHECK_EVERY`] on the current (actix) runtime, for as long as it runs.
    pub fn spawn(mut self) {
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                if let Err(error) = self.tick() {
                    tracing::error!(%error, "could not renew the development certificate; retrying in an hour");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use confidant_actors::clock::ManualClock;

    use super::*;

    const DAY_MS: i64 = 86_400_000;
    const NOW: i64 = 1_800_000_000_000;

    fn spki(path: &Path) -> Vec<u8> {
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
        key.public_key_raw().to_vec()
    }

    #[test]
    fn the_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();

        let first = ensure_at(dir.path(), NOW).unwrap();
        let second = ensure_at(dir.path(), NOW + DAY_MS).unwrap();

        assert_eq!((first.issuance, second.issuance), (Issuance::Generated, Issuance::Reused));
        assert_eq!(first.fingerprint, second.fingerprint);
    }

    #[test]
    fn it_is_short_lived_and_says_it_is_for_development() {
        let dir = tempfile::tempdir().unwrap();

        let dev = ensure_at(dir.path(), NOW).unwrap();

        assert!(dev.validity.lifetime_ms() <= 31 * DAY_MS, "{:?}", dev.validity);
        assert!(dev.validity.subject.contains(DEVELOPMENT_MARK), "{}", dev.validity.subject);
        assert!(dev.validity.is_valid_at(NOW) && dev.validity.not_after_ms >= NOW + 30 * DAY_MS);
    }

    #[test]
    fn inside_the_renewal_window_it_is_re_issued_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_at(dir.path(), NOW).unwrap();
        let key_before = spki(&first.key_path);

        let quiet = ensure_at(dir.path(), NOW + 19 * DAY_MS).unwrap();
        let renewed = ensure_at(dir.path(), NOW + 21 * DAY_MS).unwrap();

        assert_eq!(quiet.issuance, Issuance::Reused);
        assert_eq!(renewed.issuance, Issuance::Renewed);
        assert_ne!(renewed.fingerprint, first.fingerprint);
        assert_eq!(spki(&renewed.key_path), key_before);
        assert!(renewed.validity.not_after_ms >= NOW + 51 * DAY_MS);
    }

    #[test]
    fn a_long_lived_certificate_from_an_older_version_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_at(dir.path(), NOW).unwrap();
        let old = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(&first.cert_path, old.cert.pem()).unwrap();
        std::fs::write(&first.key_path, old.signing_key.serialize_pem()).unwrap();

        let replaced = ensure_at(dir.path(), NOW).unwrap();

        assert_eq!(replaced.issuance, Issuance::Renewed);
        assert!(replaced.validity.lifetime_ms() <= 31 * DAY_MS);
    }

    #[test]
    fn a_certificate_that_is_not_for_the_key_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_at(dir.path(), NOW).unwrap();
        std::fs::write(&first.key_path, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();

        let replaced = ensure_at(dir.path(), NOW).unwrap();

        assert_eq!(replaced.issuance, Issuance::Renewed);
        assert!(certified_key(&replaced.cert_path, &replaced.key_path).is_ok());
    }

    #[test]
    fn the_private_key_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let cert = ensure_at(dir.path(), NOW).unwrap();
        let mode = std::fs::metadata(&cert.key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_running_node_swaps_in_the_renewed_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_at(dir.path(), NOW).unwrap();
        let resolver = Arc::new(CertResolver::new(certified_key(&first.cert_path, &first.key_path).unwrap()));
        let clock = Arc::new(ManualClock::at(NOW));
        let mut renewal =
            DevRenewal::new(dir.path().to_owned(), resolver.clone(), clock.clone(), first.validity.clone());
        let served = |r: &CertResolver| r.current().cert[0].clone();
        let before = served(&resolver);

        clock.advance_ms(19 * DAY_MS);
        assert!(!renewal.tick().unwrap());
        assert_eq!(served(&resolver), before);

        clock.advance_ms(2 * DAY_MS);
        assert!(renewal.tick().unwrap());
        let after = served(&resolver);
        assert_ne!(after, before);
        assert_eq!(
            Validity::of(&after).unwrap().not_after_ms,
            Validity::of(&after).unwrap().not_before_ms + 30 * DAY_MS + 3_600_000
        );
        assert!(!renewal.tick().unwrap(), "the renewed certificate is not due again");
    }
}
