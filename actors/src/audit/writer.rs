//! `AuditWriter`: exactly one per node. Every actor and handler sends it [`Append`] and awaits
//! the answer, which comes only once the event is durable in the audit store. A handler about to
//! return PHI waits for that answer first and fails (503) if it is an error: no audit record,
//! no access.
//!
//! Group commit: while one batch is being written, newly arriving events queue up; when the
//! write finishes they all go out together in the next transaction. Under light load a batch is
//! one event and the latency is one commit; under heavy load batches grow and throughput follows.
//! A component that batches its own work (the message ingest) sends its batch's events as one
//! [`AppendAll`]: one message and one answer instead of one per event, and the events go into
//! the same transaction, so they are durable together or not at all.
//!
//! Back-pressure, in two places:
//! - the mailbox holds at most [`WriterLimits::mailbox`] messages; `send` waits while it is full
//!   (never use `do_send`, which would bypass the bound);
//! - at most [`WriterLimits::max_pending`] events wait for a write; beyond that, [`Append`] is
//!   answered at once with [`AuditError::Overloaded`], and the caller fails closed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::event::AuditEvent;
use crate::ids::NodeId;
use crate::lifecycle::Shutdown;

/// What the audit store's append returns: resolves once the batch is durable.
pub type SinkFuture = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// The port the writer needs: durable, ordered, all-or-nothing append of a batch. The server
/// crate implements it on the audit database, with the hash chain.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends `events` in order, in one transaction. Resolves `Ok` only once they are durable;
    /// on `Err` none of them was stored.
    fn append(&self, events: Vec<AuditEvent>) -> SinkFuture;

    /// Seals what has been appended so far (a signed checkpoint), if anything is new. Called
    /// every [`WriterLimits::checkpoint_every`] and at shutdown.
    fn checkpoint(&self) -> SinkFuture {
        Box::pin(async { Ok(()) })
    }
}

/// Why the audit store did not take a batch.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SinkError {
    /// The store is unreachable, full or refused the write.
    #[error("the audit store is unavailable")]
    Unavailable,
}

/// Why an event was not recorded. Every variant means "not durable": the caller must not go
/// on to return or change PHI.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// The audit store failed the write (dependency down).
    #[error("the audit store is unavailable")]
    Unavailable,
    /// Too many events are waiting for the store (back-pressure).
    #[error("the audit writer is overloaded")]
    Overloaded,
    /// No acknowledgement arrived within the caller's deadline.
    #[error("the audit writer did not acknowledge in time")]
    Timeout,
    /// The event names another node; each node appends only to its own chain (our bug).
    #[error("the event belongs to another node's chain")]
    ForeignNode,
    /// The writer has stopped (the node is shutting down).
    #[error("the audit writer has stopped")]
    Stopped,
}

/// Records one event; answered once it is durable.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), AuditError>")]
pub struct Append {
    /// The event to record.
    pub event: AuditEvent,
}

/// Records several events, in order, in one transaction: all durable or none. Answered once
/// they are durable. At most [`WriterLimits::max_batch`] events.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), AuditError>")]
pub struct AppendAll {
    /// The events to record.
    pub events: Vec<AuditEvent>,
}

/// Sizes of the writer's queues.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Most events written in one transaction.
    pub max_batch: usize,
    /// Most events waiting for a write before new ones are refused.
    pub max_pending: usize,
    /// Mailbox capacity; senders wait while it is full.
    pub mailbox: usize,
    /// How often the sink is asked to seal new entries with a checkpoint.
    pub checkpoint_every: Duration,
}

impl Default for WriterLimits {
    fn default() -> Self {
        Self { max_batch: 4096, max_pending: 65_536, mailbox: 4096, checkpoint_every: Duration::from_secs(60) }
    }
}

type Ack = oneshot::Sender<Result<(), AuditError>>;

/// Events from one [`Append`] or [`AppendAll`], written in one batch, and their sender.
struct Waiting {
    events: Vec<AuditEvent>,
    ack: Ack,
}

