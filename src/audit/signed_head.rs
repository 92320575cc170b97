//! A chain's signed head as one line of text, for a witness that is a person: the periodic
//! email to owners prints it ([`super::email_witness`]) and `confidant audit verify --head
//! '<line>'` reads it back, checking that the chain still holds that exact head.
//!
//! ```text
//! confidant-audit-head/1 node=<uuid> seq=<n> at_ms=<n> hash=<64 hex> key=<32 hex> signature=<128 hex>
//! ```
//!
//! `node`, `seq`, `hash`, `at_ms` and `signature` are the checkpoint's (docs/AUDIT.md,
//! "Checkpoints"); `key` is the fingerprint of the public key that signed it: the first 16
//! bytes of SHA-256 of the 32-byte Ed25519 public key, in hex. It is not signed; it says which
//! key to expect, and verification requires the trusted key that verifies the signature to
//! have it. Fields are separated by whitespace (a mail client that wraps the line breaks
//! nothing), in any order, each once; hex in either case.

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::checkpoint::{Checkpoint, from_hex, to_hex};

/// The first word of a head line: the format and its version.
pub const TAG: &str = "confidant-audit-head/1";

/// A signed head and the fingerprint of the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// The checkpoint: node, seq, hash, time, signature.
    pub checkpoint: Checkpoint,
    /// The fingerprint of the key that signed it ([`fingerprint`]).
    pub key: [u8; 16],
}

/// The fingerprint of an Ed25519 public key: the first 16 bytes of SHA-256 of its 32 bytes.
pub fn fingerprint(key: &VerifyingKey) -> [u8; 16] {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Why a head line was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadLineError {
    /// It does not start with [`TAG`].
    #[error("a head line starts with {TAG}")]
    Tag,
    /// A field is missing, repeated, unknown or malformed (named).
    #[error("the head line's `{0}` is missing, repeated or malformed")]
    Field(&'static str),
}

impl SignedHead {
    /// `checkpoint`, signed by `key`.
    pub fn new(checkpoint: Checkpoint, key: &VerifyingKey) -> Self {
        Self { checkpoint, key: fingerprint(key) }
    }

    /// The one-line form.
    pub fn to_line(&self) -> String {
        let c = &self.checkpoint;
        format!(
            "{TAG} node={} seq={} at_ms={} hash={} key={} signature={}",
            c.node_id,
            c.seq,
            c.at_ms,
            to_hex(&c.hash),
            to_hex(&self.key),
            to_hex(&c.signature)
        )
    }

    /// Reads a line written by [`Self::to_line`] (surrounding and repeated whitespace, line
    /// breaks included, do not matter).
    pub fn parse(line: &str) -> Result<Self, HeadLineError> {
        let mut words = line.split_whitespace();
        if words.next() != Some(TAG) {
            return Err(HeadLineError::Tag);
        }
        let mut fields: [Option<&str>; 6] = [None; 6];
        const NAMES: [&str; 6] = ["node", "seq", "at_ms", "hash", "key", "signature"];
        for word in words {
            let (name, value) = word.split_once('=').ok_or(HeadLineError::Field("field"))?;
            let at = NAMES.iter().position(|n| *n == name).ok_or(HeadLineError::Field("field"))?;
            if fields[at].replace(value).is_some() {
                return Err(HeadLineError::Field(NAMES[at]));
            }
        }
        let field = |at: usize| fields[at].ok_or(HeadLineError::Field(NAMES[at]));
        let node = Uuid::parse_str(field(0)?).map_err(|_| HeadLineError::Field("node"))?;
        let number = |at: usize| field(at)?.parse::<i64>().map_err(|_| HeadLineError::Field(NAMES[at]));
        let (seq, at_ms) = (number(1)?, number(2)?);
        if seq < 1 {
            return Err(HeadLineError::Field("seq"));
        }
        let hex = |at: usize| Ok::<String, HeadLineError>(field(at)?.to_ascii_lowercase());
        let checkpoint = Checkpoint {
            node_id: node.hyphenated().to_string(),
            seq,
            hash: from_hex(&hex(3)?).ok_or(HeadLineError::Field("hash"))?,
            at_ms,
            signature: from_hex(&hex(5)?).ok_or(HeadLineError::Field("signature"))?,
        };
        Ok(Self { checkpoint, key: from_hex(&hex(4)?).ok_or(HeadLineError::Field("key"))? })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::audit::chain::ChainHead;

    fn head() -> SignedHead {
        let key = SigningKey::from_bytes(&[1; 32]);
        let head = ChainHead { seq: 1, hash: [0x4c; 32] };
        let checkpoint = Checkpoint::sign(&key, "00000000-0000-0000-0000-000000000001", head, 1_700_000_000_000);
        SignedHead::new(checkpoint, &key.verifying_key())
    }

    #[test]
    fn a_head_line_reads_back_as_the_same_head_even_rewrapped() {
        let line = head().to_line();
        assert!(line.starts_with("confidant-audit-head/1 node=00000000-0000-0000-0000-000000000001 seq=1 "));
        assert_eq!(SignedHead::parse(&line).unwrap(), head());
        // A mail client broke the line and a reader pasted it with a trailing newline; another
        // tool upper-cased the hex.
        let wrapped = format!("  {}\n", line.replace(" hash=", "\r\n hash="));
        assert_eq!(SignedHead::parse(&wrapped).unwrap(), head(), "{wrapped}");
        let signature = to_hex(&head().checkpoint.signature);
        let upper = line.replace(&signature, &signature.to_uppercase());
        assert_eq!(SignedHead::parse(&upper).unwrap(), head());
    }

    #[test]
    fn the_fingerprint_is_the_start_of_the_keys_sha256() {
        // The documented example key (docs/AUDIT.md): seed 32 bytes of 0x01.
        let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert_eq!(to_hex(key.as_bytes()), "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
        assert_eq!(to_hex(&fingerprint(&key)), "34750f98bd59fcfc946da45aaabe933b");
    }

    #[test]
    fn a_malformed_line_names_what_is_wrong() {
        let line = head().to_line();
        assert_eq!(SignedHead::parse("confidant-audit-head/2 node=x"), Err(HeadLineError::Tag));
        let without_seq: String = line.split(' ').filter(|w| !w.starts_with("seq=")).collect::<Vec<_>>().join(" ");
        assert_eq!(SignedHead::parse(&without_seq), Err(HeadLineError::Field("seq")));
        let twice = format!("{line} seq=2");
        assert_eq!(SignedHead::parse(&twice), Err(HeadLineError::Field("seq")));
        let short_hash = line.replace("hash=4c4c", "hash=4c");
        assert_eq!(SignedHead::parse(&short_hash), Err(HeadLineError::Field("hash")));
        assert_eq!(SignedHead::parse(&format!("{line} colour=red")), Err(HeadLineError::Field("field")));
    }
}
