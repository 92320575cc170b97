//! Signed checkpoints. A hash chain shows any change inside it, but not that its newest entries
//! were cut off. So every N entries or T seconds the node signs (node, seq, hash, time) with its
//! Ed25519 key, stores the checkpoint in the audit database AND appends it to a file outside it;
//! `audit verify` then checks that the chain still reaches every checkpoint it has signed.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::chain::{ChainHead, Hash};

/// Domain separation for checkpoint signatures.
const DOMAIN: &[u8] = b"confidant.audit.checkpoint.v1\0";

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Whose chain.
    pub node_id: String,
    /// The entry vouched for.
    pub seq: i64,
    /// Its hash.
    pub hash: Hash,
    /// When the checkpoint was made (ms since the epoch, UTC).
    pub at_ms: i64,
    /// Ed25519 signature over [`Checkpoint::message`].
    pub signature: [u8; 64],
}

/// The JSON line form in checkpoint files.
#[derive(Serialize, Deserialize)]
struct Line {
    node_id: String,
    seq: i64,
    hash: String,
    at_ms: i64,
    signature: String,
}

impl Checkpoint {
    /// Signs `head` of `node_id`'s chain.
    pub fn sign(key: &SigningKey, node_id: &str, head: ChainHead, at_ms: i64) -> Self {
        let message = Self::message(node_id, head.seq, &head.hash, at_ms);
        let signature = key.sign(&message).to_bytes();
        Self { node_id: node_id.to_owned(), seq: head.seq, hash: head.hash, at_ms, signature }
    }

    /// The signed bytes: the domain string, then node id as u32-length-prefixed UTF-8, seq as
    /// 8 bytes big-endian, the 32-byte hash, at_ms as 8 bytes big-endian.
    pub fn message(node_id: &str, seq: i64, hash: &Hash, at_ms: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 4 + node_id.len() + 48);
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(&u32::try_from(node_id.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(node_id.as_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(hash);
        out.extend_from_slice(&at_ms.to_be_bytes());
        out
    }

    /// True when the signature is `key`'s.
    pub fn is_signed_by(&self, key: &VerifyingKey) -> bool {
        let message = Self::message(&self.node_id, self.seq, &self.hash, self.at_ms);
        key.verify(&message, &Signature::from_bytes(&self.signature)).is_ok()
    }

    /// One line of a checkpoint file (no newline).
    pub fn to_line(&self) -> String {
        let line = Line {
            node_id: self.node_id.clone(),
            seq: self.seq,
            hash: to_hex(&self.hash),
            at_ms: self.at_ms,
            signature: to_hex(&self.signature),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Parses a line of a checkpoint file.
    pub fn from_line(text: &str) -> Option<Self> {
        let line: Line = serde_json::from_str(text).ok()?;
        Some(Self {
            node_id: line.node_id,
            seq: line.seq,
            hash: from_hex(&line.hash)?,
            at_ms: line.at_ms,
            signature: from_hex(&line.signature)?,
        })
    }
}

/// Lower-case hex (the one encoder, `json_rows::push_hex`).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    crate::storage::json_rows::push_hex(&mut out, bytes);
    out
}

/// Fixed-size bytes from hex.
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads the signing key (a 32-byte seed in hex); a missing file is an error (for the commands
/// that sign with the node's key and must not make a new one: purge, public-key).
pub fn load_signing_key(path: &Path) -> io::Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let why = format!("{}: {e} (a node makes its key on its first start)", path.display());
        io::Error::new(e.kind(), why)
    })?;
    from_hex::<32>(text.trim()).map(|seed| SigningKey::from_bytes(&seed)).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "the audit signing key file does not hold a 32-byte hex seed")
    })
}

