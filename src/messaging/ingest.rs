//! Group commit for application messages: messages arriving while a batch is being written go
//! out together in the next transaction, as audit events do (`AuditWriter`). One transaction
//! per message tops out near a thousand messages a second; a batch costs one commit and, however
//! many conversations it holds, one conditional `last_seq` update for all of them and one insert
//! for all its messages (on PostgreSQL the two are one statement: `Backend::message_batch_sql`).
//!
//! A message may be committed only once its audit record is durable (fail closed). The two
//! writes go to different databases, so they cannot share a transaction; instead the batch's
//! audit records go to the audit writer together, as one group ([`record_all`]: one message,
//! one answer, one audit transaction, all durable or none), and the batch commits only once
//! they are. On PostgreSQL the batch's statements run meanwhile, so the audit commit and the
//! message statements overlap; SQLite allows one writing transaction at a time, so there the
//! batch waits first and then writes (`Backend::single_writer`). While a batch commits, the
//! messages that queued up meanwhile already form the next batch and its records go out, so the
//! audit commit of one batch and the message commit of the one before wait on the disk together.
//! If the records are not made, every message of the batch is answered `Unavailable` and
//! nothing is stored.
//!
//! Recording here rather than in each sender's session also means a message is audited only
//! once it has passed every check before storage, and that a batch costs the audit writer one
//! group instead of a message and an answer per event (on one core those cross-thread wake-ups
//! were a good part of a message's cost).
//!
//! Ordering is unchanged: within a batch each conversation's messages get consecutive seqs in
//! arrival order, and a conversation's seq moves only by the conditional update on its epoch,
//! so a message encrypted in an epoch that is over is refused (answered stale) as before.
//!
//! The batch's statements, and the JSON rows they take, are in `store/messages.rs` (`append`).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix::Addr;
use confidant_actors::audit::{AuditError, AuditEvent, AuditWriter, record_all};
use confidant_actors::ids::{ConversationId, DeviceId};
use sqlx::Connection as _;
use tokio::sync::{mpsc, oneshot};

use super::error::MessagingError;
use super::store::messages::{self as rows, NewMessage};
use crate::auditor::ACK_TIMEOUT;
use crate::storage::{Backend, Storage};

/// At most this many messages per transaction.
pub const MAX_BATCH: usize = 1024;
/// Messages waiting for a batch, at most; a full queue makes senders wait (backpressure).
const QUEUE: usize = 8192;

/// The answer to one message: its seq, or `None` when its epoch is over.
type Reply = oneshot::Sender<Result<Option<u64>, MessagingError>>;

/// One message to append, and where its answer goes.
struct Job {
    message: NewMessage,
    reply: Reply,
}

/// The batching writer of one node, started on first use (it needs the runtime).
#[derive(Clone)]
pub struct Ingest {
    storage: Storage,
    audit: Addr<AuditWriter>,
    queue: std::sync::Arc<OnceLock<mpsc::Sender<(Job, AuditEvent)>>>,
}

impl Ingest {
    /// A writer appending to `storage`, recording each message's `audit` event first.
    pub fn new(storage: Storage, audit: Addr<AuditWriter>) -> Self {
        Self { storage, audit, queue: std::sync::Arc::new(OnceLock::new()) }
    }

    /// Appends an application message encrypted in `epoch`, recorded as `event` in the audit
    /// trail before it is committed: its seq once durable, or `None` if the conversation is no
    /// longer in that epoch. `Unavailable` if the audit record was not made (nothing is stored).
    pub async fn append(
        &self,
        conversation: ConversationId,
        epoch: u64,
        sender: DeviceId,
        message: Vec<u8>,
        at_ms: i64,
        event: AuditEvent,
    ) -> Result<Option<u64>, MessagingError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(self.storage.clone(), self.audit.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let job = Job { message: NewMessage { conversation, epoch, sender, ciphertext: message, at_ms }, reply };
        queue.send((job, event)).await.map_err(|_| MessagingError::Unavailable)?;
        answer.await.map_err(|_| MessagingError::Unavailable)?
    }
}

/// A batch whose audit records are on their way to the audit writer.
struct Batch {
    messages: Vec<NewMessage>,
    /// Where each message's answer goes, in the same order.
    replies: Vec<Reply>,
    audited: Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send>>,
}

