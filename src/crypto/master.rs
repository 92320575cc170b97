//! The master key (key-encryption key): where it comes from, and wrapping data keys with it.
//! The master key never touches the database; only a fingerprint of it is stored beside each
//! wrapped data key, so that a wrong master key is reported as such rather than as garbage.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::KeyError;
use super::envelope::nonce_of;
use super::secret::KeyBytes;
use crate::audit::checkpoint::to_hex;
use crate::settings::Settings;

const WRAP_LABEL: &[u8] = b"confidant-data-key-v1";
const NONCE: usize = 12;

/// What a data key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sealing field values (AES-256-GCM).
    Field,
    /// Blind indexes (HMAC-SHA-256). Not rotated by `keys rotate`: every index would change.
    Index,
}

impl Purpose {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Field => "field",
            Purpose::Index => "index",
        }
    }

    /// Parses the stored text.
    pub(super) fn parse(text: &str) -> Option<Self> {
        [Purpose::Field, Purpose::Index].into_iter().find(|p| p.as_str() == text)
    }
}

/// The key-encryption key.
pub struct MasterKey {
    key: KeyBytes,
    fingerprint: String,
}

/// Where the master key came from (for the start-up log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `master_key` (`CONFIDANT_MASTER_KEY`, `CONFIDANT_MASTER_KEY_FILE` or a config file).
    Setting,
    /// `keys.master_key_file`.
    File(PathBuf),
    /// The generated file of the embedded default.
    Generated(PathBuf),
}

impl MasterKey {
    /// A master key from its base64 text (32 bytes); `source_name` names where it came from in
    /// the error, never the value.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let malformed = || KeyError::MasterKeyMalformed { source_name: source_name.to_owned() };
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| malformed())?);
        Ok(Self::from_key(KeyBytes::from_slice(&bytes).ok_or_else(malformed)?))
    }

    /// A master key from raw key material.
    pub fn from_key(key: KeyBytes) -> Self {
        let mut mac =
            <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable_any_length());
        mac.update(b"confidant-master-key-fingerprint-v1");
        let fingerprint = format!("mk-{}", to_hex(&mac.finalize().into_bytes()[..8]));
        Self { key, fingerprint }
    }

    /// A new random master key.
    pub fn generate() -> Self {
        Self::from_key(KeyBytes::random())
    }

    /// The key as base64, to hand to an operator once.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.expose()))
    }

    /// A public name of this key (`mk-` and 16 hex digits of an HMAC under it): stored with
    /// each wrapped data key and shown in errors. Reveals nothing about the key.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Wraps a data key: `nonce (12) | AES-256-GCM(data key) | tag (16)`, with the key's id
    /// and purpose as AAD so a wrapped key cannot be passed off as another.
    pub fn wrap(&self, key_id: u32, purpose: Purpose, data_key: &KeyBytes) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = wrap_aad(key_id, purpose);
        let cipher = Aes256Gcm::new(self.key.expose().into());
        let mut out = nonce.to_vec();
        match cipher.encrypt(&nonce, Payload { msg: data_key.expose(), aad: &aad }) {
            Ok(sealed) => out.extend_from_slice(&sealed),
            Err(_) => unreachable_any_length(),
        }
        out
    }

    /// Unwraps a data key, or `None` when this master key did not wrap it (or it was altered).
    pub fn unwrap(&self, key_id: u32, purpose: Purpose, wrapped: &[u8]) -> Option<KeyBytes> {
        if wrapped.len() < NONCE {
            return None;
        }
        let (nonce, sealed) = wrapped.split_at(NONCE);
        let cipher = Aes256Gcm::new(self.key.expose().into());
        let aad = wrap_aad(key_id, purpose);
        let plain = Zeroizing::new(cipher.decrypt(&nonce_of(nonce), Payload { msg: sealed, aad: &aad }).ok()?);
        KeyBytes::from_slice(&plain)
    }
}

fn wrap_aad(key_id: u32, purpose: Purpose) -> Vec<u8> {
    let mut aad = WRAP_LABEL.to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad.extend_from_slice(purpose.as_str().as_bytes());
    aad
}

#[cold]
fn unreachable_any_length() -> ! {
    panic!("HMAC takes keys of any length and AES-GCM any input below 64 GiB")
}

/// Finds the master key: `master_key`, else `keys.master_key_file`, else, on the embedded
/// SQLite default only, `master.key` in the data directory, generated on first use.
pub fn locate(settings: &Settings) -> Result<(MasterKey, MasterKeySource), KeyError> {
    if let Some(secret) = &settings.master_key {
        return Ok((MasterKey::from_base64(secret.expose(), "master_key")?, MasterKeySource::Setting));
    }
    if let Some(path) = &settings.keys.master_key_file {
        return Ok((read_key_file(path)?, MasterKeySource::File(path.clone())));
    }
    if settings.database_url.is_some() {
        return Err(KeyError::MasterKeyRequired);
    }
    let path = settings.generated_master_key_file();
    if path.exists() {
        return Ok((read_key_file(&path)?, MasterKeySource::File(path)));
    }
    let key = MasterKey::generate();
    write_key_file(&path, &key)?;
    Ok((key, MasterKeySource::Generated(path)))
}

fn read_key_file(path: &Path) -> Result<MasterKey, KeyError> {
    let file_error = |source| KeyError::MasterKeyFile { path: path.to_owned(), source };
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(file_error)?);
    let mode = std::fs::metadata(path).map_err(file_error)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the master key file is readable by other users: chmod 600 it");
    }
    MasterKey::from_base64(&text, &path.display().to_string())
}

fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), KeyError> {
    let file_error = |source| KeyError::MasterKeyFile { path: path.to_owned(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(file_error)?;
    file.write_all(key.to_base64().as_bytes()).and_then(|()| file.write_all(b"\n")).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_with_its_master_id_and_purpose() {
        let master = MasterKey::generate();
        let data = KeyBytes::random();
        let wrapped = master.wrap(7, Purpose::Field, &data);

        assert_eq!(master.unwrap(7, Purpose::Field, &wrapped), Some(data));
        assert_eq!(master.unwrap(8, Purpose::Field, &wrapped), None);
        assert_eq!(master.unwrap(7, Purpose::Index, &wrapped), None);
        assert_eq!(MasterKey::generate().unwrap(7, Purpose::Field, &wrapped), None);
    }

    #[test]
    fn only_base64_of_32_bytes_is_a_master_key() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64(), "test").unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());

        for bad in ["", "not base64!", &STANDARD.encode([1u8; 31]), &STANDARD.encode([1u8; 33])] {
            let error = MasterKey::from_base64(bad, "CONFIDANT_MASTER_KEY").err().unwrap();
            assert!(error.to_string().contains("CONFIDANT_MASTER_KEY"), "{error}");
        }
    }

    #[test]
    fn the_fingerprint_names_the_key_without_revealing_it() {
        let key = MasterKey::from_key(KeyBytes::from_slice(&[9; 32]).unwrap());
        assert!(key.fingerprint().starts_with("mk-") && key.fingerprint().len() == 3 + 16);
        assert!(!key.fingerprint().contains(&to_hex(&[9; 8])));
        assert_ne!(key.fingerprint(), MasterKey::generate().fingerprint());
    }

    #[test]
    fn a_generated_key_file_is_private_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate();
        write_key_file(&path, &key).unwrap();

        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_key_file(&path).unwrap().fingerprint(), key.fingerprint());
        assert!(write_key_file(&path, &MasterKey::generate()).is_err(), "never overwrites a key");
    }
}
