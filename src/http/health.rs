//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: both databases
//! and, when configured, Redis answer within `http.readiness_timeout_ms`). Load balancers route
//! by readiness; orchestrators restart on liveness.

use std::future::Future;
use std::time::Duration;

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
    if report.down().is_empty() {
        Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": report })))
    } else {
        Err(ApiError::NotReady(report))
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
