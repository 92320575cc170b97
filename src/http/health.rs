//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: both databases
//! and, when configured, Redis answer within `http.readiness_timeout_ms`). Load balancers route
//! by readiness; orchestrators restart on liveness.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ReasonCode, ResourceType, record};

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use crate::state::AppState;

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

/// Liveness: the process is up and serving HTTP.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: every dependency answers. 503 names the ones that do not.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let budget = state.settings.http.readiness_timeout();
    let redis = async {
        match &state.redis {
            None => Check::NotConfigured,
            Some(link) => probe("redis", budget, link.ping()).await,
        }
    };
    let (database, audit_database, redis) = futures_util::join!(
        probe("database", budget, state.storage.ping()),
        probe("audit_database", budget, state.audit_storage.ping()),
        redis,
    );
    let report = ReadinessReport { database, audit_database, redis };
    audit_newly_down(&state, &report);
    if report.down().is_empty() {
        Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": report })))
    } else {
        Err(ApiError::NotReady(report))
    }
}

/// Remembers which dependencies were down at the last probe.
#[derive(Debug, Default)]
pub struct ReadinessMemory(Mutex<Vec<&'static str>>);

/// Records a `readiness_failure` audit event for each dependency that was up at the previous
/// probe and is down now. In the background: readiness must answer even when the audit store
/// is the dependency that is down (the failure to audit is then logged).
fn audit_newly_down(state: &AppState, report: &ReadinessReport) {
    let down = report.down();
    let newly_down: Vec<&'static str> = {
        let mut last = state.readiness.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let newly = down.iter().copied().filter(|d| !last.contains(d)).collect();
        *last = down;
        newly
    };
    for dependency in newly_down {
        let reason = ReasonCode::new(&format!("{dependency}_down"));
        let mut event = AuditEvent::new(state.node_id, AuditActor::System, Action::ReadinessFailure, Outcome::Error)
            .on(ResourceType::Dependency, None);
        event.reason = reason;
        let writer = state.audit.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = record(&writer, event, Duration::from_secs(5)).await {
                tracing::error!(dependency, %error, "could not audit a readiness failure");
            }
        });
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
