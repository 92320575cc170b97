//! The email witness: once in each period (`audit.head_email_every_secs`, a day by default,
//! windows aligned on the epoch) each node emails every owner the newest signed head of its
//! chains (the node's and its command line's), one line each that `confidant audit verify
//! --head '<line>'` reads back ([`super::signed_head`]). People keep the emails outside every
//! machine, so a tail cut together with its checkpoints, the checkpoint files and the other
//! witnesses is still caught by the owner who pastes an older line.
//!
//! The emails go through the reminder outbox (claimed with a lease, at most once, retried,
//! audited before they leave), so sending is durable and shared by the nodes. Queuing is one
//! transaction: the node's report for the period (unique per node and period) and one row per
//! owner (unique per report and owner), committed only once its audit record is durable. A node
//! that checks again, restarts, or runs twice in a period queues nothing more; each node reports
//! only its own chains, so no chain is emailed twice in a period.
//!
//! The [`EmailWitness`] of a node checks at start and then every `audit.checkpoint_every_secs`
//! (its heads change no faster), on the services' clock, so tests move time instead of waiting.
//! A period is reported once the node has a signed head and the practice an owner; until then
//! each check tries again. The email holds no PHI: chain ids, sequence numbers, hashes, times,
//! signatures and key fingerprints (docs/AUDIT.md, "Witnesses").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use confidant_actors::ids::NodeId;
use confidant_actors::lifecycle::Shutdown;
use ed25519_dalek::VerifyingKey;

use super::signed_head::SignedHead;
use super::store::checkpoints::newest_checkpoint;
use super::store::keys::registered_keys;
use crate::access::{Operation, Resource, matrix};
use crate::auditor::{Auditor, reason};
use crate::identity::AuthError;
use crate::identity::accounts::Accounts;
use crate::reminders::ReminderError;
use crate::reminders::outbox::{AuditHeadReport, Outbox, queue_audit_heads};
use crate::storage::{Storage, StorageError};

/// Why a check did not report (the next check tries again).
#[derive(Debug, thiserror::Error)]
pub enum EmailWitnessError {
    /// The audit store could not be read (dependency down).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The outbox could not be read or written (dependency down).
    #[error(transparent)]
    Outbox(#[from] ReminderError),
    /// The owners could not be listed (dependency down).
    #[error(transparent)]
    Accounts(#[from] AuthError),
    /// The audit trail could not record the report, so nothing was queued.
    #[error("the audit trail cannot record the report")]
    AuditUnavailable,
}

impl From<sqlx::Error> for EmailWitnessError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(StorageError::Query(error))
    }
}

/// What the witness works with.
#[derive(Clone)]
pub struct EmailWitnessDeps {
    /// This node.
    pub node_id: NodeId,
    /// The data directory, whose `node-id` and `cli-node-id` name the chains it reports.
    pub data_dir: PathBuf,
    /// The key this node signs with (the registered keys are tried too, for heads signed
    /// before a key change).
    pub public_key: VerifyingKey,
    /// The audit store, where the signed heads are.
    pub audit_storage: Storage,
    /// The reminder outbox, on the main store.
    pub outbox: Outbox,
    /// Who the owners are.
    pub accounts: Accounts,
    /// Records each report.
    pub auditor: Auditor,
    /// Time, injectable for tests.
    pub clock: Arc<dyn Clock>,
    /// The period's length (ms).
    pub every_ms: i64,
    /// How often to check.
    pub check_every: Duration,
}

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// This period's report was queued now: its period, how many heads, how many owners.
    Reported {
        /// The period (now divided by its length).
        period: i64,
        /// Heads in it.
        heads: usize,
        /// Owners it goes to.
        owners: usize,
    },
    /// This period was reported already (by this node, before).
    AlreadyReported,
    /// Nothing to report yet: no signed head, or no owner.
    NothingYet,
}

/// Checks now whether this period's report is due, and queues it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Checked, EmailWitnessError>")]
pub struct CheckHeads;

/// The email witness of this node.
pub struct EmailWitness {
    deps: Arc<EmailWitnessDeps>,
    check: Arc<tokio::sync::Mutex<()>>,
    stopping: bool,
}

