//! Chain verification: reads every node's chain in order and recomputes it. Any changed,
//! deleted, inserted or reordered entry shows up as the first sequence number whose link or
//! hash does not hold.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use ed25519_dalek::VerifyingKey;

use super::chain::Hash;
use super::chain::{AuditRow, EntryContent, GENESIS};
use super::checkpoint::Checkpoint;
use super::purge::anchors;
use super::store::COLUMNS;
use crate::storage::{Storage, StorageError};

/// One intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// Whose chain.
    pub node_id: String,
    /// How many entries it holds.
    pub entries: u64,
    /// Its newest sequence number.
    pub last_seq: i64,
}

/// The first place a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Whose chain.
    pub node_id: String,
    /// The first bad sequence number.
    pub seq: i64,
    /// What is wrong there.
    pub problem: Problem,
}

/// What can be wrong with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The entry before it is missing (deleted), or this one is out of order.
    Missing,
    /// Its `prev_hash` is not the hash of the entry before it (reordered or inserted).
    BrokenLink,
    /// Its content does not match its hash (changed).
    Altered,
    /// The chain ends before an entry a signed checkpoint vouches for: the tail was cut off.
    Truncated,
    /// The entry differs from what a signed checkpoint vouches for: the chain was rewritten.
    CheckpointMismatch,
    /// A checkpoint's signature is not the node's: the checkpoint was forged or altered.
    BadCheckpointSignature,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            Problem::Missing => "an entry is missing before it or it is out of order",
            Problem::BrokenLink => "its prev_hash does not match the entry before it",
            Problem::Altered => "its content does not match its hash",
            Problem::Truncated => {
                "it is missing, but a signed checkpoint vouches for it or a later entry (the tail was truncated)"
            }
            Problem::CheckpointMismatch => "it differs from the signed checkpoint for it (the chain was rewritten)",
            Problem::BadCheckpointSignature => "the checkpoint for it is not signed by the audit key",
        };
        write!(f, "chain of node {} is broken at seq {}: {what}", self.node_id, self.seq)
    }
}

/// Entries per page read by [`verify_chains`].
const PAGE: i64 = 16_384;

/// Verifies every chain in the audit store. `Ok(Ok(chains))` when all hold, `Ok(Err(broken))`
/// at the first entry that does not.
///
/// Each chain is read in pages of consecutive sequence numbers, so page boundaries are known
/// before any page arrives and the database assembles the next few pages (see
/// `Backend::audit_page_sql`) on other connections while this one is checked. Hashes within a
/// page are recomputed on every core. Entries appended while verification runs are left for
/// the next run.
pub async fn verify_chains(storage: &Storage) -> Result<Result<Vec<ChainSummary>, Broken>, StorageError> {
    let anchors = anchors(storage).await?.into_iter().map(|(node, a)| (node, (a.seq, a.hash))).collect();
    let spans = spans(storage).await?;
    let mut pages = spans.iter().flat_map(Span::pages);
    let ahead = std::thread::available_parallelism().map_or(2, |n| n.get() + 1);
    let mut in_flight = std::collections::VecDeque::with_capacity(ahead);
    let mut walk = Walk { chains: Vec::new(), prev_hash: GENESIS, anchors };
    loop {
        while in_flight.len() < ahead {
            let Some((node, from, to)) = pages.next() else { break };
            let storage = storage.clone();
            in_flight.push_back(tokio::spawn(async move { fetch_page(&storage, node, from, to).await }));
        }
        let Some(fetch) = in_flight.pop_front() else { break };
        let Some(page) = fetch.await.map_err(|_| StorageError::Encode)?? else { continue };
        let (returned, verdict) = tokio::task::spawn_blocking(move || {
            let verdict = match serde_json::from_str::<Vec<PagedEntry<'_>>>(&page) {
                Ok(mut entries) => walk.check(&mut entries).map_err(PageError::Broken),
                Err(_) => Err(PageError::Malformed),
            };
            (walk, verdict)
        })
        .await
        .map_err(|_| StorageError::Encode)?;
        walk = returned;
        match verdict {
            Ok(()) => {}
            Err(PageError::Broken(broken)) => return Ok(Err(broken)),
            Err(PageError::Malformed) => return Err(StorageError::Encode),
        }
    }
    // A chain with a gap holds entries beyond the pages its count covered; the first of them
    // is where the chain breaks.
    for span in &spans {
        let checked = walk.chains.iter().find(|c| c.node_id == span.node_id).map_or(0, |c| c.last_seq);
        if checked < span.last {
            let seq = next_seq(storage, &span.node_id, checked).await?;
            return Ok(Err(Broken { node_id: span.node_id.clone(), seq, problem: Problem::Missing }));
        }
    }
    Ok(Ok(walk.chains))
}

