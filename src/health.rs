//! Readiness of the node's dependencies: both databases and, when configured, Redis must answer
//! within `http.readiness_timeout_ms`. [`Readiness::check`] probes them at once; a dependency
//! that goes down is audited once (`readiness_failure`), not at every probe. The one home of
//! "a database or Redis is down" for operators: `/readyz` reports it, load balancers route by it.
//! It also shows how the scheduled backups went (`backup/schedule.rs`), which never makes a
//! node unready.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confidant_actors::audit::{Action, Outcome, ResourceType};
use serde::Serialize;

use crate::auditor::{Auditor, reason_or};
use crate::backup::schedule::{BackupStatus, BackupStatusReader};
use crate::redis_link::RedisLink;
use crate::storage::Storage;

/// State of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Answered in time.
    Up,
    /// Failed or timed out.
    Down,
    /// Not part of this deployment.
    NotConfigured,
}

/// Each dependency's state, as reported by `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// The main store.
    pub database: Check,
    /// The audit store.
    pub audit_database: Check,
    /// Redis.
    pub redis: Check,
    /// How the scheduled backups went (absent when none are scheduled, or when their status
    /// could not be read in time). Never makes the node unready: a failed backup alerts the
    /// owners instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<BackupStatus>,
}

impl ReadinessReport {
    /// Names of the dependencies that are down.
    pub fn down(&self) -> Vec<&'static str> {
        [("database", self.database), ("audit_database", self.audit_database), ("redis", self.redis)]
            .into_iter()
            .filter(|(_, c)| *c == Check::Down)
            .map(|(name, _)| name)
            .collect()
    }
}

/// The node's dependencies, and which were down at the last probe.
#[derive(Clone)]
pub struct Readiness {
    storage: Storage,
    audit_storage: Storage,
    redis: Option<RedisLink>,
    auditor: Auditor,
    budget: Duration,
    last_down: Arc<Mutex<Vec<&'static str>>>,
    backups: Option<BackupStatusReader>,
}

impl Readiness {
    /// Probes of these dependencies, each answering within `budget`.
    pub fn new(
        storage: Storage,
        audit_storage: Storage,
        redis: Option<RedisLink>,
        auditor: Auditor,
        budget: Duration,
    ) -> Self {
        Self { storage, audit_storage, redis, auditor, budget, last_down: Arc::default(), backups: None }
    }

    /// Also reports the scheduled backups' status.
    pub fn with_backups(mut self, backups: BackupStatusReader) -> Self {
        self.backups = Some(backups);
        self
    }

    /// Probes every dependency at once; a newly failed one is audited in the background.
    pub async fn check(&self) -> ReadinessReport {
        let budget = self.budget;
        let redis = async {
            match &self.redis {
                None => Check::NotConfigured,
                Some(link) => probe("redis", budget, link.ping()).await,
            }
        };
        let backups = async {
            let reader = self.backups.as_ref()?;
            match tokio::time::timeout(budget, reader.read()).await {
                Ok(Ok(status)) => Some(status),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot read the scheduled backups' status");
                    None
                }
                Err(_) => None,
            }
        };
        let (database, audit_database, redis, backups) = futures_util::join!(
            probe("database", budget, self.storage.ping()),
            probe("audit_database", budget, self.audit_storage.ping()),
            redis,
            backups,
        );
        let report = ReadinessReport { database, audit_database, redis, backups };
        self.audit_newly_down(&report);
        report
    }

    /// Records a `readiness_failure` audit event for each dependency that was up at the previous
    /// probe and is down now. In the background: readiness must answer even when the audit store
    /// is the dependency that is down (the failure to audit is then logged).
    fn audit_newly_down(&self, report: &ReadinessReport) {
        let down = report.down();
        let newly_down: Vec<&'static str> = {
            let mut last = self.last_down.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let newly = down.iter().copied().filter(|d| !last.contains(d)).collect();
            *last = down;
            newly
        };
        for dependency in newly_down {
            let event = self
                .auditor
                .system(Action::ReadinessFailure, Outcome::Error)
                .on(ResourceType::Dependency, None)
                .because(reason_or(&format!("{dependency}_down"), "dependency_down"));
            let auditor = self.auditor.clone();
            actix_web::rt::spawn(async move {
                if auditor.record(event).await.is_err() {
                    tracing::error!(dependency, "could not audit a readiness failure");
                }
            });
        }
    }
}

/// Runs one check within `budget`, logging why a dependency is down.
async fn probe<E: std::error::Error>(
    name: &'static str,
    budget: Duration,
    check: impl Future<Output = Result<(), E>>,
) -> Check {
    match tokio::time::timeout(budget, check).await {
        Ok(Ok(())) => Check::Up,
        Ok(Err(error)) => {
            tracing::warn!(dependency = name, error = %error, cause = ?error.source(), "dependency is down");
            Check::Down
        }
        Err(_) => {
            tracing::warn!(
                dependency = name,
                budget_ms = budget.as_millis() as u64,
                "dependency did not answer in time"
            );
            Check::Down
        }
    }
}
