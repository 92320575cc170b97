//! Group commit for application messages: messages arriving while a batch is being written go
//! out together in the next transaction, as audit events do (`AuditWriter`). One transaction
//! per message tops out near a thousand messages a second; a batch costs one commit, one
//! conditional `last_seq` update per conversation in it, and one insert for all its messages.
//!
//! A message may be committed only once its audit record is durable (fail closed). The two
//! writes go to different databases, so they cannot share a transaction; instead each job
//! carries the audit's outcome as it will be known ([`Audited`]), and the batch waits for every
//! outcome before it commits. On PostgreSQL the batch's statements run meanwhile, so the audit
//! commit and the message statements overlap; SQLite allows one writing transaction at a time,
//! so there the batch waits first and then writes (`Backend::single_writer`). A message whose
//! audit failed is answered `Unavailable`, and the batch is written again without it.
//!
//! Ordering is unchanged: within a batch each conversation's messages get consecutive seqs in
//! arrival order, and a conversation's seq moves only by the conditional update on its epoch,
//! so a message encrypted in an epoch that is over is refused (answered stale) as before.

use std::collections::HashMap;
use std::sync::OnceLock;

use confidant_actors::ids::{ConversationId, DeviceId};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::MessagingError;
use crate::storage::{Storage, StorageError, json_rows};

/// At most this many messages per transaction.
pub const MAX_BATCH: usize = 1024;
/// Messages waiting for a batch, at most; a full queue makes senders wait (backpressure).
const QUEUE: usize = 8192;

/// Whether a message's audit record is durable, as its writer will say. A writer that goes
/// away without saying counts as "no".
pub type Audited = oneshot::Receiver<bool>;

/// One message to append.
struct Job {
    conversation: ConversationId,
    epoch: u64,
    sender: DeviceId,
    message: Vec<u8>,
    at_ms: i64,
    audited: Gate,
    /// The message's seq, or `None` when its epoch is over.
    reply: oneshot::Sender<Result<Option<u64>, MessagingError>>,
}

/// A job's audit outcome, awaited once and then remembered (a batch written again after one
/// of its audits failed does not wait again).
enum Gate {
    Waiting(Audited),
    Known(bool),
}

impl Gate {
    async fn passed(&mut self) -> bool {
        if let Gate::Waiting(outcome) = self {
            *self = Gate::Known(outcome.await.unwrap_or(false));
        }
        matches!(self, Gate::Known(true))
    }
}

/// Whether every job's audit record is durable; waits for all of them, so that afterwards each
/// job's own outcome is known.
async fn all_audited(jobs: &mut [Job]) -> bool {
    let mut all = true;
    for job in jobs {
        all &= job.audited.passed().await;
    }
    all
}

/// The batching writer of one node, started on first use (it needs the runtime).
#[derive(Clone)]
pub struct Ingest {
    storage: Storage,
    queue: std::sync::Arc<OnceLock<mpsc::Sender<Job>>>,
}

impl Ingest {
    /// A writer appending to `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage, queue: std::sync::Arc::new(OnceLock::new()) }
    }

    /// Appends an application message encrypted in `epoch` once `audited` says its audit record
    /// is durable: its seq once durable, or `None` if the conversation is no longer in that
    /// epoch. `Unavailable` if the audit record was not made (nothing is stored).
    pub async fn append(
        &self,
        conversation: ConversationId,
        epoch: u64,
        sender: DeviceId,
        message: Vec<u8>,
        at_ms: i64,
        audited: Audited,
    ) -> Result<Option<u64>, MessagingError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.storage.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let job = Job { conversation, epoch, sender, message, at_ms, audited: Gate::Waiting(audited), reply };
        queue.send(job).await.map_err(|_| MessagingError::Unavailable)?;
        answer.await.map_err(|_| MessagingError::Unavailable)?
    }
}

/// Takes what is queued (at least one), writes it in one transaction, answers, repeats.
async fn run(storage: Storage, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut jobs = std::mem::take(&mut batch);
        while !jobs.is_empty() {
            match write(&storage, &mut jobs).await {
                Ok(Some(seqs)) => {
                    for (job, seq) in jobs.drain(..).zip(seqs) {
                        let _ = job.reply.send(Ok(seq));
                    }
                }
                Ok(None) => {
                    // Nothing was committed; the messages without an audit record are refused
                    // and the others written again.
                    let (audited, refused): (Vec<Job>, Vec<Job>) =
                        jobs.into_iter().partition(|job| matches!(job.audited, Gate::Known(true)));
                    for job in refused {
                        let _ = job.reply.send(Err(MessagingError::Unavailable));
                    }
                    jobs = audited;
                }
                Err(error) => {
                    tracing::error!(%error, messages = jobs.len(), "a message batch could not be written");
                    for job in jobs.drain(..) {
                        let _ = job.reply.send(Err(MessagingError::Unavailable));
                    }
                }
            }
        }
    }
}

/// Writes `jobs` if every one's audit record is durable: the seq of each, in order (`None`:
/// its epoch is over). `Ok(None)`: some audit failed and nothing was written.
async fn write(storage: &Storage, jobs: &mut [Job]) -> Result<Option<Vec<Option<u64>>>, MessagingError> {
    let single_writer = storage.backend().single_writer();
    if single_writer && !all_audited(jobs).await {
        return Ok(None);
    }
    // Runs of one conversation and epoch, in order of first arrival (a batch may hold a
    // thousand conversations: found by key, not by scanning).
    let mut groups: Vec<((ConversationId, u64), Vec<usize>)> = Vec::new();
    let mut by_key: HashMap<(ConversationId, u64), usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let group = *by_key.entry((job.conversation, job.epoch)).or_insert_with(|| {
            groups.push(((job.conversation, job.epoch), Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push(i);
    }
    let mut seqs = vec![None; jobs.len()];
    let mut rows = String::from("[");
    let mut tx = storage.writer().begin().await?;
    for ((conversation, epoch), members) in &groups {
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        let moved = sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + $1 WHERE conversation_id = $2 AND epoch = $3 RETURNING last_seq",
        )
        .bind(count)
        .bind(conversation.to_string())
        .bind(i64::try_from(*epoch).unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = moved else { continue };
        let last: i64 = row.try_get(0)?;
        for (n, &i) in members.iter().enumerate() {
            let seq = last - count + 1 + i64::try_from(n).unwrap_or(0);
            seqs[i] = u64::try_from(seq).ok();
            let job = &jobs[i];
            if rows.len() > 1 {
                rows.push(',');
            }
            push_row(&mut rows, job, seq);
        }
    }
    rows.push(']');
    if rows.len() > 2 {
        sqlx::query(storage.backend().message_append_sql()).bind(rows).execute(&mut *tx).await?;
    }
    if !single_writer && !all_audited(jobs).await {
        // Dropping the transaction rolls it back.
        return Ok(None);
    }
    tx.commit().await.map_err(|e| MessagingError::Storage(StorageError::Query(e)))?;
    Ok(Some(seqs))
}

/// One message as the JSON row `Backend::message_append_sql` expands: ids are UUID text and
/// the ciphertext hex, so nothing needs escaping.
fn push_row(out: &mut String, job: &Job, seq: i64) {
    use std::fmt::Write as _;
    let _ = write!(out, "[\"{}\",{seq},{},\"{}\",{},\"", job.conversation, job.epoch, job.sender, job.at_ms);
    json_rows::push_hex(out, &job.message);
    out.push_str("\"]");
}
