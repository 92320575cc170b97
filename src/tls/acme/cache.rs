//! What ACME keeps across restarts, in `tls.acme.cache_dir` (0700): the account key (one
//! account per CA directory) and the certificate with its key (one per CA directory and set of
//! domains), each file 0600. A restart serves the cached certificate and orders nothing until it
//! is due; changing the domains or the CA orders anew instead of serving a certificate for other
//! names.

use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::error::AcmeError;
use crate::settings::{AcmeDirectory, AcmeDomain};
use crate::tls::key_files::{self, PRIVATE};

/// A certificate chain (leaf first) and its private key, as issued.
pub struct Issued {
    /// The chain, PEM.
    pub chain_pem: String,
    /// The private key, PEM (PKCS#8). Zeroized when dropped.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl Issued {
    /// The chain and key in the forms rustls takes.
    pub fn parts(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the chain is not PEM: {e}"))?;
        if chain.is_empty() {
            return Err("the chain holds no certificate".into());
        }
        // The reason never echoes key material.
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| format!("the key is not PEM: {e}"))?;
        Ok((chain, key))
    }
}

/// The cache directory and the names of this configuration's files in it.
pub struct AcmeCache {
    dir: PathBuf,
    account: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl AcmeCache {
    /// The cache of `directory` and `domains` in `dir`, created (0700) if missing.
    pub fn open(dir: PathBuf, directory: &AcmeDirectory, domains: &[AcmeDomain]) -> Result<Self, AcmeError> {
        key_files::private_dir(&dir).map_err(|source| AcmeError::Cache { path: dir.clone(), source })?;
        let ca = short_hash([directory.as_str()]);
        let mut names: Vec<&str> = domains.iter().map(AcmeDomain::as_str).collect();
        names.sort_unstable();
        let certificate = short_hash(std::iter::once(directory.as_str()).chain(names));
        Ok(Self {
            account: dir.join(format!("account-{ca}.json")),
            cert: dir.join(format!("cert-{certificate}.pem")),
            key: dir.join(format!("key-{certificate}.pem")),
            dir,
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The account registered with this CA, if any.
    pub fn load_account(&self) -> Result<Option<AccountCredentials>, AcmeError> {
        let Some(text) = read_if_present(&self.account)? else { return Ok(None) };
        let fail = |e: serde_json::Error| AcmeError::Cache {
            path: self.account.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        };
        serde_json::from_str(&text).map(Some).map_err(fail)
    }

    /// Keeps the account (its private key included), 0600.
    pub fn save_account(&self, credentials: &AccountCredentials) -> Result<(), AcmeError> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(credentials).map_err(|e| AcmeError::Cache {
            path: self.account.clone(),
            source: std::io::Error::other(e.to_string()),
        })?);
        key_files::write_whole(&self.account, &json, PRIVATE)
            .map_err(|source| AcmeError::Cache { path: self.account.clone(), source })
    }

    /// Forgets the account (the CA no longer knows it): the next order registers a new one.
    pub fn forget_account(&self) -> Result<(), AcmeError> {
        match std::fs::remove_file(&self.account) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(AcmeError::Cache { path: self.account.clone(), source: e })
            }
            _ => Ok(()),
        }
    }

    /// The certificate last issued for this configuration, if any.
    pub fn load_certificate(&self) -> Result<Option<Issued>, AcmeError> {
        let (Some(chain_pem), Some(key_pem)) = (read_if_present(&self.cert)?, read_if_present(&self.key)?) else {
            return Ok(None);
        };
        Ok(Some(Issued { chain_pem, key_pem: zeroize::Zeroizing::new(key_pem) }))
    }

    /// Keeps a new certificate: the key first, then the chain, both 0600 (a crash in between
    /// leaves a pair that does not match, which is treated as no certificate).
    pub fn save_certificate(&self, issued: &Issued) -> Result<(), AcmeError> {
        key_files::write_whole(&self.key, issued.key_pem.as_bytes(), PRIVATE)
            .map_err(|source| AcmeError::Cache { path: self.key.clone(), source })?;
        key_files::write_whole(&self.cert, issued.chain_pem.as_bytes(), PRIVATE)
            .map_err(|source| AcmeError::Cache { path: self.cert.clone(), source })
    }
}

/// The file's text, or `None` when it does not exist.
fn read_if_present(path: &Path) -> Result<Option<String>, AcmeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AcmeError::Cache { path: path.to_owned(), source }),
    }
}

/// 16 hex digits of the SHA-256 of the parts, each ended by a newline.
fn short_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn domains(names: &[&str]) -> Vec<AcmeDomain> {
        names.iter().map(|n| AcmeDomain::try_from((*n).to_owned()).unwrap()).collect()
    }

    fn issued() -> Issued {
        let made = rcgen::generate_simple_self_signed(vec!["portal.example.org".to_owned()]).unwrap();
        Issued { chain_pem: made.cert.pem(), key_pem: zeroize::Zeroizing::new(made.signing_key.serialize_pem()) }
    }

    #[test]
    fn a_saved_certificate_is_found_again_and_readable_by_its_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("acme");
        let directory = AcmeDirectory::default();
        let cache = AcmeCache::open(dir.clone(), &directory, &domains(&["a.example.org", "b.example.org"])).unwrap();
        assert!(cache.load_certificate().unwrap().is_none());

        cache.save_certificate(&issued()).unwrap();

        let reopened = AcmeCache::open(dir.clone(), &directory, &domains(&["b.example.org", "a.example.org"])).unwrap();
        let found = reopened.load_certificate().unwrap().unwrap();
        assert!(found.parts().is_ok());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for entry in std::fs::read_dir(&dir).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn other_domains_or_another_ca_do_not_reuse_the_certificate() {
        let root = tempfile::tempdir().unwrap();
        let directory = AcmeDirectory::default();
        let cache = AcmeCache::open(root.path().to_owned(), &directory, &domains(&["a.example.org"])).unwrap();
        cache.save_certificate(&issued()).unwrap();

        let more = AcmeCache::open(root.path().to_owned(), &directory, &domains(&["a.example.org", "b.example.org"]));
        let staging = AcmeDirectory::try_from(crate::settings::LETS_ENCRYPT_STAGING.to_owned()).unwrap();
        let other_ca = AcmeCache::open(root.path().to_owned(), &staging, &domains(&["a.example.org"]));

        assert!(more.unwrap().load_certificate().unwrap().is_none());
        assert!(other_ca.unwrap().load_certificate().unwrap().is_none());
    }
}
