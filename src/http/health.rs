//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: see
//! [`crate::health`]). Load balancers route by readiness; orchestrators restart on liveness.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::state::AppState;
use crate::web::ApiError;

/// Liveness: the process is up and serving HTTP.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: every dependency answers. 503 names the ones that do not.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let report = state.readiness.check().await;
    if report.down().is_empty() {
        Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": report })))
    } else {
        Err(ApiError::NotReady(report))
    }
}
