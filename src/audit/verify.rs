//! Chain verification: reads every node's chain in order and recomputes it. Any changed,
//! deleted, inserted or reordered entry shows up as the first sequence number whose link or
//! hash does not hold.

use std::fmt;

use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::any::AnyRow;

use ed25519_dalek::VerifyingKey;

use super::chain::{AuditRow, GENESIS};
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

/// Verifies every chain in the audit store. `Ok(Ok(chains))` when all hold, `Ok(Err(broken))`
/// at the first entry that does not.
pub async fn verify_chains(storage: &Storage) -> Result<Result<Vec<ChainSummary>, Broken>, StorageError> {
    let anchors = anchors(storage).await?;
    let sql = format!("SELECT {COLUMNS} FROM audit_entries ORDER BY node_id, seq");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(storage.pool());
    let mut chains: Vec<ChainSummary> = Vec::new();
    let mut prev_hash = GENESIS.to_vec();
    while let Some(row) = rows.try_next().await? {
        let row = decode(&row)?;
        let starts_chain = chains.last().is_none_or(|c| c.node_id != row.node_id);
        if starts_chain {
            // A purged chain starts right after its anchor (checked for its signature in
            // `verify_checkpoints`); any other chain starts at seq 1 after the genesis hash.
            let (last_seq, prev) =
                anchors.get(&row.node_id).map_or((0, GENESIS.to_vec()), |a| (a.seq, a.hash.to_vec()));
            chains.push(ChainSummary { node_id: row.node_id.clone(), entries: 0, last_seq });
            prev_hash = prev;
        }
        let chain = chains.last_mut().ok_or(StorageError::Query(sqlx::Error::RowNotFound))?;
        let broken = |problem| Broken { node_id: row.node_id.clone(), seq: row.seq, problem };
        if row.seq != chain.last_seq + 1 {
            return Ok(Err(broken(Problem::Missing)));
        }
        if row.prev_hash != prev_hash {
            return Ok(Err(broken(Problem::BrokenLink)));
        }
        if row.compute_hash().as_slice() != row.hash.as_slice() {
            return Ok(Err(broken(Problem::Altered)));
        }
        chain.entries += 1;
        chain.last_seq = row.seq;
        prev_hash = row.hash;
    }
    Ok(Ok(chains))
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
