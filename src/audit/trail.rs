//! One verification of the whole audit trail, as `confidant audit verify` and the owners'
//! "verify now" both run it: every chain recomputed; every signed checkpoint (the checkpoint
//! files, the checkpoint table, every witness, the heads given with `--head`) and purge anchor
//! checked against the trusted keys and against the chain; then the checkpoint files and table
//! compared. The report says
//! which keys it trusted and what each witness held, so a reader knows what "intact" rests on.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use confidant_actors::clock::now_ms;
use ed25519_dalek::VerifyingKey;

use super::checkpoint::{Checkpoint, CheckpointLog};
use super::purge::anchors;
use super::signed_head::{SignedHead, fingerprint};
use super::trust::{Trust, TrustedKey};
use super::verify::{Broken, ChainSummary, Problem, stored_checkpoints, verify_chains, verify_checkpoints};
use super::witness::{WitnessError, Witnesses};
use crate::storage::{Storage, StorageError};

/// What a verification reads besides the audit store.
pub struct Evidence<'a> {
    /// The directory of this node's (and its neighbours') checkpoint files.
    pub checkpoint_dir: PathBuf,
    /// The witnesses to check the chains against.
    pub witnesses: &'a Witnesses,
    /// Signed heads kept by people (the owners' emails), given with `--head`: each must be in
    /// its chain, exactly.
    pub heads: Vec<SignedHead>,
    /// Keys the operator pinned; none: the keys registered in the audit store.
    pub pinned: Vec<VerifyingKey>,
    /// The chains whose checkpoint files must be in `checkpoint_dir` (this data directory's
    /// node and command line). Other nodes' files live on their machines: their chains are
    /// compared with the table only where their files are here too.
    pub local_chains: Vec<String>,
}

/// The outcome of one verification.
#[derive(Debug, Clone)]
pub struct TrailReport {
    /// Every chain, as far as it was checked (empty when a chain is broken).
    pub chains: Vec<ChainSummary>,
    /// The keys whose signatures were accepted.
    pub trusted: Vec<TrustedKey>,
    /// Whether those keys were pinned by the operator (rather than read from the audit store).
    pub pinned: bool,
    /// Each witness read, with how many checkpoints it held.
    pub witnesses: Vec<(String, usize)>,
    /// The first break found, if any.
    pub broken: Option<Broken>,
}

impl TrailReport {
    /// The lines that say what the verification trusted and read.
    pub fn basis(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.trusted.iter().map(TrustedKey::describe).collect();
        if self.trusted.is_empty() {
            lines.push("no trusted key: none pinned and none registered in the audit store".to_owned());
        }
        if !self.pinned && !self.trusted.is_empty() {
            lines.push(
                "no key is pinned: this trusts the audit store's own key registry; pin the keys with \
                 audit.trusted_keys or --trusted-key"
                    .to_owned(),
            );
        }
        for (name, count) in &self.witnesses {
            lines.push(format!("{name}: {count} checkpoint(s)"));
        }
        lines
    }
}

/// Why a verification could not be completed (as opposed to finding a break).
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// The audit store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The checkpoint files could not be read (or hold a line that is not a checkpoint).
    #[error("the checkpoint files cannot be read")]
    Checkpoints(#[source] std::io::Error),
    /// A witness could not be read.
    #[error(transparent)]
    Witness(#[from] WitnessError),
}

/// Verifies the trail in `storage` with `evidence`.
pub async fn verify_trail(storage: &Storage, evidence: Evidence<'_>) -> Result<TrailReport, TrailError> {
    let trust = Trust::resolve(evidence.pinned, storage).await?;
    let mut report = TrailReport {
        chains: Vec::new(),
        trusted: trust.keys().to_vec(),
        pinned: trust.is_pinned(),
        witnesses: Vec::new(),
        broken: None,
    };
    // Every checkpoint is read before the chains: a checkpoint is made only after the entries
    // it covers are durable, so a node sealing meanwhile cannot make one the chain read misses.
    // The table is read before the files because a seal writes the table first.
    let table = stored_checkpoints(storage).await?;
    let log = CheckpointLog::new(evidence.checkpoint_dir);
    let files = tokio::task::spawn_blocking(move || log.read_all())
        .await
        .map_err(|e| TrailError::Checkpoints(std::io::Error::other(e)))?
        .map_err(TrailError::Checkpoints)?;
    let witnessed = evidence.witnesses.read().await?;
    report.witnesses = witnessed.iter().map(|w| (w.name.clone(), w.heads.len())).collect();
    if !evidence.heads.is_empty() {
        report.witnesses.push(("signed heads given with --head".to_owned(), evidence.heads.len()));
    }
    let chains = match verify_chains(storage).await? {
        Ok(chains) => chains,
        Err(broken) => {
            report.broken = Some(broken);
            return Ok(report);
        }
    };

    let mut all = Vec::with_capacity(files.len() + table.len());
    all.extend(files.iter().cloned());
    all.extend(table.iter().cloned());
    all.extend(witnessed.into_iter().flat_map(|w| w.heads));
    all.extend(evidence.heads.iter().map(|h| h.checkpoint.clone()));
    let broken = match verify_checkpoints(storage, &chains, &all, &trust).await? {
        Err(broken) => Some(broken),
        Ok(()) => match misnamed_key(&evidence.heads, &trust) {
            Some(broken) => Some(broken),
            None => {
                let records = Records { files: &files, table: &table, local: &evidence.local_chains, now_ms: now_ms() };
                records.disagreement(&anchors(storage).await?)
            }
        },
    };
    report.chains = chains;
    report.broken = broken;
    Ok(report)
}

/// The first given head whose signature the trusted key with the fingerprint it names does not
/// verify (another trusted key did: the line was edited, or names the wrong key).
fn misnamed_key(heads: &[SignedHead], trust: &Trust) -> Option<Broken> {
    heads
        .iter()
        .find(|h| !trust.keys().iter().any(|k| fingerprint(&k.key) == h.key && h.checkpoint.is_signed_by(&k.key)))
        .map(|h| Broken {
            node_id: h.checkpoint.node_id.clone(),
            seq: h.checkpoint.seq,
            problem: Problem::BadCheckpointSignature,
        })
}

/// A checkpoint this young at the end of one record and missing from the other may be a seal
/// still in progress (table written, file not yet), and is not called a disagreement.
const SEALING_GRACE_MS: i64 = 60_000;

/// The two records of checkpoints, as read.
struct Records<'a> {
    files: &'a [Checkpoint],
    table: &'a [Checkpoint],
    /// Chains whose files must be here.
    local: &'a [String],
    now_ms: i64,
}