/// The single audit writer of a node. See the module documentation.
pub struct AuditWriter {
    node_id: NodeId,
    sink: Arc<dyn AuditSink>,
    limits: WriterLimits,
    pending: VecDeque<Waiting>,
    /// Events in `pending`.
    pending_events: usize,
    in_flight: bool,
    /// Shutdown requests waiting for the queue to drain.
    drained: Vec<oneshot::Sender<()>>,
}

impl AuditWriter {
    /// A writer appending `node_id`'s events to `sink`.
    pub fn new(node_id: NodeId, sink: Arc<dyn AuditSink>, limits: WriterLimits) -> Self {
        Self {
            node_id,
            sink,
            limits,
            pending: VecDeque::new(),
            pending_events: 0,
            in_flight: false,
            drained: Vec::new(),
        }
    }

    /// Queues `events` to be written together; the answer comes once they are durable.
    fn enqueue(&mut self, events: Vec<AuditEvent>, ctx: &mut Context<Self>) -> ResponseFuture<Result<(), AuditError>> {
        if events.iter().any(|event| event.node_id != self.node_id) {
            return Box::pin(async { Err(AuditError::ForeignNode) });
        }
        if events.len() > self.limits.max_batch {
            return Box::pin(async { Err(AuditError::Overloaded) });
        }
        if events.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        if self.pending_events + events.len() > self.limits.max_pending {
            return Box::pin(async { Err(AuditError::Overloaded) });
        }
        let (ack, acked) = oneshot::channel();
        self.pending_events += events.len();
        self.pending.push_back(Waiting { events, ack });
        self.flush(ctx);
        Box::pin(async move { acked.await.unwrap_or(Err(AuditError::Stopped)) })
    }

    /// Starts writing the next batch, if there is one and no write is in flight.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        if self.pending.is_empty() {
            for waiter in self.drained.drain(..) {
                let _ = waiter.send(());
            }
            return;
        }
        // Whole senders' groups, as many as fit (a group is never split across batches).
        let mut events = Vec::new();
        let mut acks = Vec::new();
        while let Some(next) = self.pending.front() {
            if !events.is_empty() && events.len() + next.events.len() > self.limits.max_batch {
                break;
            }
            let Some(Waiting { events: group, ack }) = self.pending.pop_front() else { break };
            self.pending_events -= group.len();
            events.extend(group);
            acks.push(ack);
        }
        self.in_flight = true;
        let write = self.sink.append(events);
        ctx.spawn(write.into_actor(self).map(move |result, writer, ctx| {
            let answer = result.map_err(|SinkError::Unavailable| AuditError::Unavailable);
            if answer.is_err() {
                tracing::error!(
                    senders = acks.len(),
                    "audit batch could not be written; its senders are told to fail closed"
                );
            }
            for ack in acks {
                // A sender that gave up waiting has dropped its receiver; nothing to tell it.
                let _ = ack.send(answer);
            }
            writer.in_flight = false;
            writer.flush(ctx);
        }));
    }
}

impl Actor for AuditWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.limits.mailbox);
        ctx.run_interval(self.limits.checkpoint_every, |writer, ctx| {
            ctx.spawn(writer.sink.checkpoint().into_actor(writer).map(|result, _, _| {
                if result.is_err() {
                    tracing::error!("periodic audit checkpoint failed; the next one retries");
                }
            }));
        });
    }
}

impl Handler<Append> for AuditWriter {
    type Result = ResponseFuture<Result<(), AuditError>>;

    fn handle(&mut self, msg: Append, ctx: &mut Self::Context) -> Self::Result {
        self.enqueue(vec![msg.event], ctx)
    }
}

impl Handler<AppendAll> for AuditWriter {
    type Result = ResponseFuture<Result<(), AuditError>>;

    fn handle(&mut self, msg: AppendAll, ctx: &mut Self::Context) -> Self::Result {
        self.enqueue(msg.events, ctx)
    }
}

