//! A self-signed certificate for `localhost` and `127.0.0.1`, so a fresh checkout serves HTTPS
//! with no set-up. Generated into `<data_dir>/tls/` on first run and reused afterwards; its
//! SHA-256 fingerprint is logged so a developer can pin or trust it. Never for production:
//! configure `tls.cert` and `tls.key` there.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// Names the certificate covers.
const SUBJECT_ALT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The development certificate on disk.
#[derive(Debug, Clone)]
pub struct DevCertificate {
    /// PEM certificate.
    pub cert_path: PathBuf,
    /// PEM private key, mode 0600.
    pub key_path: PathBuf,
    /// SHA-256 of the DER certificate, colon-separated upper-case hex.
    pub fingerprint: String,
    /// True when this call created it.
    pub generated: bool,
}

/// Returns the development certificate in `data_dir`, generating it if it does not exist yet.
/// Logs one line either way, with its path and fingerprint.
pub fn ensure_dev_certificate(data_dir: &Path) -> std::io::Result<DevCertificate> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("dev-cert.pem");
    let key_path = dir.join("dev-key.pem");
    let generated = !(cert_path.is_file() && key_path.is_file());
    if generated {
        generate(&dir, &cert_path, &key_path)?;
    }
    let der = CertificateDer::from_pem_file(&cert_path).map_err(|e| std::io::Error::other(e.to_string()))?;
    let fingerprint = fingerprint(&der);
    if generated {
        tracing::warn!(path = %cert_path.display(), sha256 = %fingerprint, "generated a self-signed development certificate; configure tls.cert and tls.key for production");
    } else {
        tracing::info!(path = %cert_path.display(), sha256 = %fingerprint, "using the self-signed development certificate");
    }
    Ok(DevCertificate { cert_path, key_path, fingerprint, generated })
}

fn generate(dir: &Path, cert_path: &Path, key_path: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let names: Vec<String> = SUBJECT_ALT_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    // Key first, then certificate: a crash in between leaves no certificate, so the next start
    // generates a fresh pair instead of pairing a certificate with a missing key.
    write_new(key_path, certified.key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert_path, certified.cert.pem().as_bytes(), 0o644)
}

/// Writes through a temporary file and renames, so a reader never sees half a file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// SHA-256 fingerprint in the `AA:BB:...` form browsers and `openssl x509 -fingerprint` show.
pub fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();

        let first = ensure_dev_certificate(dir.path()).unwrap();
        let second = ensure_dev_certificate(dir.path()).unwrap();

        assert!(first.generated && !second.generated);
        assert_eq!(first.fingerprint, second.fingerprint);
    }

    #[test]
    fn the_private_key_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let cert = ensure_dev_certificate(dir.path()).unwrap();
        let mode = fs::metadata(&cert.key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
