//! Graceful shutdown: one `Lifecycle` actor per node knows every long-lived component that must
//! finish its work before the process exits (session actors closing their sockets with a
//! going-away code, the audit writer flushing its last batch, the mailer finishing a send).
//!
//! On SIGTERM the server asks `Lifecycle` to [`ShutdownAll`]; it sends [`Shutdown`] to every
//! registered component at once and answers when all have replied or the deadline has passed,
//! whichever comes first. A component replies to `Shutdown` only once its work is durable.

use std::time::Duration;

use actix::MailboxError;
use actix::prelude::*;
use futures_util::future::join_all;

/// Why the node is stopping; components may pass it on (a session actor turns it into the
/// reason text of its close frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The process received SIGTERM or SIGINT.
    Signal,
}

/// Sent to each registered component: finish in-flight work, release clients, then reply.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Why the node stops.
    pub reason: ShutdownReason,
}

/// Registers a component that must be told before the node stops.
#[derive(Message)]
#[rtype(result = "Result<(), LifecycleError>")]
pub struct Register {
    /// Stable, non-identifying name used in logs (`"audit_writer"`, `"session"`); never a user
    /// name or anything derived from PHI.
    pub component: &'static str,
    /// Where to deliver [`Shutdown`].
    pub recipient: Recipient<Shutdown>,
}

/// Asks every registered component to shut down and waits for them, at most `deadline`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ShutdownReport")]
pub struct ShutdownAll {
    /// Why the node stops.
    pub reason: ShutdownReason,
    /// How long to wait for all components together.
    pub deadline: Duration,
}

/// What happened when the node asked its components to stop.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Components that replied in time (or had already stopped, so had nothing left to do).
    pub completed: usize,
    /// Components still busy when the deadline passed, by name.
    pub timed_out: Vec<&'static str>,
}

/// Errors of the lifecycle actor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    /// Shutdown has begun; a component started now would not be told to stop, so it is refused.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// The registry of components to stop. See the module documentation.
#[derive(Default)]
pub struct Lifecycle {
    components: Vec<(&'static str, Recipient<Shutdown>)>,
    shutting_down: bool,
}

impl Lifecycle {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Actor for Lifecycle {
    type Context = Context<Self>;
}

impl Handler<Register> for Lifecycle {
    type Result = Result<(), LifecycleError>;

    fn handle(&mut self, msg: Register, _ctx: &mut Self::Context) -> Self::Result {
        if self.shutting_down {
            return Err(LifecycleError::ShuttingDown);
        }
        // Components that stopped on their own (a closed session) would otherwise accumulate.
        self.components.retain(|(_, r)| r.connected());
        self.components.push((msg.component, msg.recipient));
        Ok(())
    }
}

impl Handler<ShutdownAll> for Lifecycle {
    type Result = ResponseFuture<ShutdownReport>;

    fn handle(&mut self, msg: ShutdownAll, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        let components = std::mem::take(&mut self.components);
        let shutdown = Shutdown { reason: msg.reason };
        tracing::info!(components = components.len(), "asking components to shut down");
        Box::pin(async move {
            let waits = components.into_iter().map(|(name, recipient)| async move {
                let outcome = tokio::time::timeout(msg.deadline, recipient.send(shutdown)).await;
                (name, outcome)
            });
            let mut report = ShutdownReport::default();
            for (name, outcome) in join_all(waits).await {
                match outcome {
                    Ok(Ok(())) | Ok(Err(MailboxError::Closed)) => report.completed += 1,
                    Ok(Err(MailboxError::Timeout)) | Err(_) => {
                        tracing::warn!(component = name, "component did not finish before the shutdown deadline");
                        report.timed_out.push(name);
                    }
                }
            }
            report
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A component that takes `work` to flush, then counts itself as flushed.
    struct Flusher {
        work: Duration,
        flushed: Arc<AtomicUsize>,
    }

    impl Actor for Flusher {
        type Context = Context<Self>;
    }

    impl Handler<Shutdown> for Flusher {
        type Result = ResponseFuture<()>;

        fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
            let (work, flushed) = (self.work, self.flushed.clone());
            Box::pin(async move {
                tokio::time::sleep(work).await;
                flushed.fetch_add(1, Ordering::SeqCst);
            })
        }
    }

    fn flusher(work: Duration, flushed: &Arc<AtomicUsize>) -> Recipient<Shutdown> {
        Flusher { work, flushed: flushed.clone() }.start().recipient()
    }

    fn shutdown_all(deadline: Duration) -> ShutdownAll {
        ShutdownAll { reason: ShutdownReason::Signal, deadline }
    }

    #[actix::test]
    async fn every_registered_component_flushes_before_shutdown_completes() {
        let flushed = Arc::new(AtomicUsize::new(0));
        let lifecycle = Lifecycle::new().start();
        for _ in 0..3 {
            let recipient = flusher(Duration::from_millis(20), &flushed);
            let registered = lifecycle.send(Register { component: "flusher", recipient }).await;
            assert_eq!(registered, Ok(Ok(())));
        }

        let report = lifecycle.send(shutdown_all(Duration::from_secs(5))).await;

        assert_eq!(report, Ok(ShutdownReport { completed: 3, timed_out: vec![] }));
        assert_eq!(flushed.load(Ordering::SeqCst), 3);
    }

    #[actix::test]
    async fn a_component_slower_than_the_deadline_is_reported_and_does_not_hold_up_the_rest() {
        let flushed = Arc::new(AtomicUsize::new(0));
        let lifecycle = Lifecycle::new().start();
        let fast = flusher(Duration::from_millis(1), &flushed);
        let stuck = flusher(Duration::from_secs(3600), &flushed);
        for (component, recipient) in [("fast", fast), ("stuck", stuck)] {
            lifecycle.do_send(Register { component, recipient });
        }

        let report = lifecycle.send(shutdown_all(Duration::from_millis(100))).await;

        assert_eq!(report, Ok(ShutdownReport { completed: 1, timed_out: vec!["stuck"] }));
    }

    #[actix::test]
    async fn registering_after_shutdown_began_is_refused() {
        let lifecycle = Lifecycle::new().start();
        let _ = lifecycle.send(shutdown_all(Duration::from_millis(10))).await;

        let late = flusher(Duration::ZERO, &Arc::new(AtomicUsize::new(0)));
        let registered = lifecycle.send(Register { component: "late", recipient: late }).await;

        assert_eq!(registered, Ok(Err(LifecycleError::ShuttingDown)));
    }
}
