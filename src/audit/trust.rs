//! Which keys a verification trusts. Verification never reads or makes a private key: it checks
//! signatures against public keys, and says where each came from.
//!
//! Pinned keys (`audit.trusted_keys` in a configuration file kept outside the data directory,
//! or `--trusted-key`) are the trust anchor: with any pinned, only they count, so someone who
//! rewrites the chain, re-signs every checkpoint with a key of their own and registers that key
//! is caught. With none pinned, the keys the nodes registered in the audit store (`audit_keys`)
//! are used, so the nodes of a practice verify each other's chains out of the box; the report
//! says that this trusts the audit store itself.

use ed25519_dalek::VerifyingKey;

use super::checkpoint::{Checkpoint, to_hex};
use super::store::keys::{RegisteredKey, registered_keys};
use crate::storage::{Storage, StorageError};

/// Where a trusted key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given by the operator (setting or flag).
    Pinned,
    /// Registered in the audit store by this chain (node or command line).
    Registered {
        /// The chain that registered it.
        node_id: String,
    },
}

/// One key a verification accepts signatures of.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// Where it came from.
    pub source: KeySource,
}

impl TrustedKey {
    /// The key in lower-case hex.
    pub fn hex(&self) -> String {
        to_hex(self.key.as_bytes())
    }

    /// One line saying which key and why it is trusted, with its fingerprint (as the owners'
    /// emails of signed heads name it).
    pub fn describe(&self) -> String {
        let fingerprint = to_hex(&super::signed_head::fingerprint(&self.key));
        match &self.source {
            KeySource::Pinned => format!("trusted key {} (pinned), fingerprint {fingerprint}", self.hex()),
            KeySource::Registered { node_id } => format!(
                "trusted key {} (registered in the audit store by {node_id}; not pinned), fingerprint {fingerprint}",
                self.hex()
            ),
        }
    }
}

/// A public key given in hex is not 32 bytes of a valid Ed25519 point.
#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 public key (64 hex digits): {0}")]
pub struct BadKey(pub String);

/// Parses a public key in hex (either case, surrounding space ignored), as the settings do.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, BadKey> {
    crate::settings::public_key(text).ok_or_else(|| BadKey(text.trim().chars().take(80).collect()))
}

/// The keys one verification trusts.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: Vec<TrustedKey>,
}

impl Trust {
    /// Only `pinned` keys.
    pub fn pinned(pinned: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut keys: Vec<TrustedKey> = Vec::new();
        for key in pinned {
            if !keys.iter().any(|k| k.key == key) {
                keys.push(TrustedKey { key, source: KeySource::Pinned });
            }
        }
        Self { keys }
    }

    /// `pinned` if any; otherwise the keys registered in the audit store.
    pub async fn resolve(pinned: Vec<VerifyingKey>, storage: &Storage) -> Result<Self, StorageError> {
        if !pinned.is_empty() {
            return Ok(Self::pinned(pinned));
        }
        let keys = registered_keys(storage)
            .await?
            .into_iter()
            .filter_map(|RegisteredKey { public_key, node_id }| {
                let key = VerifyingKey::from_bytes(&public_key).ok()?;
                Some(TrustedKey { key, source: KeySource::Registered { node_id } })
            })
            .collect();
        Ok(Self { keys })
    }

    /// Whether the trust rests on pinned keys.
    pub fn is_pinned(&self) -> bool {
        self.keys.iter().any(|k| k.source == KeySource::Pinned)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The trusted key that signed `checkpoint`, if any.
    pub fn signer_of(&self, checkpoint: &Checkpoint) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| checkpoint.is_signed_by(&k.key))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::audit::chain::ChainHead;

    #[test]
    fn only_a_pinned_key_vouches_for_a_checkpoint() {
        let node = SigningKey::from_bytes(&[1; 32]);
        let forger = SigningKey::from_bytes(&[2; 32]);
        let trust = Trust::pinned([node.verifying_key()]);
        let head = ChainHead { seq: 3, hash: [4; 32] };

        assert!(trust.signer_of(&Checkpoint::sign(&node, "n", head, 1)).is_some());
        assert!(trust.signer_of(&Checkpoint::sign(&forger, "n", head, 1)).is_none());
        assert!(trust.is_pinned());
    }

    #[test]
    fn public_keys_parse_in_either_case_and_refuse_anything_else() {
        let hex = to_hex(SigningKey::from_bytes(&[1; 32]).verifying_key().as_bytes());
        assert!(parse_public_key(&hex).is_ok());
        assert!(parse_public_key(&format!(" {} ", hex.to_uppercase())).is_ok());
        assert!(parse_public_key(&hex[..62]).is_err());
        assert!(parse_public_key("zz").is_err());
    }
}