impl Batch {
    /// Takes every job in `queued` and hands their events to the audit writer now.
    fn record(audit: &Addr<AuditWriter>, queued: &mut Vec<(Job, AuditEvent)>) -> Self {
        let mut messages = Vec::with_capacity(queued.len());
        let mut replies = Vec::with_capacity(queued.len());
        let mut events = Vec::with_capacity(queued.len());
        for (job, event) in queued.drain(..) {
            messages.push(job.message);
            replies.push(job.reply);
            events.push(event);
        }
        Self { messages, replies, audited: Box::pin(record_all(audit, events, ACK_TIMEOUT)) }
    }
}

/// Takes what is queued (at least one), audits and writes it, answers, repeats. While a batch's
/// transaction commits, what queued up meanwhile is already sent to the audit writer: the two
/// commits wait on the disk together instead of one after the other.
async fn run(storage: Storage, audit: Addr<AuditWriter>, mut rx: mpsc::Receiver<(Job, AuditEvent)>) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    let mut next: Option<Batch> = None;
    let backend = storage.backend();
    loop {
        let batch = match next.take() {
            Some(batch) => batch,
            None if rx.recv_many(&mut queued, MAX_BATCH).await > 0 => Batch::record(&audit, &mut queued),
            None => return,
        };
        let mut conn = match storage.writer().connection().await {
            Ok(conn) => conn,
            Err(error) => {
                answer(batch.replies, Err(error.into()));
                continue;
            }
        };
        let written = match prepare(&mut conn, backend, &batch.messages, batch.audited).await {
            Ok((tx, seqs)) => {
                while queued.len() < MAX_BATCH
                    && let Ok(job) = rx.try_recv()
                {
                    queued.push(job);
                }
                if !queued.is_empty() {
                    next = Some(Batch::record(&audit, &mut queued));
                }
                tx.commit().await.map(|()| seqs).map_err(MessagingError::from)
            }
            Err(error) => Err(error),
        };
        // A connection the database failed on is dropped (the next batch connects anew); one
        // whose batch only lacked its audit records is fine, its transaction rolled back.
        if !matches!(written, Err(MessagingError::Storage(_))) {
            conn.keep();
        }
        answer(batch.replies, written);
    }
}

/// Answers each message of a batch with its seq, or every one `Unavailable` if the batch failed.
fn answer(replies: Vec<Reply>, written: Result<Vec<Option<u64>>, MessagingError>) {
    match written {
        Ok(seqs) => {
            for (reply, seq) in replies.into_iter().zip(seqs) {
                let _ = reply.send(Ok(seq));
            }
        }
        Err(error) => {
            // A batch the audit trail did not take was logged by the audit writer.
            if !matches!(error, MessagingError::Unavailable) {
                tracing::error!(%error, messages = replies.len(), "a message batch could not be written");
            }
            for reply in replies {
                let _ = reply.send(Err(MessagingError::Unavailable));
            }
        }
    }
}

/// Writes `messages` in a transaction left open for the caller to commit, once `audited` (their
/// records) resolved: the transaction and the seq of each message, in order (`None`: its epoch
/// is over). `Unavailable`: the records were not made and nothing was written.
async fn prepare<'c>(
    conn: &'c mut sqlx::AnyConnection,
    backend: Backend,
    messages: &[NewMessage],
    audited: impl Future<Output = Result<(), AuditError>>,
) -> Result<(sqlx::Transaction<'c, sqlx::Any>, Vec<Option<u64>>), MessagingError> {
    let audited = async { audited.await.map_err(|_| MessagingError::Unavailable) };
    let statements = async {
        let mut tx = conn.begin().await?;
        let seqs = rows::append(&mut tx, backend, messages).await?;
        Ok::<_, MessagingError>((tx, seqs))
    };
    if backend.single_writer() {
        audited.await?;
        statements.await
    } else {
        let (audited, written) = tokio::join!(audited, statements);
        // On error, dropping the transaction rolls it back. A database error is reported first:
        // it tells the caller the connection may be gone.
        let written = written?;
        audited?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use confidant_actors::audit::WriterLimits;

    use super::MAX_BATCH;

    #[test]
    fn a_full_batch_of_records_fits_in_one_audit_transaction() {
        // The audit writer refuses a group larger than its batch: every message would fail.
        assert!(MAX_BATCH <= WriterLimits::default().max_batch);
    }
}
