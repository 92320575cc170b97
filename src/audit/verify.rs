//! Chain verification: reads every node's chain in order and recomputes it. Any changed,
//! deleted, inserted or reordered entry shows up as the first sequence number whose link or
//! hash does not hold. What it reads comes through `store/` (`chains.rs`, `checkpoints.rs`,
//! `purges.rs`, `pages.rs`).

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;

use super::chain::{GENESIS, Hash};
use super::checkpoint::Checkpoint;
use super::store::chains::{Span, entry_hash, next_seq, spans};
use super::store::pages::{Entry, Malformed, PageSource, RawPage};
use super::store::purges::anchors;
use super::trust::Trust;
use crate::storage::{Storage, StorageError};

pub use super::store::chains::read_chain;
pub use super::store::checkpoints::stored_checkpoints;

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
    /// A checkpoint's (or a purge anchor's) signature is not by a trusted key: it was forged
    /// or altered, or signed by a key the verification was not told to trust.
    BadCheckpointSignature,
    /// The checkpoint table holds a checkpoint for this seq that the node's checkpoint file
    /// lacks: lines were removed from the file.
    CheckpointMissingFromFile,
    /// The checkpoint file holds a checkpoint for this seq that the table lacks: rows were
    /// removed from the table.
    CheckpointMissingFromTable,
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
            Problem::BadCheckpointSignature => "the checkpoint for it is not signed by a trusted key",
            Problem::CheckpointMissingFromFile => {
                "the checkpoint table vouches for it, but the checkpoint file does not hold that checkpoint"
            }
            Problem::CheckpointMissingFromTable => {
                "the checkpoint file vouches for it, but the checkpoint table does not hold that checkpoint"
            }
        };
        write!(f, "chain of node {} is broken at seq {}: {what}", self.node_id, self.seq)
    }
}

