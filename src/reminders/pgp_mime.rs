//! OpenPGP for reminders: a patient's public key, checked when it is registered, and the
//! PGP/MIME envelope (RFC 3156, `multipart/encrypted`) around a body encrypted to it with the
//! pure-Rust `pgp` crate. SEIPD v1 with AES-256, which every OpenPGP implementation in use
//! (GnuPG 2.2 included) decrypts.

use std::fmt;

use lettre::message::header::{ContentDisposition, ContentType};
use lettre::message::{MultiPart, SinglePart};
use pgp::composed::{ArmorOptions, Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;
use pgp::types::Timestamp;

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
    /// No subkey is marked for encrypting communications (or every one is revoked or expired).
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

    /// Whether the key can still be encrypted to now (it may have expired since it was
    /// registered); a reminder to a key that cannot goes without details instead.
    pub fn is_usable(&self) -> bool {
        self.encryption_subkey().is_some()
    }

    /// The first subkey bound for encrypting communications, of a primary key and a subkey
    /// neither revoked nor expired (as their newest self-signatures say).
    fn encryption_subkey(&self) -> Option<&SignedPublicSubKey> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let details = &self.key.details;
        let self_signatures =
            details.direct_signatures.iter().chain(details.users.iter().flat_map(|user| user.signatures.iter()));
        let primary_live = details.revocation_signatures.is_empty()
            && newest(self_signatures).is_none_or(|sig| !expired(self.key.primary_key.created_at(), sig, now));
        if !primary_live {
            return None;
        }
        self.key.public_subkeys.iter().find(|sub| {
            let revoked = sub.signatures.iter().any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation));
            let binding = newest(sub.signatures.iter().filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding)));
            sub.key.algorithm().can_encrypt()
                && !revoked
                && binding
                    .is_some_and(|sig| sig.key_flags().encrypt_comms() && !expired(sub.key.created_at(), sig, now))
        })
    }
}

/// The most recent of some signatures.
fn newest<'a>(signatures: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    signatures.max_by_key(|sig| sig.created().map_or(0, |t| t.as_secs()))
}

/// Whether a key created at `created` is past the expiry `sig` gives it (none or 0: never).
fn expired(created: Timestamp, sig: &Signature, now: u64) -> bool {
    sig.key_expiration_time()
        .is_some_and(|valid| valid.as_secs() != 0 && u64::from(created.as_secs()) + u64::from(valid.as_secs()) <= now)
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