/// What the store holds of one node's chain: its lowest and highest seq and how many entries.
struct Span {
    node_id: String,
    first: i64,
    last: i64,
    count: i64,
}

impl Span {
    /// Pages `(node, from, to)` over `count` consecutive seqs from `first`: all of an intact
    /// chain, and at least up to its first gap otherwise.
    fn pages(&self) -> impl Iterator<Item = (String, i64, i64)> + '_ {
        let end = self.first + self.count;
        (self.first..end).step_by(PAGE as usize).map(move |from| (self.node_id.clone(), from, (from + PAGE).min(end)))
    }
}

async fn spans(storage: &Storage) -> Result<Vec<Span>, StorageError> {
    let rows = sqlx::query(
        "SELECT node_id, MIN(seq), MAX(seq), COUNT(*) FROM audit_entries GROUP BY node_id ORDER BY node_id",
    )
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Span { node_id: row.try_get(0)?, first: row.try_get(1)?, last: row.try_get(2)?, count: row.try_get(3)? })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from)
}

/// The entries of `node`'s chain with `from <= seq < to`, as one JSON text; `None` when none.
async fn fetch_page(storage: &Storage, node: String, from: i64, to: i64) -> Result<Option<String>, StorageError> {
    let page: Option<String> = sqlx::query_scalar(storage.backend().audit_page_sql())
        .bind(node)
        .bind(from)
        .bind(to)
        .fetch_one(storage.pool())
        .await?;
    Ok(page.filter(|p| p != "[]"))
}

/// The lowest seq above `after` in `node`'s chain.
async fn next_seq(storage: &Storage, node: &str, after: i64) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar("SELECT MIN(seq) FROM audit_entries WHERE node_id = $1 AND seq > $2")
        .bind(node.to_owned())
        .bind(after)
        .fetch_one(storage.pool())
        .await?)
}

/// An entry as a page delivers it: the stored columns in table order, hashes in hex.
#[derive(serde::Deserialize)]
struct PagedEntry<'a> {
    #[serde(borrow)]
    node_id: Cow<'a, str>,
    seq: i64,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    at_ms: i64,
    #[serde(borrow)]
    actor_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor_role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    patient_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

impl PagedEntry<'_> {
    /// Whether the stored hash is `SHA-256(prev_hash || canonical bytes)`.
    fn hash_holds(&self, hashes: &Hashes, scratch: &mut Vec<u8>) -> bool {
        let content = EntryContent {
            node_id: &self.node_id,
            seq: self.seq,
            event_id: &self.event_id,
            at_ms: self.at_ms,
            texts: [
                self.actor_kind.as_deref(),
                self.actor_user_id.as_deref(),
                self.actor_role.as_deref(),
                self.session_id.as_deref(),
                self.request_id.as_deref(),
                self.source_ip.as_deref(),
                self.action.as_deref(),
                self.resource_type.as_deref(),
                self.resource_id.as_deref(),
                self.patient_id.as_deref(),
                self.outcome.as_deref(),
                self.reason.as_deref(),
            ],
        };
        content.hash_after_in(&hashes.prev, scratch) == hashes.this
    }
}

/// An entry's two stored hashes, decoded.
struct Hashes {
    prev: Hash,
    this: Hash,
}

/// 32 bytes from 64 hex digits of either case; `None` for anything else (a stored hash of the
/// wrong length, only possible by tampering).
fn decode_hash(hex: &str) -> Option<Hash> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Why a page failed.
enum PageError {
    Broken(Broken),
    /// The page is not the JSON the query builds (a bug, not tampering).
    Malformed,
}

/// Where verification stands between pages.
struct Walk {
    chains: Vec<ChainSummary>,
    /// Hash of the last entry checked (or of the chain's start).
    prev_hash: Hash,
    /// Purge anchors by node: the chain starts after this seq and hash.
    anchors: HashMap<String, (i64, Hash)>,
}

