//! `AuditStore`: the audit database behind the [`AuditSink`] port. It appends each batch in one
//! statement (atomic by itself), extending this node's hash chain, and resolves only after the
//! commit.

use std::sync::Arc;

use confidant_actors::audit::{AuditEvent, AuditSink, SinkError, SinkFuture};
use confidant_actors::clock::now_ms;
use confidant_actors::ids::NodeId;
use sqlx::Row;
use tokio::sync::Mutex;

use ed25519_dalek::SigningKey;

use super::chain::{AuditRow, ChainHead};
use super::checkpoint::{Checkpoint, CheckpointLog};
use crate::storage::{Storage, StorageError};

/// Columns of `audit_entries`, in insert order.
pub(super) const COLUMNS: &str = "node_id, seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, session_id, request_id, \
     source_ip, action, resource_type, resource_id, patient_id, outcome, reason, prev_hash, hash";

/// Batches up to this many events are encoded on the writer's own thread (~0.25 ms at most).
const ENCODE_INLINE_UP_TO: usize = 128;

/// Appends to one node's chain in the audit database. Cheap to clone; clones share the head.
#[derive(Clone)]
pub struct AuditStore {
    storage: Storage,
    node_id: NodeId,
    /// The chain's newest entry and newest checkpointed seq, loaded on first use and after any
    /// failed write (the write may have committed without our knowing, so the database is asked
    /// again).
    head: Arc<Mutex<Option<Position>>>,
    checkpoints: Option<Checkpointer>,
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy)]
struct Position {
    head: ChainHead,
    checkpointed: i64,
}

/// Signs and records checkpoints.
#[derive(Clone)]
struct Checkpointer {
    key: Arc<SigningKey>,
    log: CheckpointLog,
    every_entries: i64,
}

impl AuditStore {
    /// A store appending `node_id`'s events to `storage` (the migrated audit database).
    pub fn new(storage: Storage, node_id: NodeId) -> Self {
        Self { storage, node_id, head: Arc::new(Mutex::new(None)), checkpoints: None }
    }

    /// Also signs a checkpoint with `key` after every `every_entries` new entries (and when
    /// asked by the writer's timer), storing it in the database and appending it to `log`.
    pub fn with_checkpoints(mut self, key: SigningKey, log: CheckpointLog, every_entries: u64) -> Self {
        let every_entries = i64::try_from(every_entries).unwrap_or(i64::MAX);
        self.checkpoints = Some(Checkpointer { key: Arc::new(key), log, every_entries });
        self
    }

    /// The position, from memory or the database.
    async fn position(&self, slot: &mut Option<Position>) -> Result<Position, StorageError> {
        if let Some(position) = *slot {
            return Ok(position);
        }
        let head = load_head(&self.storage, &self.node_id).await?;
        let checkpointed: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints WHERE node_id = $1")
            .bind(self.node_id.to_string())
            .fetch_one(self.storage.pool())
            .await?;
        Ok(Position { head, checkpointed: checkpointed.unwrap_or(0) })
    }

    /// Signs `position.head`, stores the checkpoint and appends it to the file. Returns the new
    /// position; on failure the old one (the next attempt retries).
    async fn seal(&self, position: Position) -> Result<Position, CheckpointError> {
        let Some(checkpointer) = &self.checkpoints else { return Ok(position) };
        if position.head.seq <= position.checkpointed {
            return Ok(position);
        }
        let at_ms = now_ms();
        let checkpoint = Checkpoint::sign(&checkpointer.key, &self.node_id.to_string(), position.head, at_ms);
        let mut conn = self.storage.writer().connection().await.map_err(CheckpointError::Store)?;
        // A retry after the file append failed finds the row already there; the file gets it now.
        sqlx::query(
            "INSERT INTO audit_checkpoints (node_id, seq, hash, at_ms, signature) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (node_id, seq) DO NOTHING",
        )
        .bind(checkpoint.node_id.clone())
        .bind(checkpoint.seq)
        .bind(checkpoint.hash.to_vec())
        .bind(checkpoint.at_ms)
        .bind(checkpoint.signature.to_vec())
        .execute(&mut *conn)
        .await
        .map_err(|e| CheckpointError::Store(e.into()))?;
        conn.keep();
        checkpointer.log.append(&checkpoint).await.map_err(CheckpointError::File)?;
        Ok(Position { head: position.head, checkpointed: position.head.seq })
    }

    /// The node whose chain this store extends.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Writes `events` after the chain head, in one statement (atomic by itself).
    async fn append_now(&self, events: Vec<AuditEvent>) -> Result<(), StorageError> {
        let mut slot = self.head.lock().await;
        let position = self.position(&mut slot).await?;
        let head = position.head;
        // Hashing and encoding cost ~2 µs an event. A large batch is encoded off the async
        // thread, so the writer keeps taking events meanwhile; a small one is cheaper to encode
        // here than the two thread switches a blocking task costs (on a busy core, each waits
        // for the CPU).
        let (next, payload) = if events.len() <= ENCODE_INLINE_UP_TO {
            encode_batch(&events, head)
        } else {
            tokio::task::spawn_blocking(move || encode_batch(&events, head)).await.map_err(|_| StorageError::Encode)?
        };
        *slot = None;
        let mut conn = self.storage.writer().connection().await?;
        sqlx::query(self.storage.backend().audit_append_sql()).bind(payload).execute(&mut *conn).await?;
        conn.keep();
        let mut position = Position { head: next, checkpointed: position.checkpointed };
        *slot = Some(position);
        if self.checkpoints.as_ref().is_some_and(|c| next.seq - position.checkpointed >= c.every_entries) {
            // The events are durable already; a failed checkpoint is logged and retried later.
            match self.seal(position).await {
                Ok(sealed) => position = sealed,
                Err(error) => tracing::error!(%error, "audit checkpoint failed"),
            }
            *slot = Some(position);
        }
        Ok(())
    }

    /// Seals new entries with a checkpoint (the writer's timer and shutdown call this).
    async fn checkpoint_now(&self) -> Result<(), CheckpointError> {
        let mut slot = self.head.lock().await;
        let position = self.position(&mut slot).await.map_err(CheckpointError::Store)?;
        *slot = Some(self.seal(position).await?);
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

    fn checkpoint(&self) -> SinkFuture {
        let store = self.clone();
        Box::pin(async move {
            store.checkpoint_now().await.map_err(|error| {
                tracing::error!(%error, "audit checkpoint failed");
                SinkError::Unavailable
            })
        })
    }
}

/// Why a checkpoint was not made.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The audit database refused it.
    #[error("cannot store the checkpoint")]
    Store(#[source] StorageError),
    /// The checkpoint file cannot be written.
    #[error("cannot append to the checkpoint file")]
    File(#[source] std::io::Error),
}

/// Chains `events` after `head`; returns the new head and the batch's JSON parameter.
fn encode_batch(events: &[AuditEvent], head: ChainHead) -> (ChainHead, String) {
    let mut payload = String::with_capacity(events.len() * 640 + 2);
    payload.push('[');
    let mut next = head;
    for (i, event) in events.iter().enumerate() {
        let row = AuditRow::chained(event, next);
        next = row.as_head();
        if i > 0 {
            payload.push(',');
        }
        row.write_json_columns(&mut payload);
    }
    payload.push(']');
    (next, payload)
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
    Ok(ChainHead::from_stored(seq, &stored))
}
