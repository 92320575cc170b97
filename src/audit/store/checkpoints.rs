//! Reading `audit_checkpoints`: the signed checkpoints kept in the audit database.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::checkpoint::Checkpoint;
use crate::storage::{Storage, StorageError};

/// The checkpoints kept in the audit database.
pub async fn stored_checkpoints(storage: &Storage) -> Result<Vec<Checkpoint>, StorageError> {
    let rows = sqlx::query("SELECT node_id, seq, hash, at_ms, signature FROM audit_checkpoints ORDER BY node_id, seq")
        .fetch_all(storage.pool())
        .await?;
    Ok(rows.iter().map(checkpoint_from_row).collect::<Result<_, _>>()?)
}

/// The newest checkpoint of `node_id`'s chain in the audit database, if any.
pub(in crate::audit) async fn newest_checkpoint(
    storage: &Storage,
    node_id: &str,
) -> Result<Option<Checkpoint>, StorageError> {
    let row = sqlx::query(
        "SELECT node_id, seq, hash, at_ms, signature FROM audit_checkpoints WHERE node_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(node_id.to_owned())
    .fetch_optional(storage.pool())
    .await?;
    Ok(row.as_ref().map(checkpoint_from_row).transpose()?)
}

/// The checkpoint `node_id` stored for `seq`, if any.
pub(in crate::audit) async fn stored_checkpoint(
    storage: &Storage,
    node_id: &str,
    seq: i64,
) -> Result<Option<Checkpoint>, StorageError> {
    let row = sqlx::query(
        "SELECT node_id, seq, hash, at_ms, signature FROM audit_checkpoints WHERE node_id = $1 AND seq = $2",
    )
    .bind(node_id.to_owned())
    .bind(seq)
    .fetch_optional(storage.pool())
    .await?;
    Ok(row.as_ref().map(checkpoint_from_row).transpose()?)
}

/// Reads a row selected as `node_id, seq, hash, at_ms, signature` (checkpoints and purge
/// anchors). Wrong sizes cannot carry a valid signature; they become zeros and fail the check.
pub(in crate::audit) fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint, sqlx::Error> {
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