/// Pages fetched and checked at once: enough to keep every core busy, since each page is
/// assembled by the database (on its own connection) and then parsed and hashed by itself.
fn pages_in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// Verifies every chain in the audit store. `Ok(Ok(chains))` when all hold, `Ok(Err(broken))`
/// at the first entry that does not.
///
/// Each chain is read in pages of consecutive sequence numbers, so page boundaries are known
/// before any page arrives and several pages are fetched and checked at once, each on its own
/// (its entries' hashes and the links between them); the pages are then joined in chain order,
/// which only compares each page's first link with the page before. Entries appended while
/// verification runs are left for the next run.
pub async fn verify_chains(storage: &Storage) -> Result<Result<Vec<ChainSummary>, Broken>, StorageError> {
    let anchors = anchors(storage).await?.into_iter().map(|(node, a)| (node, (a.seq, a.hash))).collect();
    let spans = spans(storage).await?;
    let in_flight = pages_in_flight();
    let source = PageSource::open(storage, u32::try_from(in_flight).unwrap_or(4)).await?;
    let walked = walk_pages(&source, &spans, Walk { chains: Vec::new(), prev_hash: GENESIS, anchors }, in_flight).await;
    source.close().await;
    let walk = match walked? {
        Ok(walk) => walk,
        Err(broken) => return Ok(Err(broken)),
    };
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

/// Fetches and checks the pages of `spans`, `in_flight` at a time, joining their reports in order.
async fn walk_pages(
    source: &PageSource,
    spans: &[Span],
    mut walk: Walk,
    in_flight: usize,
) -> Result<Result<Walk, Broken>, StorageError> {
    let mut pages = spans.iter().flat_map(Span::pages);
    let mut running = std::collections::VecDeque::with_capacity(in_flight);
    let outcome = loop {
        while running.len() < in_flight {
            let Some((node, from, to)) = pages.next() else { break };
            let source = source.clone();
            running.push_back(tokio::spawn(async move { check_page(&source, node, from, to).await }));
        }
        let Some(task) = running.pop_front() else { break Ok(Ok(walk)) };
        let report = match task.await {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => break Err(error),
            Err(_) => break Err(StorageError::Encode),
        };
        if let Some(report) = report
            && let Err(broken) = walk.join(report)
        {
            break Ok(Err(broken));
        }
    };
    for task in running {
        task.abort();
    }
    outcome
}

/// Fetches one page and checks it by itself on a blocking thread; `None` when it is empty.
async fn check_page(source: &PageSource, node: String, from: i64, to: i64) -> Result<Option<PageReport>, StorageError> {
    let Some(page) = source.fetch(&node, from, to).await? else { return Ok(None) };
    let checked =
        tokio::task::spawn_blocking(move || PageReport::of(&page, &node)).await.map_err(|_| StorageError::Encode)?;
    // A page not in the form its query produces is our bug, not tampering.
    checked.map_err(|_: Malformed| StorageError::Encode)
}

/// What one page shows by itself: where it starts, how far it holds, and its first bad entry.
#[derive(Debug, PartialEq, Eq)]
struct PageReport {
    node_id: String,
    /// The first entry's seq and stored `prev_hash`, to be linked to the page before.
    first_seq: i64,
    first_prev: Option<Hash>,
    /// How many entries hold, from the first on.
    good: u64,
    /// The last of them: seq and hash.
    last: Option<(i64, Hash)>,
    /// The first entry that does not hold, unless it is the first (whose link only the walk
    /// can check, and which it reports first).
    problem: Option<(i64, Problem)>,
}

impl PageReport {
    /// Checks a page by itself; `None` when it holds no entries. An intact page is checked in
    /// one pass as it is parsed (it arrives in chain order); a page with anything wrong is
    /// parsed again and sorted first, so that the entry named is the first in chain order
    /// whatever order the database delivered.
    fn of(page: &RawPage, node_id: &str) -> Result<Option<Self>, Malformed> {
        let mut in_arrival_order = PageCheck::new(node_id);
        page.for_each(node_id, &mut |entry| in_arrival_order.push(entry))?;
        if in_arrival_order.intact() {
            return Ok(in_arrival_order.report);
        }
        page.with_entries(node_id, |entries| {
            entries.sort_unstable_by_key(|entry| entry.content.seq);
            let mut in_chain_order = PageCheck::new(node_id);
            for entry in entries.iter() {
                if in_chain_order.push(entry).is_break() {
                    break;
                }
            }
            in_chain_order.report
        })
    }
}

/// A page's entries checked one after another: each follows the one before it (seq and link)
/// and matches its own hash.
struct PageCheck<'n> {
    node_id: &'n str,
    report: Option<PageReport>,
    scratch: Vec<u8>,
}

impl<'n> PageCheck<'n> {
    fn new(node_id: &'n str) -> Self {
        Self { node_id, report: None, scratch: Vec::with_capacity(400) }
    }

    /// Checks the next entry; breaks at the first that does not hold.
    fn push(&mut self, entry: &Entry<'_>) -> ControlFlow<()> {
        let seq = entry.content.seq;
        let report = self.report.get_or_insert_with(|| PageReport {
            node_id: self.node_id.to_owned(),
            first_seq: seq,
            first_prev: entry.prev_hash,
            good: 0,
            last: None,
            problem: None,
        });
        let problem = match (report.last, entry.prev_hash, entry.hash) {
            (Some((last_seq, _)), _, _) if seq != last_seq + 1 => Some(Problem::Missing),
            (Some((_, last_hash)), prev, _) if prev != Some(last_hash) => Some(Problem::BrokenLink),
            (_, Some(prev), Some(this)) if entry.content.hash_after_in(&prev, &mut self.scratch) == this => None,
            _ => Some(Problem::Altered),
        };
        match (problem, entry.hash) {
            (None, Some(hash)) => {
                report.good += 1;
                report.last = Some((seq, hash));
                ControlFlow::Continue(())
            }
            _ => {
                report.problem = Some((seq, problem.unwrap_or(Problem::Altered)));
                ControlFlow::Break(())
            }
        }
    }

