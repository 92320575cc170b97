//! Scheduled backups (`backup.schedule`): the server takes a backup daily at `backup.daily_at`
//! or every `backup.interval_secs` into `backup.directory`, then prunes the directory by the
//! retention counts ([`retention`](super::retention)).
//!
//! One node takes each: a node claims a due backup by one conditional update of the shared
//! `backup_schedule` row that also takes a lease, so with several nodes on one PostgreSQL the
//! first to ask wins and the others see it not due (and none starts while a lease runs). Each
//! backup is audited (`export`, `backup_scheduled`; each pruned file a `delete`), each failure
//! too (`export`, outcome `error`, `backup_failed_<cause>`), and a failure alerts the owners
//! (`backup_failed`, once per run of failures). The row's last success and failure are what
//! `/readyz` shows ([`BackupStatus`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use confidant_actors::lifecycle::Shutdown;
use serde::Serialize;

use super::BackupError;
use super::archive::Recipients;
use super::create::{Source, create};
use super::retention::{self, Keep};
use super::store::{self, ScheduleRow};
use crate::alerts::AlertService;
use crate::auditor::{Auditor, reason_or};
use crate::settings::{BackupSchedule, BackupSettings};
use crate::storage::Storage;

/// How long a claim holds when its node never says how the backup ended (it crashed): then
/// another node may take the next one.
const LEASE: Duration = Duration::from_secs(6 * 3600);
/// The daily schedule looks this often whether a backup is due.
const DAILY_CHECK_EVERY: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 86_400_000;

/// When backups are due, where they go, what is kept, whom they are encrypted to.
#[derive(Clone)]
pub struct Plan {
    when: When,
    directory: PathBuf,
    keep: Keep,
    recipients: Recipients,
}

#[derive(Debug, Clone, Copy)]
enum When {
    /// At this minute of each UTC day.
    Daily(u32),
    /// This many milliseconds after the last one started.
    Every(i64),
}

impl Plan {
    /// The plan of `settings`, `None` when the schedule is off. Settings were checked at load;
    /// what could still be wrong is a usage error.
    pub fn of(settings: &BackupSettings) -> Result<Option<Plan>, BackupError> {
        let when = match settings.schedule {
            BackupSchedule::Off => return Ok(None),
            BackupSchedule::Daily => When::Daily(
                settings.daily_minute().ok_or_else(|| BackupError::Usage("`backup.daily_at` is not HH:MM".into()))?,
            ),
            BackupSchedule::Interval => {
                When::Every(i64::try_from(settings.interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX).max(1))
            }
        };
        let directory =
            settings.directory.clone().ok_or_else(|| BackupError::Usage("`backup.directory` is not set".into()))?;
        let keep = Keep { daily: settings.keep_daily, weekly: settings.keep_weekly, monthly: settings.keep_monthly };
        Ok(Some(Plan { when, directory, keep, recipients: Recipients::parse(&settings.recipients)? }))
    }

    /// A backup is due at `now_ms` unless one started at or after this moment: the newest
    /// `daily_at` passed, or one interval ago.
    fn due_before(&self, now_ms: i64) -> i64 {
        match self.when {
            When::Daily(minute) => {
                let today = now_ms.div_euclid(DAY_MS) * DAY_MS + i64::from(minute) * 60_000;
                if today <= now_ms { today } else { today - DAY_MS }
            }
            When::Every(interval_ms) => now_ms.saturating_sub(interval_ms).saturating_add(1),
        }
    }

    /// How often the worker asks whether a backup is due.
    fn check_every(&self) -> Duration {
        match self.when {
            When::Daily(_) => DAILY_CHECK_EVERY,
            When::Every(ms) => Duration::from_millis(u64::try_from(ms / 4).unwrap_or(1))
                .clamp(Duration::from_millis(250), DAILY_CHECK_EVERY),
        }
    }

    /// The schedule in words, for `/readyz`.
    fn describe(&self) -> String {
        match self.when {
            When::Daily(minute) => format!("daily at {:02}:{:02} UTC", minute / 60, minute % 60),
            When::Every(ms) => format!("every {} s", ms / 1000),
        }
    }
}

