//! `confidant audit purge` in the audit database: the chains and where each may be cut, the
//! removal of a chain's prefix, and `audit_purges`, the signed anchors purges leave.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use super::checkpoints::checkpoint_from_row;
use crate::audit::checkpoint::Checkpoint;
use crate::storage::{Storage, StorageError};

/// The nodes with a chain in the audit store.
pub(in crate::audit) async fn chain_nodes(storage: &Storage) -> Result<Vec<String>, StorageError> {
    Ok(sqlx::query_scalar("SELECT DISTINCT node_id FROM audit_entries").fetch_all(storage.pool()).await?)
}

/// `node_id`'s chain: its first and last seq, and the first seq recorded at or after `before_ms`.
pub(in crate::audit) async fn bounds(
    storage: &Storage,
    node_id: &str,
    before_ms: i64,
) -> Result<(i64, i64, Option<i64>), StorageError> {
    let bounds = sqlx::query(
        "SELECT MIN(seq), MAX(seq), (SELECT MIN(seq) FROM audit_entries WHERE node_id = $1 AND at_ms >= $2) \
         FROM audit_entries WHERE node_id = $1",
    )
    .bind(node_id.to_owned())
    .bind(before_ms)
    .fetch_one(storage.pool())
    .await?;
    Ok((bounds.try_get(0)?, bounds.try_get(1)?, bounds.try_get(2)?))
}

/// Deletes the entries and checkpoints of `anchor`'s chain up to its seq and stores the anchor,
/// in one transaction; returns how many entries went.
pub(in crate::audit) async fn remove_prefix(storage: &Storage, anchor: &Checkpoint) -> Result<u64, StorageError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::raw_sql(AssertSqlSafe(storage.backend().open_purge_guard_sql())).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO audit_purges (node_id, up_to_seq, hash, at_ms, signature) VALUES ($1, $2, $3, $4, $5)")
        .bind(anchor.node_id.clone())
        .bind(anchor.seq)
        .bind(anchor.hash.to_vec())
        .bind(anchor.at_ms)
        .bind(anchor.signature.to_vec())
        .execute(&mut *tx)
        .await?;
    let removed = sqlx::query("DELETE FROM audit_entries WHERE node_id = $1 AND seq <= $2")
        .bind(anchor.node_id.clone())
        .bind(anchor.seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM audit_checkpoints WHERE node_id = $1 AND seq <= $2")
        .bind(anchor.node_id.clone())
        .bind(anchor.seq)
        .execute(&mut *tx)
        .await?;
    if let Some(close) = storage.backend().close_purge_guard_sql() {
        sqlx::query(close).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

/// The newest purge anchor of each chain.
pub async fn anchors(storage: &Storage) -> Result<HashMap<String, Checkpoint>, StorageError> {
    let rows =
        sqlx::query("SELECT node_id, up_to_seq, hash, at_ms, signature FROM audit_purges ORDER BY node_id, up_to_seq")
            .fetch_all(storage.pool())
            .await?;
    let mut newest = HashMap::new();
    for row in &rows {
        let anchor = checkpoint_from_row(row)?;
        newest.insert(anchor.node_id.clone(), anchor);
    }
    Ok(newest)
}