    /// Whether every entry pushed held.
    fn intact(&self) -> bool {
        self.report.as_ref().is_none_or(|report| report.problem.is_none())
    }
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
    /// Continues the walk with the next page in chain order: its first entry must follow the
    /// last one checked. Reports the first entry that does not hold.
    fn join(&mut self, page: PageReport) -> Result<(), Broken> {
        if self.chains.last().is_none_or(|c| c.node_id != page.node_id) {
            // A purged chain starts right after its anchor (checked for its signature in
            // `verify_checkpoints`); any other chain starts at seq 1 after the genesis hash.
            let (last_seq, start) = self.anchors.get(&page.node_id).copied().unwrap_or((0, GENESIS));
            self.chains.push(ChainSummary { node_id: page.node_id.clone(), entries: 0, last_seq });
            self.prev_hash = start;
        }
        let broken = |seq, problem| Err(Broken { node_id: page.node_id.clone(), seq, problem });
        let Some(chain) = self.chains.last_mut() else { return Ok(()) };
        if page.first_seq != chain.last_seq + 1 {
            return broken(page.first_seq, Problem::Missing);
        }
        if page.first_prev != Some(self.prev_hash) {
            return broken(page.first_seq, Problem::BrokenLink);
        }
        if let Some((seq, problem)) = page.problem {
            return broken(seq, problem);
        }
        if let Some((seq, hash)) = page.last {
            chain.entries += page.good;
            chain.last_seq = seq;
            self.prev_hash = hash;
        }
        Ok(())
    }
}

/// Checks every checkpoint against intact `chains`: signed by a key of `trust`, and the chain
/// still holds the vouched-for entry with the vouched-for hash. A chain that ends before a
/// checkpoint is named at its first missing seq.
pub async fn verify_checkpoints(
    storage: &Storage,
    chains: &[ChainSummary],
    checkpoints: &[Checkpoint],
    trust: &Trust,
) -> Result<Result<(), Broken>, StorageError> {
    let anchors = anchors(storage).await?;
    for anchor in anchors.values() {
        if trust.signer_of(anchor).is_none() {
            let broken =
                Broken { node_id: anchor.node_id.clone(), seq: anchor.seq, problem: Problem::BadCheckpointSignature };
            return Ok(Err(broken));
        }
    }
    for checkpoint in checkpoints {
        let broken = |seq, problem| Broken { node_id: checkpoint.node_id.clone(), seq, problem };
        if trust.signer_of(checkpoint).is_none() {
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

#[cfg(test)]
mod tests {
    use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome};
    use confidant_actors::ids::NodeId;

    use super::*;
    use crate::audit::chain::{AuditRow, ChainHead};

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

    /// Rows as the SQLite page query delivers them: every column but `node_id`, the hashes'
    /// lengths in place of the hashes, which follow concatenated.
    fn json_page(rows: &[AuditRow]) -> RawPage {
        use serde_json::json;
        let mut hashes = Vec::new();
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let mut columns = vec![json!(row.seq), json!(row.event_id), json!(row.at_ms)];
                columns.extend(row.text_fields().map(|field| json!(field)));
                columns.extend([json!(row.prev_hash.len()), json!(row.hash.len())]);
                hashes.extend_from_slice(&row.prev_hash);
                hashes.extend_from_slice(&row.hash);
                serde_json::Value::Array(columns)
            })
            .collect();
        RawPage::Json { text: serde_json::Value::Array(rows).to_string(), hashes }
    }

    /// Checks `rows` split into pages of `size`, in chain order (node ids sorted, as the query does).
    fn walk(mut rows: Vec<AuditRow>, size: usize) -> Result<Vec<ChainSummary>, Broken> {
        rows.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
        let mut walk = Walk { chains: Vec::new(), prev_hash: GENESIS, anchors: HashMap::new() };
        for node_rows in rows.chunk_by(|a, b| a.node_id == b.node_id) {
            for part in node_rows.chunks(size) {
                let node = &part[0].node_id;
                let report = PageReport::of(&json_page(part), node).unwrap().unwrap();
                // Pages come in no particular order within themselves, and tell the same.
                let mut reversed = part.to_vec();
                reversed.reverse();
                assert_eq!(PageReport::of(&json_page(&reversed), node).unwrap().unwrap(), report);
                walk.join(report)?;
            }
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
