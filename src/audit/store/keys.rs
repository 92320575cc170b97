//! `audit_keys`: the public keys that sign checkpoints, registered by whoever signs with them.

use sqlx::Row;

use crate::storage::{Storage, StorageError};

/// A key as registered: the 32 public-key bytes and the chain that registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    /// The chain (node or command line) that registered it first.
    pub node_id: String,
}

/// Registers `public_key` as `node_id`'s (a key registered before keeps its first node).
pub async fn register_key(
    storage: &Storage,
    node_id: &str,
    public_key: &[u8; 32],
    at_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO audit_keys (public_key, node_id, registered_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (public_key) DO NOTHING",
    )
    .bind(public_key.to_vec())
    .bind(node_id.to_owned())
    .bind(at_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Every registered key, oldest first. A row whose key is not 32 bytes is skipped: it cannot
/// verify anything.
pub async fn registered_keys(storage: &Storage) -> Result<Vec<RegisteredKey>, StorageError> {
    let rows = sqlx::query("SELECT public_key, node_id FROM audit_keys ORDER BY registered_at_ms, node_id")
        .fetch_all(storage.pool())
        .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let bytes: Vec<u8> = row.try_get(0)?;
        if let Ok(public_key) = <[u8; 32]>::try_from(bytes) {
            keys.push(RegisteredKey { public_key, node_id: row.try_get(1)? });
        }
    }
    Ok(keys)
}
