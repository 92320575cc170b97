//! OpenPGP for reminders: a patient's public key, checked when it is registered, and the
//! PGP/MIME envelope (RFC 3156, `multipart/encrypted`) around a body encrypted to it with the
//! pure-Rust `pgp` crate. SEIPD v1 with AES-256, which every OpenPGP implementation in use
//! (GnuPG 2.2 included) decrypts.

use std::fmt;

use lettre::message::header::{ContentDisposition, ContentType};
use lettre::message::{MultiPart, SinglePart};
use pgp::composed::{ArmorOptions, Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::KeyDetails;

use super::ReminderError;

/// The longest armored key accepted (a 4096-bit RSA key with a few subkeys is ~10 KiB).
pub const MAX_ARMORED_LEN: usize = 64 * 1024;

/// Why a key was refused (the message names no key material).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    /// Not an ASCII-armored OpenPGP public key (or too long).
    #[error("is not an ASCII-armored OpenPGP public key")]
    NotAKey,
    /// A binding signature does not verify.
    #[error("has a binding signature that does not verify")]
    BadSignature,
    /// No subkey is marked for encrypting communications.
    #[error("has no subkey for encryption")]
    NoEncryptionKey,
}

/// A patient's OpenPGP public key, verified. It identifies the patient (its user ids carry a
/// name and an address), so it is sealed at rest and its `Debug` shows nothing.
#[derive(Clone)]
pub struct PgpKey {
    key: SignedPublicKey,
    armored: String,
}

impl fmt::Debug for PgpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgpKey(..)")
    }
}

impl PgpKey {
    /// Parses and verifies an armored public key with a usable encryption subkey.
    pub fn parse(armored: &str) -> Result<Self, InvalidKey> {
        if armored.len() > MAX_ARMORED_LEN {
            return Err(InvalidKey::NotAKey);
        }
        let (key, _) = SignedPublicKey::from_string(armored).map_err(|_| InvalidKey::NotAKey)?;
        key.verify_bindings().map_err(|_| InvalidKey::BadSignature)?;
        let parsed = Self { key, armored: armored.trim().to_owned() };
        parsed.encryption_subkey().ok_or(InvalidKey::NoEncryptionKey)?;
        Ok(parsed)
    }

    /// The armored text, as stored (sealed).
    pub fn armored(&self) -> &str {
        &self.armored
    }

    /// The first subkey bound for encrypting communications.
    fn encryption_subkey(&self) -> Option<&SignedPublicSubKey> {
        self.key.public_subkeys.iter().find(|sub| {
            sub.key.algorithm().can_encrypt() && sub.signatures.iter().any(|sig| sig.key_flags().encrypt_comms())
        })
    }
}

/// Encrypts a MIME entity to `key`; returns the armored OpenPGP message.
pub fn encrypt(key: &PgpKey, mime_entity: &[u8]) -> Result<String, ReminderError> {
    let subkey = key.encryption_subkey().ok_or(ReminderError::Encryption)?;
    let mut rng = rand_core::OsRng;
    let mut builder =
        MessageBuilder::from_bytes("", mime_entity.to_vec()).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder.encrypt_to_key(&mut rng, subkey).map_err(|_| ReminderError::Encryption)?;
    builder.to_armored_string(rng, ArmorOptions::default()).map_err(|_| ReminderError::Encryption)
}

/// The RFC 3156 structure: a version part, then the encrypted entity as `application/octet-stream`.
pub fn multipart_encrypted(armored: String) -> MultiPart {
    let version = SinglePart::builder()
        .header(ContentType::parse("application/pgp-encrypted").unwrap_or(ContentType::TEXT_PLAIN))
        .body(String::from("Version: 1\r\n"));
    let payload = SinglePart::builder()
        .header(
            ContentType::parse("application/octet-stream; name=\"encrypted.asc\"").unwrap_or(ContentType::TEXT_PLAIN),
        )
        .header(ContentDisposition::inline_with_name("encrypted.asc"))
        .body(armored);
    MultiPart::encrypted("application/pgp-encrypted".to_owned()).singlepart(version).singlepart(payload)
}
