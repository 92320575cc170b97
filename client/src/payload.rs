//! What an MLS application message carries: text, and references to encrypted attachments (each
//! with the key that opens it and the digests that check it). No I/O; builds for wasm32.
//!
//! Encoding: a message with no attachment is its text's bytes, as every client before attachments
//! sent it, so older clients read it and [`Payload::decode`] reads theirs. A message with
//! attachments is [`MAGIC`] then a JSON object whose `v` is [`PAYLOAD_VERSION`]; a version this
//! client does not know is refused, never shown as text. The magic begins with a NUL byte, which
//! no text a person typed begins with (text that does is sent structured, so nothing is misread).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Opens a structured payload.
pub const MAGIC: &[u8] = b"\0confidant.payload\n";

/// The version of the structure after [`MAGIC`].
pub const PAYLOAD_VERSION: u32 = 1;

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// It opens with [`MAGIC`] but is no structure this client reads.
    #[error("the message is not a payload this client reads")]
    Malformed,
    /// A structure of a later version.
    #[error("the message has payload version {0}, newer than this client")]
    UnsupportedVersion(u32),
}

/// The decrypted content of an application message. `Debug` shows neither text nor file names.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload {
    /// The text (for a message from an older client, its bytes as sent).
    pub text: Vec<u8>,
    /// The files it carries.
    pub attachments: Vec<AttachmentRef>,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload").field("text_bytes", &self.text.len()).field("attachments", &self.attachments).finish()
    }
}

/// A file carried by a message: where it is, what it is, and what opens and checks it. `Debug`
/// shows neither its name nor its key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// The server's id of its ciphertext.
    pub id: Uuid,
    /// The file's name, as the sender had it.
    pub name: String,
    /// Its media type (`image/png`, `application/pdf`).
    pub media_type: String,
    /// Its size in bytes (of the file).
    pub size: u64,
    /// The AES-256-GCM key it was encrypted under, fresh for this file.
    #[serde(with = "bytes32")]
    pub key: Zeroizing<[u8; 32]>,
    /// SHA-256 of the file.
    #[serde(with = "bytes32")]
    pub sha256: Zeroizing<[u8; 32]>,
    /// SHA-256 of its ciphertext, as uploaded.
    #[serde(with = "bytes32")]
    pub ciphertext_sha256: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentRef")
            .field("id", &self.id)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The JSON after [`MAGIC`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u32,
    text: String,
    #[serde(default)]
    attachments: Vec<AttachmentRef>,
}

/// Only the version, read first so a later structure is told apart from a broken one.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

impl Payload {
    /// A message of `text` alone.
    pub fn text(text: impl Into<Vec<u8>>) -> Self {
        Self { text: text.into(), attachments: Vec::new() }
    }

    /// The bytes to encrypt: the text alone when there is no attachment (as older clients send
    /// and read it), the structure otherwise.
    pub fn encode(&self) -> Vec<u8> {
        if self.attachments.is_empty() && !self.text.starts_with(MAGIC) {
            return self.text.clone();
        }
        let wire = Wire {
            v: PAYLOAD_VERSION,
            text: String::from_utf8_lossy(&self.text).into_owned(),
            attachments: self.attachments.clone(),
        };
        let mut out = MAGIC.to_vec();
        // A struct of strings, numbers and arrays always serializes.
        out.extend_from_slice(serde_json::to_string(&wire).unwrap_or_default().as_bytes());
        out
    }

    /// Reads decrypted bytes: a structure, or (without [`MAGIC`]) text as an older client sent it.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let Some(json) = bytes.strip_prefix(MAGIC) else { return Ok(Self::text(bytes)) };
        let version: Version = serde_json::from_slice(json).map_err(|_| PayloadError::Malformed)?;
        if version.v != PAYLOAD_VERSION {
            return Err(PayloadError::UnsupportedVersion(version.v));
        }
        let wire: Wire = serde_json::from_slice(json).map_err(|_| PayloadError::Malformed)?;
        Ok(Self { text: wire.text.into_bytes(), attachments: wire.attachments })
    }
}

/// 32 bytes as standard base64.
mod bytes32 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(bytes: &Zeroizing<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(bytes.as_slice()))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<[u8; 32]>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(B64.decode(text.as_bytes()).map_err(serde::de::Error::custom)?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| serde::de::Error::custom("not 32 bytes"))?;
        Ok(Zeroizing::new(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> AttachmentRef {
        AttachmentRef {
            id: Uuid::from_u128(5),
            name: "scan.pdf".into(),
            media_type: "application/pdf".into(),
            size: 3,
            key: Zeroizing::new([1; 32]),
            sha256: Zeroizing::new([2; 32]),
            ciphertext_sha256: Zeroizing::new([3; 32]),
        }
    }

    #[test]
    fn text_alone_is_sent_as_older_clients_send_it_and_their_messages_read_as_text() {
        assert_eq!(Payload::text("hello").encode(), b"hello");
        assert_eq!(Payload::decode(b"hello"), Ok(Payload::text("hello")));
        assert_eq!(Payload::decode(&[0xff, 0xfe]), Ok(Payload::text(vec![0xff, 0xfe])), "any bytes are text");
    }

    #[test]
    fn a_message_with_attachments_round_trips_and_text_that_looks_structured_is_kept() {
        let payload = Payload { text: b"see attached".to_vec(), attachments: vec![reference()] };
        assert_eq!(Payload::decode(&payload.encode()), Ok(payload));
        let tricky = Payload::text([MAGIC, b"{}".as_slice()].concat());
        assert_eq!(Payload::decode(&tricky.encode()).unwrap().text, [MAGIC, b"{}".as_slice()].concat());
    }

    #[test]
    fn a_later_version_or_a_broken_structure_is_refused() {
        let later = [MAGIC, br#"{"v":2,"text":"","future":1}"#.as_slice()].concat();
        assert_eq!(Payload::decode(&later), Err(PayloadError::UnsupportedVersion(2)));
        assert_eq!(Payload::decode(&[MAGIC, b"{".as_slice()].concat()), Err(PayloadError::Malformed));
    }

    #[test]
    fn debug_shows_no_text_name_or_key() {
        let payload = Payload { text: b"secret words".to_vec(), attachments: vec![reference()] };
        let shown = format!("{payload:?}");
        assert!(!shown.contains("secret") && !shown.contains("scan.pdf") && !shown.contains("AQEB"), "{shown}");
    }
}
