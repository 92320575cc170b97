//! The stored form of an encrypted value (docs/SECURITY.md, "Ciphertext format"):
//!
//! ```text
//! version (1 byte, 0x01) | key id (4 bytes, big-endian) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! The AAD binds the value to where it is stored, so a ciphertext copied into another row,
//! column or table fails to open:
//!
//! ```text
//! "confidant-field-v1" | len(table) | table | len(column) | column | len(row id) | row id | version | key id
//! ```
//!
//! with each `len` a 2-byte big-endian length. The nonce is random (96 bits, from the OS) per
//! encryption, which is why a key must not seal more than 2^32 values (NIST SP 800-38D, 8.3).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::CryptoError;
use super::secret::KeyBytes;

/// The only format version so far.
pub const VERSION: u8 = 1;
const HEADER: usize = 1 + 4;
const NONCE: usize = 12;
const TAG: usize = 16;
const AAD_LABEL: &[u8] = b"confidant-field-v1";

/// Where a value is stored: what its AAD binds it to.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// The row's id, as stored.
    pub row_id: &'a str,
}

/// One data key, ready to seal and open field values.
pub struct DataKey {
    key_id: u32,
    cipher: Aes256Gcm,
}

impl DataKey {
    /// A cipher for `material` under `key_id`.
    pub fn new(key_id: u32, material: &KeyBytes) -> Self {
        Self { key_id, cipher: Aes256Gcm::new(material.expose().into()) }
    }

    /// The id written into every ciphertext it makes.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Encrypts `plaintext` for `field`.
    pub fn seal(&self, field: Field<'_>, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let header = header(self.key_id);
        let aad = aad(field, &header);
        let mut out = Vec::with_capacity(HEADER + NONCE + plaintext.len() + TAG);
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        // AES-GCM fails only on inputs longer than 64 GiB, which no column holds.
        match self.cipher.encrypt(&nonce, Payload { msg: plaintext, aad: &aad }) {
            Ok(sealed) => out.extend_from_slice(&sealed),
            Err(_) => unreachable_oversized(),
        }
        out
    }

    /// Decrypts a value sealed for `field` by this key.
    pub fn open(&self, field: Field<'_>, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key_id = key_id_of(stored)?;
        if key_id != self.key_id {
            return Err(CryptoError::Integrity);
        }
        let (header, rest) = stored.split_at(HEADER);
        let (nonce, sealed) = rest.split_at(NONCE);
        let aad = aad(field, header);
        self.cipher
            .decrypt(&nonce_of(nonce), Payload { msg: sealed, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Integrity)
    }
}

/// The key id a stored value names, after checking its version and minimum length.
pub fn key_id_of(stored: &[u8]) -> Result<u32, CryptoError> {
    if stored.len() < HEADER + NONCE + TAG || stored[0] != VERSION {
        return Err(CryptoError::Integrity);
    }
    let mut id = [0u8; 4];
    id.copy_from_slice(&stored[1..HEADER]);
    Ok(u32::from_be_bytes(id))
}

fn header(key_id: u32) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[0] = VERSION;
    header[1..].copy_from_slice(&key_id.to_be_bytes());
    header
}

fn aad(field: Field<'_>, header: &[u8]) -> Vec<u8> {
    let parts = [field.table.as_bytes(), field.column.as_bytes(), field.row_id.as_bytes()];
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 6 + parts.iter().map(|p| p.len()).sum::<usize>() + HEADER);
    aad.extend_from_slice(AAD_LABEL);
    for part in parts {
        // Table and column names are identifiers; row ids are UUIDs: all far below 64 KiB.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(header);
    aad
}

/// The nonce of a stored value (`bytes` is exactly 12 long: split off at a fixed offset).
pub(super) fn nonce_of(bytes: &[u8]) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(bytes);
    Nonce::from(nonce)
}

#[cold]
fn unreachable_oversized() -> ! {
    panic!("AES-GCM refused a plaintext (longer than 64 GiB)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> DataKey {
        DataKey::new(id, &KeyBytes::from_slice(&[id as u8; 32]).unwrap())
    }

    fn field(row_id: &str) -> Field<'_> {
        Field { table: "patients", column: "legal_name", row_id }
    }

    #[test]
    fn a_value_opens_where_it_was_sealed() {
        let sealed = key(3).seal(field("a"), b"Ada Lovelace");
        assert_eq!(&**key(3).open(field("a"), &sealed).unwrap(), b"Ada Lovelace");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(key_id_of(&sealed).unwrap(), 3);
        assert_eq!(sealed.len(), 1 + 4 + 12 + 12 + 16);
    }

    #[test]
    fn the_same_value_never_seals_the_same_way_twice() {
        assert_ne!(key(1).seal(field("a"), b"x"), key(1).seal(field("a"), b"x"));
    }

    #[test]
    fn a_value_moved_to_another_row_column_or_table_does_not_open() {
        let sealed = key(1).seal(field("a"), b"Ada");
        let elsewhere = [
            field("b"),
            Field { column: "preferred_name", ..field("a") },
            Field { table: "intake_responses", ..field("a") },
        ];
        for other in elsewhere {
            assert!(matches!(key(1).open(other, &sealed), Err(CryptoError::Integrity)), "{other:?}");
        }
    }

    #[test]
    fn any_changed_byte_is_caught() {
        let sealed = key(1).seal(field("a"), b"Ada");
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 0x01;
            assert!(key(1).open(field("a"), &altered).is_err(), "byte {i}");
        }
        assert!(key(1).open(field("a"), &sealed[..sealed.len() - 1]).is_err());
        assert!(key(1).open(field("a"), b"").is_err());
    }

    #[test]
    fn another_key_cannot_open_it() {
        let sealed = key(1).seal(field("a"), b"Ada");
        let mut relabelled = sealed.clone();
        relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert!(key(2).open(field("a"), &relabelled).is_err());
    }
}
