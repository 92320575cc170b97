//! The `nodes` table: which server processes have run against this store, and whether the last
//! run of each stopped cleanly. Nothing here is PHI.

use sqlx::Row;

use super::{Storage, StorageError};
use crate::node::NodeId;

/// How the previous run of this node ended, as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousRun {
    /// This node never ran against this store.
    None,
    /// It recorded a clean stop.
    StoppedCleanly,
    /// It started but never recorded a stop: it crashed or was killed.
    Interrupted,
}

impl Storage {
    /// Records that `node` (running `version`) starts now, and reports how its previous run ended.
    pub async fn record_node_start(
        &self,
        node: &NodeId,
        version: &str,
        now_ms: i64,
    ) -> Result<PreviousRun, StorageError> {
        let mut tx = self.pool().begin().await?;
        let previous = sqlx::query("SELECT last_started_at_ms, last_stopped_at_ms FROM nodes WHERE node_id = $1")
            .bind(node.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let previous = match previous {
            None => PreviousRun::None,
            Some(row) => {
                let started: i64 = row.try_get(0)?;
                let stopped: Option<i64> = row.try_get(1)?;
                match stopped {
                    Some(stopped) if stopped >= started => PreviousRun::StoppedCleanly,
                    _ => PreviousRun::Interrupted,
                }
            }
        };
        sqlx::query(
            "INSERT INTO nodes (node_id, version, first_started_at_ms, last_started_at_ms) VALUES ($1, $2, $3, $3)
             ON CONFLICT (node_id) DO UPDATE SET version = excluded.version, last_started_at_ms = excluded.last_started_at_ms",
        )
        .bind(node.to_string())
        .bind(version)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(previous)
    }

    /// Records that `node` stopped cleanly now.
    pub async fn record_node_stop(&self, node: &NodeId, now_ms: i64) -> Result<(), StorageError> {
        sqlx::query("UPDATE nodes SET last_stopped_at_ms = $1 WHERE node_id = $2")
            .bind(now_ms)
            .bind(node.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