impl Records<'_> {
    /// The first checkpoint that the files and the table do not both hold (purged seqs and
    /// seals in progress aside), in node order, among the chains that have files here or are
    /// local: each seal writes both, and the node repairs the one crash window between them
    /// (`AuditStore::complete_file`), so a difference means one of them was edited.
    fn disagreement(&self, anchors: &HashMap<String, Checkpoint>) -> Option<Broken> {
        let filed: BTreeSet<&str> =
            self.files.iter().map(|c| c.node_id.as_str()).chain(self.local.iter().map(String::as_str)).collect();
        let newest = |list: &[Checkpoint], node: &str| list.iter().filter(|c| c.node_id == node).map(|c| c.seq).max();
        // Only the newest checkpoint of a chain can be a seal in progress.
        let settled = |c: &Checkpoint, own: &[Checkpoint], other: &[Checkpoint]| {
            let newest_here = newest(own, &c.node_id) == Some(c.seq);
            let beyond_other = newest(other, &c.node_id).is_none_or(|seq| c.seq > seq);
            !(newest_here && beyond_other && self.now_ms - c.at_ms < SEALING_GRACE_MS)
        };
        let seqs = |list: &[Checkpoint], other: &[Checkpoint]| -> BTreeSet<(String, i64)> {
            list.iter()
                .filter(|c| filed.contains(c.node_id.as_str()))
                .filter(|c| anchors.get(&c.node_id).is_none_or(|a| c.seq > a.seq))
                .filter(|c| settled(c, list, other))
                .map(|c| (c.node_id.clone(), c.seq))
                .collect()
        };
        let (in_files, in_table) = (seqs(self.files, self.table), seqs(self.table, self.files));
        let all_files: BTreeSet<(String, i64)> = self.files.iter().map(|c| (c.node_id.clone(), c.seq)).collect();
        let all_table: BTreeSet<(String, i64)> = self.table.iter().map(|c| (c.node_id.clone(), c.seq)).collect();
        let only_table = in_table.difference(&all_files).next().map(|k| (k, Problem::CheckpointMissingFromFile));
        let only_files = in_files.difference(&all_table).next().map(|k| (k, Problem::CheckpointMissingFromTable));
        [only_table, only_files]
            .into_iter()
            .flatten()
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|((node_id, seq), problem)| Broken { node_id: node_id.clone(), seq: *seq, problem })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::audit::chain::ChainHead;

    fn at(seq: i64) -> Checkpoint {
        Checkpoint::sign(&SigningKey::from_bytes(&[1; 32]), "n", ChainHead { seq, hash: [0; 32] }, 0)
    }

    fn disagreement(files: &[Checkpoint], table: &[Checkpoint], purged: Option<i64>, local: bool) -> Option<Broken> {
        let local = if local { vec!["n".to_owned()] } else { Vec::new() };
        let anchors = purged.map(|seq| ("n".to_owned(), at(seq))).into_iter().collect();
        Records { files, table, local: &local, now_ms: 10 * SEALING_GRACE_MS }.disagreement(&anchors)
    }

    #[test]
    fn files_and_table_must_hold_the_same_checkpoints_above_a_purge() {
        assert_eq!(disagreement(&[at(5), at(10)], &[at(5), at(10)], None, false), None);

        let missing_line = disagreement(&[at(5)], &[at(5), at(10)], None, false).unwrap();
        assert_eq!((missing_line.seq, missing_line.problem), (10, Problem::CheckpointMissingFromFile));
        let missing_row = disagreement(&[at(5), at(10)], &[at(10)], None, false).unwrap();
        assert_eq!((missing_row.seq, missing_row.problem), (5, Problem::CheckpointMissingFromTable));

        assert_eq!(disagreement(&[at(5), at(10)], &[at(10)], Some(7), false), None, "a purge removes table rows only");

        assert_eq!(disagreement(&[], &[at(5)], None, false), None, "another machine's chain: its file is there");
        let whole_file_gone = disagreement(&[], &[at(5)], None, true).unwrap();
        assert_eq!(whole_file_gone.problem, Problem::CheckpointMissingFromFile, "this directory's own chain");
    }

    #[test]
    fn a_seal_in_progress_is_not_a_disagreement() {
        let sealing = Checkpoint { at_ms: 10 * SEALING_GRACE_MS - 5, ..at(10) };
        let records = |files: &[Checkpoint], table: &[Checkpoint]| {
            Records { files, table, local: &[], now_ms: 10 * SEALING_GRACE_MS }.disagreement(&HashMap::new())
        };
        assert_eq!(records(&[at(5)], &[at(5), sealing.clone()]), None, "in the table, the file append pending");
        let removed = records(&[at(5), at(15)], &[at(5), sealing, at(15)]).unwrap();
        assert_eq!((removed.seq, removed.problem), (10, Problem::CheckpointMissingFromFile), "not the newest");
    }
}
