//! The audit trail's status for the practice's owners (the portal's "Audit trail" screen): the
//! newest signed checkpoint of each chain, how many checkpoints there are, and the outcome of
//! the last verification this node ran, with a way to run one now. Reading it is reading the
//! audit log (owners only, by the matrix), and is itself audited.
//!
//! Verification here is `confidant audit verify`'s (`trail.rs` `verify_trail`), trusting the
//! keys pinned in `audit.trusted_keys` (else the registered ones, and it says so) and reading
//! the node's witnesses. Its outcome lives in memory: "not verified since this node started" is
//! said as such, never guessed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use ed25519_dalek::VerifyingKey;

use super::checkpoint::{Checkpoint, CheckpointLog, newest_per_node};
use super::trail::{Evidence, TrailError, verify_trail};
use super::verify::ChainSummary;
use super::witness::Witnesses;
use crate::access::{AccessError, Denial, Gate, Operation, Requester, Resource, Target};
use crate::auditor::About;
use crate::storage::{Storage, StorageError};

/// Why the status could not be given.
#[derive(Debug, thiserror::Error)]
pub enum AuditStatusError {
    /// The matrix refuses (only owners read the audit log); the refusal was audited.
    #[error("not allowed")]
    Denied(Denial),
    /// The access could not be recorded (fail closed), so nothing was read.
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// The audit store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The checkpoint files could not be read.
    #[error("the checkpoint files cannot be read: {0}")]
    Checkpoints(#[from] std::io::Error),
    /// A verification is running already (it reads the whole trail; one at a time).
    #[error("a verification is running")]
    Busy,
    /// A verification could not be completed (a witness could not be read, say).
    #[error(transparent)]
    Trail(#[from] TrailError),
}

impl From<AccessError> for AuditStatusError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => Self::Denied(denial),
            AccessError::Storage(e) => Self::Storage(e),
            AccessError::AuditUnavailable => Self::AuditUnavailable,
        }
    }
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// When it finished (UTC ms).
    pub at_ms: i64,
    /// Every chain, as far as it was checked.
    pub chains: Vec<ChainSummary>,
    /// `None` when every chain and checkpoint holds; otherwise where the first break is (node,
    /// seq and the kind of problem: no entry content).
    pub broken: Option<String>,
    /// What the verification trusted and read: each key and where it came from, each witness.
    pub basis: Vec<String>,
}

/// What the screen shows.
#[derive(Debug, Clone)]
pub struct TrailStatus {
    /// The newest checkpoint of each chain, from the checkpoint files.
    pub heads: Vec<Checkpoint>,
    /// Checkpoints in the files.
    pub checkpoints: usize,
    /// The last verification this node ran, if any.
    pub last: Option<Verification>,
}

/// The owners' view of the audit trail.
#[derive(Clone)]
pub struct AuditStatus {
    storage: Storage,
    files: PathBuf,
    pinned: Vec<VerifyingKey>,
    witnesses: Witnesses,
    local_chains: Vec<String>,
    gate: Gate,
    clock: Arc<dyn Clock>,
    last: Arc<Mutex<Option<Verification>>>,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl AuditStatus {
    /// Over the audit store, the checkpoint directory `files` with the `local_chains` that must
    /// have files there, the keys the operator pinned (none: the registered ones) and the node's
    /// witnesses.
    pub fn new(
        storage: Storage,
        (files, local_chains): (PathBuf, Vec<String>),
        (pinned, witnesses): (Vec<VerifyingKey>, Witnesses),
        gate: Gate,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (last, running) = (Arc::new(Mutex::new(None)), Arc::default());
        Self { storage, files, pinned, witnesses, local_chains, gate, clock, last, running }
    }

    fn about() -> About {
        About::new(Action::Read, ResourceType::AuditLog, None)
    }

    /// The heads, the checkpoint count and the last verification.
    pub async fn status(&self, who: &Requester) -> Result<TrailStatus, AuditStatusError> {
        self.gate.authorize_and_record(who, Resource::AuditLog, Operation::Read, Target::Any, Self::about()).await?;
        let all = self.read_files().await?;
        let checkpoints = all.len();
        let mut heads = newest_per_node(all);
        heads.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        Ok(TrailStatus { heads, checkpoints, last })
    }

    /// Verifies every chain and checkpoint now, remembers and returns the outcome. The outcome
    /// is audited (`audit_verified` or `audit_broken`). One runs at a time on a node; another
    /// asked for meanwhile is refused (`Busy`) rather than queued behind it.
    pub async fn verify(&self, who: &Requester) -> Result<Verification, AuditStatusError> {
        self.gate.authorize(who, Resource::AuditLog, Operation::Read, Target::Any, Self::about()).await?;
        let _one_at_a_time = self.running.try_lock().map_err(|_| AuditStatusError::Busy)?;
        let evidence = Evidence {
            checkpoint_dir: self.files.clone(),
            witnesses: &self.witnesses,
            heads: Vec::new(),
            pinned: self.pinned.clone(),
            local_chains: self.local_chains.clone(),
        };
        let report = verify_trail(&self.storage, evidence).await?;
        let verification = Verification {
            at_ms: self.clock.now_ms(),
            basis: report.basis(),
            broken: report.broken.as_ref().map(ToString::to_string),
            chains: if report.broken.is_some() { Vec::new() } else { report.chains },
        };
        let why = if verification.broken.is_none() { "audit_verified" } else { "audit_broken" };
        if verification.broken.is_some() {
            tracing::error!(broken = verification.broken.as_deref(), "audit verification found a break");
        }
        self.gate.record_all(vec![self.gate.event(who, Self::about(), Outcome::Success, why)]).await?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(verification.clone());
        }
        Ok(verification)
    }

    async fn read_files(&self) -> Result<Vec<Checkpoint>, AuditStatusError> {
        let log = CheckpointLog::new(self.files.clone());
        Ok(tokio::task::spawn_blocking(move || log.read_all()).await.map_err(std::io::Error::other)??)
    }
}
