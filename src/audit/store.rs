//! `AuditStore`: the audit database behind the [`AuditSink`] port. It appends each batch in one
//! transaction, extending this node's hash chain, and resolves only after the commit.

use std::sync::Arc;

use confidant_actors::audit::{AuditEvent, AuditSink, SinkError, SinkFuture};
use confidant_actors::ids::NodeId;
use sqlx::Row;
use tokio::sync::Mutex;

use super::chain::{AuditRow, ChainHead, GENESIS};
use crate::storage::{Storage, StorageError};

/// Columns of `audit_entries`, in insert order.
pub(super) const COLUMNS: &str = "node_id, seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, session_id, request_id, \
     source_ip, action, resource_type, resource_id, patient_id, outcome, reason, prev_hash, hash";

/// Appends to one node's chain in the audit database. Cheap to clone; clones share the head.
#[derive(Clone)]
pub struct AuditStore {
    storage: Storage,
    node_id: NodeId,
    /// The chain's newest entry, loaded on first use and after any failed write (the write may
    /// have committed without our knowing, so the database is asked again).
    head: Arc<Mutex<Option<ChainHead>>>,
}

impl AuditStore {
    /// A store appending `node_id`'s events to `storage` (the migrated audit database).
    pub fn new(storage: Storage, node_id: NodeId) -> Self {
        Self { storage, node_id, head: Arc::new(Mutex::new(None)) }
    }

    /// The node whose chain this store extends.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Writes `events` after the chain head, in one transaction.
    async fn append_now(&self, events: Vec<AuditEvent>) -> Result<(), StorageError> {
        let mut head_slot = self.head.lock().await;
        let head = match *head_slot {
            Some(head) => head,
            None => load_head(&self.storage, &self.node_id).await?,
        };
        let mut rows = Vec::with_capacity(events.len());
        let mut next = head;
        for event in &events {
            let row = AuditRow::chained(event, next);
            next = row.as_head();
            rows.push(row);
        }

        *head_slot = None;
        let payload = serde_json::Value::Array(rows.iter().map(AuditRow::to_json_columns).collect()).to_string();
        let mut tx = self.storage.pool().begin().await?;
        sqlx::query(self.storage.backend().audit_append_sql()).bind(payload).execute(&mut *tx).await?;
        tx.commit().await?;
        *head_slot = Some(next);
        Ok(())
    }
}

impl AuditSink for AuditStore {
    fn append(&self, events: Vec<AuditEvent>) -> SinkFuture {
        let store = self.clone();
        Box::pin(async move {
            store.append_now(events).await.map_err(|error| {
                tracing::error!(%error, cause = ?std::error::Error::source(&error), "audit append failed");
                SinkError::Unavailable
            })
        })
    }
}

/// The newest entry of `node`'s chain, or [`ChainHead::EMPTY`].
pub(super) async fn load_head(storage: &Storage, node: &NodeId) -> Result<ChainHead, StorageError> {
    let row = sqlx::query("SELECT seq, hash FROM audit_entries WHERE node_id = $1 ORDER BY seq DESC LIMIT 1")
        .bind(node.to_string())
        .fetch_optional(storage.pool())
        .await?;
    let Some(row) = row else { return Ok(ChainHead::EMPTY) };
    let seq: i64 = row.try_get(0)?;
    let stored: Vec<u8> = row.try_get(1)?;
    let mut hash = GENESIS;
    if stored.len() == hash.len() {
        hash.copy_from_slice(&stored);
    }
    Ok(ChainHead { seq, hash })
}