impl Handler<Shutdown> for AuditWriter {
    type Result = ResponseFuture<()>;

    /// Answers once every event accepted so far has been written (or has failed) and sealed
    /// with a final checkpoint.
    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let (done, drained) = oneshot::channel();
        self.drained.push(done);
        self.flush(ctx);
        let sink = self.sink.clone();
        Box::pin(async move {
            let _ = drained.await;
            if sink.checkpoint().await.is_err() {
                tracing::error!("final audit checkpoint failed");
            }
        })
    }
}

/// Test probe: how many events wait, and whether a write is in flight.
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "(usize, bool)")]
struct Queued;

#[cfg(test)]
impl Handler<Queued> for AuditWriter {
    type Result = MessageResult<Queued>;

    fn handle(&mut self, _msg: Queued, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult((self.pending_events, self.in_flight))
    }
}

/// Sends `event` to `writer` and waits, at most `deadline`, until it is durable. The one way
/// handlers record an event: every failure comes back as an [`AuditError`] to fail closed on.
pub async fn record(writer: &Addr<AuditWriter>, event: AuditEvent, deadline: Duration) -> Result<(), AuditError> {
    answered(tokio::time::timeout(deadline, writer.send(Append { event })).await)
}

/// [`record`] for several events at once: one transaction, all durable or none. The group is
/// handed to the writer now, not when the answer is first awaited (the deadline counts from
/// then), so a caller can start its records and do other work while they commit: the message
/// ingest records its next batch while the previous one's transaction commits.
pub fn record_all(
    writer: &Addr<AuditWriter>,
    events: Vec<AuditEvent>,
    deadline: Duration,
) -> impl Future<Output = Result<(), AuditError>> + Send + 'static {
    let answer = writer.send(AppendAll { events });
    async move { answered(tokio::time::timeout(deadline, answer).await) }
}

