//! `AuditStore`: the audit database behind the [`AuditSink`] port. It appends each batch in one
//! statement (atomic by itself), extending this node's hash chain, and resolves only after the
//! commit.
//!
//! Checkpoints are sealed beside the appends, not inside them. The entries a checkpoint vouches
//! for are durable before it is made, so nothing waits for it: a seal costs a signature, a commit
//! and a flush of the checkpoint file, and made inline it held up the batch that crossed the mark
//! (every `checkpoint_every_entries` entries, on the messaging path about one batch in a
//! hundred) and every batch queued behind it. One seal runs at a time, under the seal lock, so
//! checkpoints reach the database and the file in the order of their seqs.
//!
//! Every SQL statement on the audit database is in this folder: besides the appends here,
//! `chains.rs` reads `audit_entries` back, `checkpoints.rs` reads `audit_checkpoints`,
//! `purges.rs` cuts a chain's prefix and keeps `audit_purges`, `pages.rs` reads a chain page by
//! page for verification, `keys.rs` registers the keys that sign, and [`role`] sets up the
//! insert-only PostgreSQL role. `witness.rs` is the one file here on the MAIN store: the heads it
//! witnesses.

use std::sync::Arc;

use confidant_actors::audit::{AuditEvent, AuditSink, SinkError, SinkFuture};
use confidant_actors::clock::now_ms;
use confidant_actors::ids::NodeId;
use sqlx::Row;
use tokio::sync::{Mutex, OwnedMutexGuard};

use ed25519_dalek::SigningKey;

use super::chain::{AuditRow, ChainHead};
use super::checkpoint::{Checkpoint, CheckpointLog};
use super::witness::Witnesses;
use crate::storage::{Storage, StorageError};

pub(super) mod chains;
pub(super) mod checkpoints;
pub(super) mod keys;
pub(super) mod pages;
pub(super) mod purges;
pub mod role;
pub(super) mod witness;

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
    /// The chain's newest entry and the newest seq a seal was started for, loaded on first use
    /// and after any failed write (the write may have committed without our knowing, so the
    /// database is asked again).
    head: Arc<Mutex<Option<Position>>>,
    checkpoints: Option<Checkpointer>,
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy)]
struct Position {
    head: ChainHead,
    /// The newest seq sealed or being sealed: the next seal is due `every_entries` after it.
    seal_started: i64,
}