impl Walk {
    /// Checks the next entries of the walk (a page, in any order: they are sorted into chain
    /// order first, which costs next to nothing when they arrive in order): the links one
    /// after another, the hashes in parallel. Reports the first entry that does not hold.
    fn check(&mut self, entries: &mut [PagedEntry<'_>]) -> Result<(), Broken> {
        entries.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
        let mut first_bad: Option<(usize, Problem)> = None;
        let mut prev = self.prev_hash;
        let mut hashes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if self.chains.last().is_none_or(|c| c.node_id != entry.node_id) {
                // A purged chain starts right after its anchor (checked for its signature in
                // `verify_checkpoints`); any other chain starts at seq 1 after the genesis hash.
                let (last_seq, start) = self.anchors.get(entry.node_id.as_ref()).copied().unwrap_or((0, GENESIS));
                self.chains.push(ChainSummary { node_id: entry.node_id.to_string(), entries: 0, last_seq });
                prev = start;
            }
            let Some(chain) = self.chains.last_mut() else { break };
            if entry.seq != chain.last_seq + 1 {
                first_bad = Some((i, Problem::Missing));
                break;
            }
            let (Some(stored_prev), Some(this)) = (decode_hash(&entry.prev_hash), decode_hash(&entry.hash)) else {
                first_bad = Some((i, Problem::Altered));
                break;
            };
            if stored_prev != prev {
                first_bad = Some((i, Problem::BrokenLink));
                break;
            }
            chain.entries += 1;
            chain.last_seq = entry.seq;
            hashes.push(Hashes { prev: stored_prev, this });
            prev = this;
        }
        let altered = first_altered(&entries[..hashes.len()], &hashes);
        let broken = |i: usize, problem| {
            let entry = &entries[i];
            Err(Broken { node_id: entry.node_id.to_string(), seq: entry.seq, problem })
        };
        match (altered, first_bad) {
            (Some(i), _) => broken(i, Problem::Altered),
            (None, Some((i, problem))) => broken(i, problem),
            (None, None) => {
                self.prev_hash = prev;
                Ok(())
            }
        }
    }
}

/// The first entry whose hash does not hold, recomputing on every core.
fn first_altered(entries: &[PagedEntry<'_>], hashes: &[Hashes]) -> Option<usize> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = entries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(chunk)
            .zip(hashes.chunks(chunk))
            .enumerate()
            .map(|(n, (part, hashes))| {
                scope.spawn(move || {
                    let mut scratch = Vec::with_capacity(320);
                    part.iter().zip(hashes).position(|(e, h)| !e.hash_holds(h, &mut scratch)).map(|i| n * chunk + i)
                })
            })
            .collect();
        // A worker cannot panic short of a bug in sha2; count that as "altered" at its chunk start.
        workers.into_iter().enumerate().find_map(|(n, worker)| worker.join().unwrap_or(Some(n * chunk)))
    })
}

/// Checks every checkpoint against intact `chains`: signed by `key`, and the chain still holds
/// the vouched-for entry with the vouched-for hash.
pub async fn verify_checkpoints(
    storage: &Storage,
    chains: &[ChainSummary],
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<Result<(), Broken>, StorageError> {
    let anchors = anchors(storage).await?;
    for anchor in anchors.values() {
        if !anchor.is_signed_by(key) {
            let broken =
                Broken { node_id: anchor.node_id.clone(), seq: anchor.seq, problem: Problem::BadCheckpointSignature };
            return Ok(Err(broken));
        }
    }
    for checkpoint in checkpoints {
        let broken = |seq, problem| Broken { node_id: checkpoint.node_id.clone(), seq, problem };
        if !checkpoint.is_signed_by(key) {
            return Ok(Err(broken(checkpoint.seq, Problem::BadCheckpointSignature)));
        }
        if anchors.get(&checkpoint.node_id).is_some_and(|a| checkpoint.seq <= a.seq) {
            continue; // vouches for an entry purged after its retention period
        }
        let last_seq = chains.iter().find(|c| c.node_id == checkpoint.node_id).map_or(0, |c| c.last_seq);
        if last_seq < checkpoint.seq {
            return Ok(Err(broken(last_seq + 1, Problem::Truncated)));
        }
        if entry_hash(storage, &checkpoint.node_id, checkpoint.seq).await? != checkpoint.hash.as_slice() {
            return Ok(Err(broken(checkpoint.seq, Problem::CheckpointMismatch)));
        }
    }
    Ok(Ok(()))
}

/// The stored hash of entry `seq` of `node_id`'s chain.
pub(super) async fn entry_hash(storage: &Storage, node_id: &str, seq: i64) -> Result<Vec<u8>, StorageError> {
    Ok(sqlx::query_scalar("SELECT hash FROM audit_entries WHERE node_id = $1 AND seq = $2")
        .bind(node_id.to_owned())
        .bind(seq)
        .fetch_one(storage.pool())
        .await?)
}

/// The checkpoints kept in the audit database.
pub async fn stored_checkpoints(storage: &Storage) -> Result<Vec<Checkpoint>, StorageError> {
    let rows = sqlx::query("SELECT node_id, seq, hash, at_ms, signature FROM audit_checkpoints ORDER BY node_id, seq")
        .fetch_all(storage.pool())
        .await?;
    Ok(rows.iter().map(checkpoint_from_row).collect::<Result<_, _>>()?)
}

/// Reads a row selected as `node_id, seq, hash, at_ms, signature` (checkpoints and purge
/// anchors). Wrong sizes cannot carry a valid signature; they become zeros and fail the check.
pub(super) fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint, sqlx::Error> {
    let hash: Vec<u8> = row.try_get(2)?;
    let signature: Vec<u8> = row.try_get(4)?;
    Ok(Checkpoint {
        node_id: row.try_get(0)?,
        seq: row.try_get(1)?,
        hash: hash.try_into().unwrap_or([0; 32]),
        at_ms: row.try_get(3)?,
        signature: signature.try_into().unwrap_or([0; 64]),
    })
}

/// Every entry of `node`'s chain, in order (for export and tests).
pub async fn read_chain(
    storage: &Storage,
    node: &confidant_actors::ids::NodeId,
) -> Result<Vec<AuditRow>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM audit_entries WHERE node_id = $1 ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(node.to_string()).fetch_all(storage.pool()).await?;
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

/// Reads an `audit_entries` row selected with [`COLUMNS`].
pub(super) fn decode(row: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        node_id: row.try_get(0)?,
        seq: row.try_get(1)?,
        event_id: row.try_get(2)?,
        at_ms: row.try_get(3)?,
        actor_kind: row.try_get(4)?,
        actor_user_id: row.try_get(5)?,
        actor_role: row.try_get(6)?,
        session_id: row.try_get(7)?,
        request_id: row.try_get(8)?,
        source_ip: row.try_get(9)?,
        action: row.try_get(10)?,
        resource_type: row.try_get(11)?,
        resource_id: row.try_get(12)?,
        patient_id: row.try_get(13)?,
        outcome: row.try_get(14)?,
        reason: row.try_get(15)?,
        prev_hash: row.try_get(16)?,
        hash: row.try_get(17)?,
    })
}