fn answered(
    sent: Result<Result<Result<(), AuditError>, MailboxError>, tokio::time::error::Elapsed>,
) -> Result<(), AuditError> {
    match sent {
        Ok(Ok(answer)) => answer,
        Ok(Err(MailboxError::Closed)) => Err(AuditError::Stopped),
        Ok(Err(MailboxError::Timeout)) | Err(_) => Err(AuditError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::audit::{Action, AuditActor, Outcome};

    /// A sink whose writes wait for a permit, recording each batch it committed.
    struct GatedSink {
        gate: Arc<Semaphore>,
        committed: Arc<Mutex<Vec<Vec<AuditEvent>>>>,
        fail: bool,
    }

    impl AuditSink for GatedSink {
        fn append(&self, events: Vec<AuditEvent>) -> SinkFuture {
            let (gate, committed, fail) = (self.gate.clone(), self.committed.clone(), self.fail);
            Box::pin(async move {
                gate.acquire().await.map_err(|_| SinkError::Unavailable)?.forget();
                if fail {
                    return Err(SinkError::Unavailable);
                }
                committed.lock().unwrap().push(events);
                Ok(())
            })
        }
    }

    struct Harness {
        node: NodeId,
        writer: Addr<AuditWriter>,
        gate: Arc<Semaphore>,
        committed: Arc<Mutex<Vec<Vec<AuditEvent>>>>,
    }

    fn harness(limits: WriterLimits, fail: bool) -> Harness {
        let node = NodeId::generate();
        let gate = Arc::new(Semaphore::new(0));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let sink = GatedSink { gate: gate.clone(), committed: committed.clone(), fail };
        let writer = AuditWriter::new(node, Arc::new(sink), limits).start();
        Harness { node, writer, gate, committed }
    }

    fn event(node: NodeId) -> AuditEvent {
        AuditEvent::new(node, AuditActor::System, Action::Read, Outcome::Success)
    }

    const LONG: Duration = Duration::from_secs(5);

    #[actix::test]
    async fn an_event_is_acknowledged_only_after_the_store_committed_it() {
        let h = harness(WriterLimits::default(), false);
        let sent = event(h.node);
        let ack = actix::spawn(record_owned(h.writer.clone(), sent.clone()));

        until_queued(&h.writer, 0).await; // the write has started and is held at the gate
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ack.is_finished(), "acknowledged before the write committed");
        assert!(h.committed.lock().unwrap().is_empty());

        h.gate.add_permits(1);
        assert_eq!(ack.await.unwrap(), Ok(()));
        assert_eq!(*h.committed.lock().unwrap(), vec![vec![sent]]);
    }

    #[actix::test]
    async fn events_arriving_during_a_write_go_out_together_in_the_next_batch() {
        let h = harness(WriterLimits::default(), false);
        let first = actix::spawn(record_owned(h.writer.clone(), event(h.node)));
        until_queued(&h.writer, 0).await; // the first write is in flight
        let rest: Vec<_> = (0..100).map(|_| actix::spawn(record_owned(h.writer.clone(), event(h.node)))).collect();
        until_queued(&h.writer, 100).await;

        h.gate.add_permits(2);
        assert_eq!(first.await.unwrap(), Ok(()));
        for ack in rest {
            assert_eq!(ack.await.unwrap(), Ok(()));
        }

        let sizes: Vec<usize> = h.committed.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 100]);
    }

    #[actix::test]
    async fn a_batch_never_exceeds_the_limit_and_order_is_kept() {
        let h = harness(WriterLimits { max_batch: 10, ..WriterLimits::default() }, false);
        h.gate.add_permits(1000);
        let sent: Vec<AuditEvent> = (0..35).map(|_| event(h.node)).collect();
        let acks: Vec<_> = sent.iter().map(|e| actix::spawn(record_owned(h.writer.clone(), e.clone()))).collect();
        for ack in acks {
            assert_eq!(ack.await.unwrap(), Ok(()));
        }

        let committed = h.committed.lock().unwrap();
        assert!(committed.iter().all(|batch| batch.len() <= 10));
        let flat: Vec<AuditEvent> = committed.iter().flatten().cloned().collect();
        assert_eq!(flat, sent);
    }

    #[actix::test]
    async fn when_the_store_fails_every_waiting_sender_is_told_to_fail_closed() {
        let h = harness(WriterLimits::default(), true);
        let acks: Vec<_> = (0..5).map(|_| actix::spawn(record_owned(h.writer.clone(), event(h.node)))).collect();
        h.gate.add_permits(10);
        for ack in acks {
            assert_eq!(ack.await.unwrap(), Err(AuditError::Unavailable));
        }
    }

    #[actix::test]
    async fn beyond_the_pending_limit_events_are_refused_at_once() {
        let h = harness(WriterLimits { max_pending: 2, max_batch: 1, mailbox: 16, ..WriterLimits::default() }, false);
        // One in flight, two pending: the fourth is refused.
        let held: Vec<_> = (0..3).map(|_| actix::spawn(record_owned(h.writer.clone(), event(h.node)))).collect();
        until_queued(&h.writer, 2).await;

        let refused = record(&h.writer, event(h.node), LONG).await;

        assert_eq!(refused, Err(AuditError::Overloaded));
        h.gate.add_permits(3);
        for ack in held {
            assert_eq!(ack.await.unwrap(), Ok(()));
        }
    }

    #[actix::test]
    async fn a_group_is_written_whole_in_one_batch_after_what_came_before_it() {
        let h = harness(WriterLimits { max_batch: 10, ..WriterLimits::default() }, false);
        let first = actix::spawn(record_owned(h.writer.clone(), event(h.node)));
        until_queued(&h.writer, 0).await;
        let singles: Vec<_> = (0..8).map(|_| actix::spawn(record_owned(h.writer.clone(), event(h.node)))).collect();
        until_queued(&h.writer, 8).await;
        let group: Vec<AuditEvent> = (0..5).map(|_| event(h.node)).collect();
        let together = actix::spawn({
            let (writer, group) = (h.writer.clone(), group.clone());
            async move { record_all(&writer, group, LONG).await }
        });
        until_queued(&h.writer, 13).await;

        h.gate.add_permits(3);
        assert_eq!(first.await.unwrap(), Ok(()));
        for ack in singles {
            assert_eq!(ack.await.unwrap(), Ok(()));
        }
        assert_eq!(together.await.unwrap(), Ok(()));

        // 8 + 5 does not fit in 10: the group waits for the next batch rather than being split.
        let committed = h.committed.lock().unwrap();
        let sizes: Vec<usize> = committed.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 8, 5]);
        assert_eq!(committed[2], group);
    }

    #[actix::test]
    async fn a_group_is_handed_to_the_writer_when_recorded_not_when_its_answer_is_awaited() {
        let h = harness(WriterLimits::default(), false);
        let group: Vec<AuditEvent> = (0..3).map(|_| event(h.node)).collect();
        let answer = record_all(&h.writer, group.clone(), LONG);

        until_queued(&h.writer, 0).await; // its write started while nobody awaited the answer
        h.gate.add_permits(1);
        assert_eq!(answer.await, Ok(()));
        assert_eq!(*h.committed.lock().unwrap(), vec![group]);
    }

    #[actix::test]
    async fn a_group_the_store_fails_is_refused_whole() {
        let h = harness(WriterLimits::default(), true);
        h.gate.add_permits(1);
        let group = (0..3).map(|_| event(h.node)).collect();
        assert_eq!(record_all(&h.writer, group, LONG).await, Err(AuditError::Unavailable));
    }

    #[actix::test]
    async fn a_group_larger_than_a_batch_or_naming_another_node_is_refused_and_nothing_is_written() {
        let h = harness(WriterLimits { max_batch: 4, ..WriterLimits::default() }, false);
        h.gate.add_permits(10);
        let too_many = (0..5).map(|_| event(h.node)).collect();
        assert_eq!(record_all(&h.writer, too_many, LONG).await, Err(AuditError::Overloaded));
        let mixed = vec![event(h.node), event(NodeId::generate())];
        assert_eq!(record_all(&h.writer, mixed, LONG).await, Err(AuditError::ForeignNode));
        assert_eq!(record_all(&h.writer, Vec::new(), LONG).await, Ok(()));
        assert!(h.committed.lock().unwrap().is_empty());
    }

    #[actix::test]
    async fn an_event_of_another_node_is_refused() {
        let h = harness(WriterLimits::default(), false);
        let foreign = event(NodeId::generate());
        assert_eq!(record(&h.writer, foreign, LONG).await, Err(AuditError::ForeignNode));
    }

    #[actix::test]
    async fn shutdown_waits_until_accepted_events_are_written() {
        let h = harness(WriterLimits::default(), false);
        let ack = actix::spawn(record_owned(h.writer.clone(), event(h.node)));
        until_queued(&h.writer, 0).await;
        let stopped = actix::spawn({
            let writer = h.writer.clone();
            async move { writer.send(Shutdown { reason: crate::lifecycle::ShutdownReason::Signal }).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!stopped.is_finished(), "shutdown answered while an event was unwritten");

        h.gate.add_permits(1);
        assert_eq!(ack.await.unwrap(), Ok(()));
        assert!(stopped.await.unwrap().is_ok());
    }

    /// Waits (at most 5 s) until the writer holds `pending` waiting events and a write in flight.
    async fn until_queued(writer: &Addr<AuditWriter>, pending: usize) {
        let deadline = tokio::time::Instant::now() + LONG;
        while writer.send(Queued).await.unwrap() != (pending, true) {
            assert!(tokio::time::Instant::now() < deadline, "the writer never queued {pending} events");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn record_owned(writer: Addr<AuditWriter>, event: AuditEvent) -> Result<(), AuditError> {
        record(&writer, event, LONG).await
    }
}