impl EmailWitness {
    /// A witness over `deps`.
    pub fn new(deps: EmailWitnessDeps) -> Self {
        Self { deps: Arc::new(deps), check: Arc::new(tokio::sync::Mutex::new(())), stopping: false }
    }
}

impl Actor for EmailWitness {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(CheckHeads);
        ctx.run_interval(self.deps.check_every, |actor, ctx| {
            if !actor.stopping && actor.check.try_lock().is_ok() {
                ctx.notify(CheckHeads);
            }
        });
    }
}

impl Handler<CheckHeads> for EmailWitness {
    type Result = ResponseFuture<Result<Checked, EmailWitnessError>>;

    fn handle(&mut self, _msg: CheckHeads, _ctx: &mut Self::Context) -> Self::Result {
        let (deps, check) = (self.deps.clone(), self.check.clone());
        Box::pin(async move {
            let _running = check.lock().await;
            let checked = report_heads(&deps).await;
            if let Err(error) = &checked {
                tracing::error!(%error, "could not report the audit heads to the owners; the next check retries");
            }
            checked
        })
    }
}

impl Handler<Shutdown> for EmailWitness {
    type Result = ResponseFuture<()>;

    /// Takes no new check and waits for the one in flight.
    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let check = self.check.clone();
        Box::pin(async move {
            let _ = check.lock().await;
        })
    }
}

/// Queues this period's report of the node's signed heads to every owner, unless it was queued
/// before or there is nothing to report yet.
pub async fn report_heads(d: &EmailWitnessDeps) -> Result<Checked, EmailWitnessError> {
    let now = d.clock.now_ms();
    let period = now.div_euclid(d.every_ms);
    if d.outbox.audit_heads_reported(d.node_id, period).await? {
        return Ok(Checked::AlreadyReported);
    }
    let heads = signed_heads(d).await?;
    if heads.is_empty() {
        return Ok(Checked::NothingYet);
    }
    let owners = d.accounts.active_of_roles(&matrix::roles_allowed(Resource::AuditLog, Operation::Read)).await?;
    if owners.is_empty() {
        return Ok(Checked::NothingYet);
    }
    let report = AuditHeadReport {
        node_id: d.node_id,
        period,
        heads: heads.iter().map(SignedHead::to_line).collect(),
        now_ms: now,
    };
    let mut tx = d.outbox.begin().await?;
    if !queue_audit_heads(&mut tx, &report, &owners).await? {
        return Ok(Checked::AlreadyReported);
    }
    let event = d
        .auditor
        .system(Action::Export, Outcome::Success)
        .on(ResourceType::AuditLog, None)
        .because(reason("audit_heads_reported"));
    d.auditor.record(event).await.map_err(|_| EmailWitnessError::AuditUnavailable)?;
    tx.commit().await?;
    tracing::info!(period, heads = heads.len(), owners = owners.len(), "audit heads queued for the owners' email");
    Ok(Checked::Reported { period, heads: heads.len(), owners: owners.len() })
}

/// The newest signed head of each of this data directory's chains, each with the key that
/// signed it. A head no known key verifies is left out and logged: an email must never vouch
/// for a head verification would refuse.
async fn signed_heads(d: &EmailWitnessDeps) -> Result<Vec<SignedHead>, EmailWitnessError> {
    let mut keys = vec![d.public_key];
    for registered in registered_keys(&d.audit_storage).await? {
        if let Ok(key) = VerifyingKey::from_bytes(&registered.public_key)
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    let mut heads = Vec::new();
    for chain in crate::node::local_chains(&d.data_dir) {
        let Some(checkpoint) = newest_checkpoint(&d.audit_storage, &chain).await? else { continue };
        match keys.iter().find(|key| checkpoint.is_signed_by(key)) {
            Some(key) => heads.push(SignedHead::new(checkpoint, key)),
            None => {
                tracing::error!(node_id = %chain, seq = checkpoint.seq, "a newest checkpoint no known key verifies; not emailed")
            }
        }
    }
    Ok(heads)
}
