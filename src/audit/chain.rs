//! The hash chain: the stored form of an audit entry ([`AuditRow`]), its canonical bytes, and
//! `hash = SHA-256(prev_hash || canonical bytes)`. docs/AUDIT.md specifies the same encoding for
//! independent verifiers; change neither without the other (and never for stored chains).

use confidant_actors::audit::{AuditActor, AuditEvent};
use sha2::{Digest, Sha256};

use crate::storage::json_rows;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `prev_hash` of the first entry of a chain.
pub const GENESIS: Hash = [0; 32];

/// Domain separation: these bytes open every entry's encoding.
const DOMAIN: &[u8] = b"confidant.audit.v1\0";

/// One audit entry exactly as stored: every field in its text form, plus the chain position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub node_id: String,
    pub seq: i64,
    pub event_id: String,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_user_id: Option<String>,
    pub actor_role: Option<String>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The position of the newest entry of a node's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Its sequence number (0 for an empty chain).
    pub seq: i64,
    /// Its hash ([`GENESIS`] for an empty chain).
    pub hash: Hash,
}

impl ChainHead {
    /// The head of a chain with no entries.
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: GENESIS };

    /// The head at entry `seq` whose stored hash is `hash`. A stored hash of the wrong length
    /// (only possible by tampering) becomes [`GENESIS`], which the next link then fails.
    pub fn from_stored(seq: i64, hash: &[u8]) -> Self {
        Self { seq, hash: hash.try_into().unwrap_or(GENESIS) }
    }
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// What an entry's hash covers, borrowed from wherever the entry was read: every column but
/// the two hashes, the twelve text columns after `at_ms` in table order.
#[derive(Debug, Clone, Copy)]
pub struct EntryContent<'a> {
    pub node_id: &'a str,
    pub seq: i64,
    pub event_id: &'a str,
    pub at_ms: i64,
    pub texts: [Option<&'a str>; 12],
}

impl EntryContent<'_> {
    /// The canonical bytes (docs/AUDIT.md).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        self.write_canonical(&mut out);
        out
    }

    /// Appends the canonical bytes to `out`.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(DOMAIN);
        put_text(out, Some(self.node_id));
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_text(out, Some(self.event_id));
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for field in self.texts {
            put_text(out, field);
        }
    }

    /// `SHA-256(prev_hash || canonical bytes)`.
    pub fn hash_after(&self, prev_hash: &[u8]) -> Hash {
        self.hash_after_in(prev_hash, &mut Vec::with_capacity(320))
    }

    /// [`Self::hash_after`], encoding in `scratch` (cleared first) so that a loop over many
    /// entries allocates once.
    pub fn hash_after_in(&self, prev_hash: &[u8], scratch: &mut Vec<u8>) -> Hash {
        scratch.clear();
        self.write_canonical(scratch);
        let mut digest = Sha256::new();
        digest.update(prev_hash);
        digest.update(&scratch[..]);
        digest.finalize().into()
    }
}

impl AuditRow {
    /// Places `event` after `head` in the chain, computing its hash.
    pub fn chained(event: &AuditEvent, head: ChainHead) -> Self {
        let (actor_kind, actor_user_id, actor_role) = match event.actor {
            AuditActor::Anonymous => ("anonymous", None, None),
            AuditActor::System => ("system", None, None),
            AuditActor::User { id, role } => ("user", Some(id.to_string()), Some(role.as_str().to_owned())),
        };
        let mut row = AuditRow {
            node_id: event.node_id.to_string(),
            seq: head.seq + 1,
            event_id: event.event_id.to_string(),
            at_ms: event.at_ms,
            actor_kind: actor_kind.to_owned(),
            actor_user_id,
            actor_role,
            session_id: event.session_id.map(|v| v.to_string()),
            request_id: event.request_id.map(|v| v.to_string()),
            source_ip: event.source_ip.map(|v| v.to_string()),
            action: event.action.as_str().to_owned(),
            resource_type: event.resource_type.map(|v| v.as_str().to_owned()),
            resource_id: event.resource_id.map(|v| v.to_string()),
            patient_id: event.patient_id.map(|v| v.to_string()),
            outcome: event.outcome.as_str().to_owned(),
            reason: event.reason.as_ref().map(|r| r.as_str().to_owned()),
            prev_hash: head.hash.to_vec(),
            hash: Vec::new(),
        };
        row.hash = row.compute_hash().to_vec();
        row
    }

    /// Columns 5 to 16 in table order: the fields after `at_ms`, each text or null.
    pub(crate) fn text_fields(&self) -> [Option<&str>; 12] {
        [
            Some(&self.actor_kind),
            self.actor_user_id.as_ref(),
            self.actor_role.as_ref(),
            self.session_id.as_ref(),
            self.request_id.as_ref(),
            self.source_ip.as_ref(),
            Some(&self.action),
            self.resource_type.as_ref(),
            self.resource_id.as_ref(),
            self.patient_id.as_ref(),
            Some(&self.outcome),
            self.reason.as_ref(),
        ]
        .map(|field| field.map(String::as_str))
    }