/// Signs and records checkpoints.
#[derive(Clone)]
struct Checkpointer {
    key: Arc<SigningKey>,
    log: CheckpointLog,
    witnesses: Witnesses,
    every_entries: i64,
    /// The seal lock, holding the newest seq sealed (loaded on first use).
    sealed: Arc<Mutex<Option<i64>>>,
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
        self.checkpoints = Some(Checkpointer {
            key: Arc::new(key),
            log,
            witnesses: Witnesses::default(),
            every_entries,
            sealed: Arc::new(Mutex::new(None)),
        });
        self
    }

    /// Also gives every checkpoint to `witnesses` (after [`Self::with_checkpoints`]).
    pub fn witnessed_by(mut self, witnesses: Witnesses) -> Self {
        if let Some(checkpointer) = &mut self.checkpoints {
            checkpointer.witnesses = witnesses;
        }
        self
    }

    /// The position, from memory or the database.
    async fn position(&self, slot: &mut Option<Position>) -> Result<Position, StorageError> {
        if let Some(position) = *slot {
            return Ok(position);
        }
        let head = load_head(&self.storage, &self.node_id).await?;
        Ok(Position { head, seal_started: self.last_sealed().await? })
    }

    /// The newest seq this node has sealed, from the database (0: none).
    async fn last_sealed(&self) -> Result<i64, StorageError> {
        let sealed: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_checkpoints WHERE node_id = $1")
            .bind(self.node_id.to_string())
            .fetch_one(self.storage.pool())
            .await?;
        Ok(sealed.unwrap_or(0))
    }

    /// Signs `head` with `checkpointer` unless a seal already covers it, stores the checkpoint
    /// and appends it to the file. `sealed` is the seal lock, held throughout; on failure it
    /// keeps the old seq, so the next seal retries.
    async fn seal(
        &self,
        checkpointer: &Checkpointer,
        sealed: &mut Option<i64>,
        head: ChainHead,
    ) -> Result<(), CheckpointError> {
        let last = match *sealed {
            Some(last) => last,
            None => {
                let last = self.last_sealed().await.map_err(CheckpointError::Store)?;
                self.complete_file(checkpointer, last).await?;
                last
            }
        };
        *sealed = Some(last);
        if head.seq <= last {
            return Ok(());
        }
        let checkpoint = Checkpoint::sign(&checkpointer.key, &self.node_id.to_string(), head, now_ms());
        // A retry after the file append failed finds the row already there; the file gets it now.
        let insert = sqlx::query(
            "INSERT INTO audit_checkpoints (node_id, seq, hash, at_ms, signature) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (node_id, seq) DO NOTHING",
        )
        .bind(checkpoint.node_id.clone())
        .bind(checkpoint.seq)
        .bind(checkpoint.hash.to_vec())
        .bind(checkpoint.at_ms)
        .bind(checkpoint.signature.to_vec());
        if self.storage.backend().single_writer() {
            // One writer at a time: a second connection would make the appends wait on the
            // database's lock (polled) instead of on the writer's connection (woken).
            let mut conn = self.storage.writer().connection().await.map_err(CheckpointError::Store)?;
            insert.execute(&mut *conn).await.map_err(|e| CheckpointError::Store(e.into()))?;
            conn.keep();
        } else {
            insert.execute(self.storage.pool()).await.map_err(|e| CheckpointError::Store(e.into()))?;
        }
        checkpointer.log.append(&checkpoint).await.map_err(CheckpointError::File)?;
        *sealed = Some(head.seq);
        checkpointer.witnesses.record(&checkpoint).await;
        Ok(())
    }

    /// A seal stores its checkpoint in the table, then appends it to the file: a node stopped
    /// between the two left the newest checkpoint in the table only, which verification would
    /// report as a removed line. The first seal of a run copies it to the file (and the
    /// witnesses) first.
    async fn complete_file(&self, checkpointer: &Checkpointer, last: i64) -> Result<(), CheckpointError> {
        if last == 0 {
            return Ok(());
        }
        let node = self.node_id.to_string();
        let log = checkpointer.log.clone();
        let newest_in_file = {
            let node = node.clone();
            tokio::task::spawn_blocking(move || log.newest(&node))
                .await
                .map_err(|e| CheckpointError::File(std::io::Error::other(e)))?
                .map_err(CheckpointError::File)?
        };
        if newest_in_file.is_some_and(|c| c.seq >= last) {
            return Ok(());
        }
        let Some(checkpoint) =
            checkpoints::stored_checkpoint(&self.storage, &node, last).await.map_err(CheckpointError::Store)?
        else {
            return Ok(());
        };
        tracing::warn!(seq = last, "the last run stopped between storing a checkpoint and filing it; filing it now");
        checkpointer.log.append(&checkpoint).await.map_err(CheckpointError::File)?;
        checkpointer.witnesses.record(&checkpoint).await;
        Ok(())
    }

    /// Seals `head` in the background, holding the seal lock `guard` (taken by the caller, so a
    /// later [`Self::settled`] waits for this seal).
    fn seal_in_background(
        &self,
        checkpointer: &Checkpointer,
        mut guard: OwnedMutexGuard<Option<i64>>,
        head: ChainHead,
    ) {
        let (store, checkpointer) = (self.clone(), checkpointer.clone());
        tokio::spawn(async move {
            // The entries are durable already; a failed seal is logged and the next one retries.
            if let Err(error) = store.seal(&checkpointer, &mut guard, head).await {
                tracing::error!(%error, seq = head.seq, "audit checkpoint failed");
            }
        });
    }

    /// Waits until the seal in progress, if any, is stored and in the checkpoint file.
    pub async fn settled(&self) {
        if let Some(checkpointer) = &self.checkpoints {
            drop(checkpointer.sealed.lock().await);
        }
    }

    /// Registers `public_key` as the key this chain signs with (`audit_keys`), so verification
    /// anywhere finds it.
    pub async fn register_key(&self, public_key: &[u8; 32]) -> Result<(), StorageError> {
        keys::register_key(&self.storage, &self.node_id.to_string(), public_key, now_ms()).await
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
        let mut seal_started = position.seal_started;
        if let Some(checkpointer) = &self.checkpoints
            && next.seq - seal_started >= checkpointer.every_entries
            // Busy: a seal is still running; a later batch starts the next one.
            && let Ok(guard) = checkpointer.sealed.clone().try_lock_owned()
        {
            self.seal_in_background(checkpointer, guard, next);
            seal_started = next.seq;
        }
        *slot = Some(Position { head: next, seal_started });
        Ok(())
    }

    /// Seals new entries with a checkpoint (the writer's timer and shutdown call this), after
    /// the seal in progress, if any. Appends go on meanwhile; the checkpoint covers the chain
    /// as it stood when this was called.
    async fn checkpoint_now(&self) -> Result<(), CheckpointError> {
        let Some(checkpointer) = &self.checkpoints else { return Ok(()) };
        let head = {
            let mut slot = self.head.lock().await;
            let position = self.position(&mut slot).await.map_err(CheckpointError::Store)?;
            *slot = Some(position);
            position.head
        };
        let mut sealed = checkpointer.sealed.lock().await;
        self.seal(checkpointer, &mut sealed, head).await
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