/// What `/readyz` shows of the scheduled backups (times and a reason code; never a path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupStatus {
    /// The schedule.
    pub schedule: String,
    /// When the newest scheduled backup that succeeded ended (UTC ms).
    pub last_success_at_ms: Option<i64>,
    /// Its size in bytes.
    pub last_success_bytes: Option<i64>,
    /// When the newest one that failed ended.
    pub last_failure_at_ms: Option<i64>,
    /// Why it failed (`file`, `storage`, `tool`, `decrypt`, `usage`, ...).
    pub last_failure: Option<String>,
    /// Whether the newest attempt that ended failed.
    pub failing: bool,
}

impl BackupStatus {
    fn of(plan: &Plan, row: ScheduleRow) -> Self {
        let failing = match (row.last_failure_at_ms, row.last_success_at_ms) {
            (Some(failed), Some(succeeded)) => failed > succeeded,
            (Some(_), None) => true,
            (None, _) => false,
        };
        BackupStatus {
            schedule: plan.describe(),
            last_success_at_ms: row.last_success_at_ms,
            last_success_bytes: row.last_success_bytes,
            last_failure_at_ms: row.last_failure_at_ms,
            last_failure: row.last_failure,
            failing,
        }
    }
}

/// Reads the scheduled backups' status for `/readyz` (any node: the row is shared).
#[derive(Clone)]
pub struct BackupStatusReader {
    storage: Storage,
    plan: Arc<Plan>,
}

impl BackupStatusReader {
    /// The status kept in `storage` of backups taken by `plan`.
    pub fn new(storage: Storage, plan: Plan) -> Self {
        Self { storage, plan: Arc::new(plan) }
    }

    /// The status now.
    pub async fn read(&self) -> Result<BackupStatus, BackupError> {
        Ok(BackupStatus::of(&self.plan, store::scheduled(&self.storage).await?))
    }
}

/// What the worker needs.
pub struct BackupDeps {
    /// The main store.
    pub main: Storage,
    /// The audit store.
    pub audit: Storage,
    /// The audit checkpoint files' directory.
    pub checkpoint_dir: PathBuf,
    /// The data directory, where backups are staged.
    pub data_dir: PathBuf,
    /// The master key's fingerprint, for the manifest.
    pub master_key_fingerprint: String,
    /// Records each backup, pruning and failure.
    pub auditor: Auditor,
    /// Alerts the owners of a failure.
    pub alerts: AlertService,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// No backup was due here (or another node took it).
    NotDue,
    /// A backup was written (its file name) and this many older ones pruned.
    TookBackup {
        /// The file's name in the backup directory.
        file: String,
        /// Backups deleted by retention.
        pruned: usize,
    },
    /// The backup due failed (its reason code).
    Failed(String),
}

/// Takes the due backup now, if one is. Passes never overlap.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Pass")]
pub struct TakeDueBackup;

/// This node's scheduled-backup worker.
pub struct BackupScheduler {
    deps: Arc<BackupDeps>,
    plan: Arc<Plan>,
    pass: Arc<tokio::sync::Mutex<()>>,
    stopping: bool,
}

impl BackupScheduler {
    /// A worker taking `plan`'s backups.
    pub fn new(deps: BackupDeps, plan: Plan) -> Self {
        Self { deps: Arc::new(deps), plan: Arc::new(plan), pass: Arc::default(), stopping: false }
    }
}

impl Actor for BackupScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(TakeDueBackup);
        ctx.run_interval(self.plan.check_every(), |actor, ctx| {
            if !actor.stopping && actor.pass.try_lock().is_ok() {
                ctx.notify(TakeDueBackup);
            }
        });
    }
}

impl Handler<TakeDueBackup> for BackupScheduler {
    type Result = ResponseFuture<Pass>;

    fn handle(&mut self, _msg: TakeDueBackup, _ctx: &mut Self::Context) -> Self::Result {
        let (deps, plan, pass) = (self.deps.clone(), self.plan.clone(), self.pass.clone());
        Box::pin(async move {
            let _running = pass.lock().await;
            take_due_backup(&deps, &plan).await
        })
    }
}

impl Handler<Shutdown> for BackupScheduler {
    type Result = ResponseFuture<()>;

    /// Starts no new backup and waits for the one being written.
    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let pass = self.pass.clone();
        Box::pin(async move {
            let _ = pass.lock().await;
        })
    }
}

