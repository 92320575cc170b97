//! `audit_witness`, in the MAIN store (not the audit store): the newest signed checkpoint of each
//! chain, kept where someone who rewrites the audit database must reach too.

use crate::audit::checkpoint::Checkpoint;
use crate::storage::{Storage, StorageError};

use super::checkpoints::checkpoint_from_row;

/// Keeps `checkpoint` as its chain's newest head, unless a newer one is there already.
pub async fn record_head(main: &Storage, checkpoint: &Checkpoint) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_witness (node_id, seq, hash, at_ms, signature) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (node_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at_ms = excluded.at_ms, \
         signature = excluded.signature WHERE excluded.seq > audit_witness.seq",
    )
    .bind(checkpoint.node_id.clone())
    .bind(checkpoint.seq)
    .bind(checkpoint.hash.to_vec())
    .bind(checkpoint.at_ms)
    .bind(checkpoint.signature.to_vec())
    .execute(main.pool())
    .await?;
    Ok(())
}

/// The newest head of each chain the main store has witnessed.
pub async fn heads(main: &Storage) -> Result<Vec<Checkpoint>, StorageError> {
    let rows = sqlx::query("SELECT node_id, seq, hash, at_ms, signature FROM audit_witness ORDER BY node_id")
        .fetch_all(main.pool())
        .await?;
    Ok(rows.iter().map(checkpoint_from_row).collect::<Result<_, _>>()?)
}