    /// The hashed content of the entry, borrowed.
    pub fn content(&self) -> EntryContent<'_> {
        EntryContent {
            node_id: &self.node_id,
            seq: self.seq,
            event_id: &self.event_id,
            at_ms: self.at_ms,
            texts: self.text_fields(),
        }
    }

    /// The canonical bytes of the entry (everything but the two hashes).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.content().canonical_bytes()
    }

    /// `SHA-256(prev_hash || canonical bytes)`.
    pub fn compute_hash(&self) -> Hash {
        self.content().hash_after(&self.prev_hash)
    }

    /// Appends the 18 columns as a JSON array in `audit_entries` order, hashes as hex: the
    /// transport form of a batch append (see `Backend::audit_append_sql`). Written by hand
    /// because it runs once per audit event.
    pub fn write_json_columns(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push('[');
        json_rows::push_str(out, Some(&self.node_id));
        let _ = write!(out, ",{},", self.seq);
        json_rows::push_str(out, Some(&self.event_id));
        let _ = write!(out, ",{}", self.at_ms);
        for field in self.text_fields() {
            out.push(',');
            json_rows::push_str(out, field);
        }
        for hash in [&self.prev_hash, &self.hash] {
            out.push_str(",\"");
            json_rows::push_hex(out, hash);
            out.push('"');
        }
        out.push(']');
    }

    /// This entry as the head of its chain.
    pub fn as_head(&self) -> ChainHead {
        ChainHead::from_stored(self.seq, &self.hash)
    }
}

/// Present text: `0x01`, its UTF-8 length as a big-endian u32, the bytes. Absent: `0x00`.
fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            // Every stored field is an id or a short code, far below 4 GiB.
            out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use confidant_actors::audit::{Action, Outcome, ReasonCode, Role};
    use confidant_actors::ids::{NodeId, UserId};

    use super::*;

    fn event() -> AuditEvent {
        let user = AuditActor::User { id: UserId::from_uuid(uuid::Uuid::nil()), role: Role::Clinician };
        AuditEvent::new(NodeId::generate(), user, Action::Read, Outcome::Denied)
            .because(ReasonCode::new("not_on_care_team").unwrap())
    }

    #[test]
    fn consecutive_entries_link_by_hash() {
        let event = event();
        let first = AuditRow::chained(&event, ChainHead::EMPTY);
        let second = AuditRow::chained(&event, first.as_head());

        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.prev_hash, GENESIS.to_vec());
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(second.compute_hash().to_vec(), second.hash);
    }

    #[test]
    fn changing_any_field_changes_the_hash() {
        let row = AuditRow::chained(&event(), ChainHead::EMPTY);
        let mut changed = row.clone();
        changed.outcome = "success".into();
        assert_ne!(changed.compute_hash().to_vec(), row.hash);

        // Moving a value between adjacent optional fields must not collide either.
        let mut moved = row.clone();
        moved.actor_role = None;
        moved.session_id = row.actor_role.clone();
        assert_ne!(moved.compute_hash().to_vec(), row.hash);
    }

    #[test]
    fn the_json_transport_form_is_valid_json_with_every_column() {
        let mut row = AuditRow::chained(&event(), ChainHead::EMPTY);
        row.reason = Some("quote\"back\\slash\u{1}".into());
        let mut out = String::new();
        row.write_json_columns(&mut out);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 18);
        assert_eq!(parsed[15], "quote\"back\\slash\u{1}");
        assert_eq!(parsed[1], 1);
        assert_eq!(parsed[17].as_str().unwrap().len(), 64);
    }

    #[test]
    fn the_encoding_matches_the_documented_example() {
        // docs/AUDIT.md walks through this entry byte by byte.
        let row = AuditRow {
            node_id: "00000000-0000-0000-0000-000000000001".into(),
            seq: 1,
            event_id: "00000000-0000-0000-0000-000000000002".into(),
            at_ms: 1_700_000_000_000,
            actor_kind: "system".into(),
            actor_user_id: None,
            actor_role: None,
            session_id: None,
            request_id: None,
            source_ip: None,
            action: "server_start".into(),
            resource_type: Some("server".into()),
            resource_id: None,
            patient_id: None,
            outcome: "success".into(),
            reason: None,
            prev_hash: GENESIS.to_vec(),
            hash: Vec::new(),
        };
        assert_eq!(crate::audit::checkpoint::to_hex(&row.compute_hash()), DOCUMENTED_EXAMPLE_HASH);
    }

    /// Also printed in docs/AUDIT.md.
    const DOCUMENTED_EXAMPLE_HASH: &str = "4caa4a77b0a5b27e1f7ea04df1c08b2cda42413857b010614366108192bd0a59";
}