/// Claims the backup due, if any, takes it, prunes, and records how it went.
async fn take_due_backup(deps: &BackupDeps, plan: &Plan) -> Pass {
    let now = deps.clock.now_ms();
    let owner = deps.auditor.node_id().to_string();
    let lease_until = now.saturating_add(LEASE.as_millis() as i64);
    match store::claim_scheduled(&deps.main, &owner, now, plan.due_before(now), lease_until).await {
        Ok(true) => {}
        Ok(false) => return Pass::NotDue,
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether a scheduled backup is due; the next pass asks again");
            return Pass::NotDue;
        }
    }
    let file = retention::file_name(now);
    match back_up(deps, plan, &file).await {
        Ok(bytes) => {
            let at = deps.clock.now_ms();
            let recorded = store::record_scheduled_success(&deps.main, &owner, at, &file, bytes as i64).await;
            if let Err(error) = recorded {
                tracing::error!(%error, "a scheduled backup was written but its success could not be recorded");
            }
            audit(deps, Action::Export, Outcome::Success, "backup_scheduled").await;
            let pruned = prune(deps, plan).await;
            tracing::info!(bytes, pruned, "scheduled backup written");
            Pass::TookBackup { file, pruned }
        }
        Err(error) => {
            let cause = cause_of(&error);
            tracing::error!(%error, cause, "scheduled backup failed");
            let at = deps.clock.now_ms();
            let last_success = match store::record_scheduled_failure(&deps.main, &owner, at, cause).await {
                Ok(()) => store::scheduled(&deps.main).await.ok().and_then(|row| row.last_success_at_ms),
                Err(error) => {
                    tracing::error!(%error, "the scheduled backup's failure could not be recorded");
                    None
                }
            };
            audit(deps, Action::Export, Outcome::Error, &format!("backup_failed_{cause}")).await;
            match deps.alerts.raise_backup_failure(last_success).await {
                Ok(true) => tracing::warn!("owners alerted to a failed scheduled backup"),
                Ok(false) => tracing::info!("owners were already alerted to this run of failed backups"),
                Err(error) => tracing::error!(%error, "could not alert owners to a failed scheduled backup"),
            }
            Pass::Failed(cause.to_owned())
        }
    }
}

/// Writes the backup into the plan's directory as `file`; its size.
async fn back_up(deps: &BackupDeps, plan: &Plan, file: &str) -> Result<u64, BackupError> {
    let source = Source {
        main: &deps.main,
        audit: &deps.audit,
        checkpoint_dir: deps.checkpoint_dir.clone(),
        local_chains: crate::node::local_chains(&deps.data_dir),
        master_key_fingerprint: deps.master_key_fingerprint.clone(),
        staging_in: deps.data_dir.clone(),
    };
    Ok(create(source, &plan.recipients, &plan.directory.join(file)).await?.bytes)
}

/// Deletes the scheduled backups retention lets go; how many. A file that cannot be deleted is
/// logged and left for the next pass.
async fn prune(deps: &BackupDeps, plan: &Plan) -> usize {
    let names: Vec<String> = match std::fs::read_dir(&plan.directory) {
        Ok(entries) => entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect(),
        Err(error) => {
            tracing::error!(%error, "cannot list the backup directory to prune it");
            return 0;
        }
    };
    let mut pruned = 0;
    for name in retention::to_delete(&names, plan.keep) {
        match std::fs::remove_file(plan.directory.join(&name)) {
            Ok(()) => {
                pruned += 1;
                audit(deps, Action::Delete, Outcome::Success, "backup_pruned").await;
            }
            Err(error) => tracing::error!(%error, file = name, "cannot delete a backup retention lets go"),
        }
    }
    pruned
}

async fn audit(deps: &BackupDeps, action: Action, outcome: Outcome, code: &str) {
    let event = deps
        .auditor
        .system(action, outcome)
        .on(ResourceType::Server, Some(*deps.auditor.node_id().as_uuid()))
        .because(reason_or(code, "backup_failed"));
    if deps.auditor.record(event).await.is_err() {
        tracing::error!(code, "could not audit a scheduled backup");
    }
}

/// The reason code of a failure (no path, no detail: it reaches `/readyz` and the audit trail).
fn cause_of(error: &BackupError) -> &'static str {
    match error {
        BackupError::Usage(_) => "usage",
        BackupError::File { .. } => "file",
        BackupError::Storage(_) => "storage",
        BackupError::Decrypt(_) => "decrypt",
        BackupError::Malformed(_) => "malformed",
        BackupError::Tool { .. } => "tool",
        BackupError::NotEmpty(_) => "not_empty",
        BackupError::Mismatch(_) => "mismatch",
    }
}