/// Reads the signing key, creating it with mode 0600 if missing (a node's first start).
pub fn load_or_create_signing_key(path: &Path) -> io::Result<SigningKey> {
    match load_signing_key(path) {
        Ok(key) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            std::io::Write::write_all(&mut file, format!("{}\n", to_hex(key.as_bytes())).as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), public_key = %to_hex(key.verifying_key().as_bytes()), "generated the audit signing key");
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// The newest checkpoint of each chain among `all`, in the order the chains first appear.
pub fn newest_per_node(all: impl IntoIterator<Item = Checkpoint>) -> Vec<Checkpoint> {
    let mut newest: Vec<Checkpoint> = Vec::new();
    for checkpoint in all {
        match newest.iter_mut().find(|c| c.node_id == checkpoint.node_id) {
            Some(existing) if existing.seq < checkpoint.seq => *existing = checkpoint,
            Some(_) => {}
            None => newest.push(checkpoint),
        }
    }
    newest
}

/// The append-only checkpoint files, one per node, in a directory outside the audit database.
#[derive(Debug, Clone)]
pub struct CheckpointLog {
    dir: PathBuf,
}

impl CheckpointLog {
    /// Checkpoint files in `dir` (created on first append).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn file(&self, node_id: &str) -> PathBuf {
        self.dir.join(format!("{node_id}.checkpoints"))
    }

    /// Appends `checkpoint` and waits until it is on disk.
    pub async fn append(&self, checkpoint: &Checkpoint) -> io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let mut file =
            tokio::fs::OpenOptions::new().create(true).append(true).open(self.file(&checkpoint.node_id)).await?;
        file.write_all(format!("{}\n", checkpoint.to_line()).as_bytes()).await?;
        file.sync_data().await
    }

    /// The last checkpoint in `node_id`'s file, read from its end (the file grows for years).
    pub fn newest(&self, node_id: &str) -> io::Result<Option<Checkpoint>> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut file = match std::fs::File::open(self.file(node_id)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(4096)))?;
        let mut tail = String::new();
        file.read_to_string(&mut tail)?;
        Ok(tail.lines().rev().find(|l| !l.trim().is_empty()).and_then(Checkpoint::from_line))
    }

    /// Every checkpoint in every file, in file order. A line that does not parse is reported
    /// as an error: someone edited the file.
    pub fn read_all(&self) -> io::Result<Vec<Checkpoint>> {
        let mut all = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(all),
            Err(e) => return Err(e),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "checkpoints"))
            .collect();
        files.sort();
        for file in files {
            for (n, line) in std::fs::read_to_string(&file)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let checkpoint = Checkpoint::from_line(line).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} line {} is not a checkpoint", file.display(), n + 1),
                    )
                })?;
                all.push(checkpoint);
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_with_its_key_and_unchanged() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let checkpoint = Checkpoint::sign(&key, "node", ChainHead { seq: 42, hash: [1; 32] }, 1_000);

        assert!(checkpoint.is_signed_by(&key.verifying_key()));
        assert!(!checkpoint.is_signed_by(&other.verifying_key()));
        let moved = Checkpoint { seq: 41, ..checkpoint.clone() };
        assert!(!moved.is_signed_by(&key.verifying_key()));
    }

    /// docs/AUDIT.md, "Checkpoints", worked example.
    #[test]
    fn the_signature_matches_the_documented_example() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let hash = from_hex("4caa4a77b0a5b27e1f7ea04df1c08b2cda42413857b010614366108192bd0a59").unwrap();
        let node = "00000000-0000-0000-0000-000000000001";
        let checkpoint = Checkpoint::sign(&key, node, ChainHead { seq: 1, hash }, 1_700_000_000_000);

        assert_eq!(
            to_hex(key.verifying_key().as_bytes()),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        assert_eq!(Checkpoint::message(node, 1, &hash, 1_700_000_000_000).len(), 118);
        assert_eq!(
            to_hex(&checkpoint.signature),
            "944e39841da64fe4c27fa0ceb5e7cd6b5b085b06335ef9e2c6de34932e4431e2\
             d6a93fe6c20d28d051a437d47f6c9e21db74cfefc047ad9b86736a9733938f01"
        );
    }

    #[test]
    fn checkpoint_lines_round_trip() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let checkpoint = Checkpoint::sign(&key, "node", ChainHead { seq: 3, hash: [9; 32] }, 5);
        assert_eq!(Checkpoint::from_line(&checkpoint.to_line()), Some(checkpoint));
    }

    #[test]
    fn the_signing_key_is_created_once_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create_signing_key(&path).unwrap();
        let second = load_or_create_signing_key(&path).unwrap();
        assert_eq!(first.as_bytes(), second.as_bytes());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