#[cfg(test)]
mod tests {
    use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome};
    use confidant_actors::ids::NodeId;

    use super::*;
    use crate::audit::chain::ChainHead;

    /// `count` chained entries of one node, as stored.
    fn chain(count: usize) -> Vec<AuditRow> {
        let node = NodeId::generate();
        let mut head = ChainHead::EMPTY;
        (0..count)
            .map(|_| {
                let row =
                    AuditRow::chained(&AuditEvent::new(node, AuditActor::System, Action::Read, Outcome::Success), head);
                head = row.as_head();
                row
            })
            .collect()
    }

    /// Rows as the page query delivers them.
    fn page(rows: &[AuditRow]) -> String {
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            row.write_json_columns(&mut out);
        }
        out.push(']');
        out
    }

    /// Checks `rows` split into pages of `size`, in chain order (node ids sorted, as the query does).
    fn walk(mut rows: Vec<AuditRow>, size: usize) -> Result<Vec<ChainSummary>, Broken> {
        rows.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
        let mut walk = Walk { chains: Vec::new(), prev_hash: GENESIS, anchors: HashMap::new() };
        for part in rows.chunks(size) {
            // Pages come in no particular order within themselves.
            let mut part = part.to_vec();
            part.reverse();
            let text = page(&part);
            let mut entries: Vec<PagedEntry<'_>> = serde_json::from_str(&text).unwrap();
            walk.check(&mut entries)?;
        }
        Ok(walk.chains)
    }

    #[test]
    fn chains_spanning_pages_verify_with_their_counts() {
        let rows: Vec<AuditRow> = chain(7).into_iter().chain(chain(5)).collect();
        let chains = walk(rows, 3).unwrap();
        let mut counts: Vec<(u64, i64)> = chains.iter().map(|c| (c.entries, c.last_seq)).collect();
        counts.sort();
        assert_eq!(counts, vec![(5, 5), (7, 7)]);
    }

    #[test]
    fn an_altered_entry_on_a_later_page_is_named() {
        let mut rows = chain(10);
        rows[7].outcome = "denied".into();
        let broken = walk(rows, 4).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (8, Problem::Altered));
    }

    #[test]
    fn a_link_broken_across_a_page_boundary_is_named() {
        let mut rows = chain(8);
        rows.remove(4); // the second page starts one entry late
        let broken = walk(rows, 4).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (6, Problem::Missing));

        let mut rows = chain(8);
        let forged = AuditRow::chained(
            &AuditEvent::new(
                rows[0].node_id.parse::<NodeId>().unwrap(),
                AuditActor::System,
                Action::Read,
                Outcome::Success,
            ),
            ChainHead { seq: 4, hash: [7; 32] },
        );
        rows[4] = forged; // self-consistent, but not linked to entry 4
        let broken = walk(rows, 4).unwrap_err();
        assert_eq!((broken.seq, broken.problem), (5, Problem::BrokenLink));
    }
}
