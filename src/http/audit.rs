//! `/api/v1/audit`: the audit trail's state for owners (the portal's "Audit trail" screen) and
//! verifying it on demand. The entries themselves never leave through the API: `confidant audit
//! export` is the way out, on the server.

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use crate::audit::checkpoint::{Checkpoint, to_hex};
use crate::audit::status::{AuditStatusError, Verification};
use crate::state::AppState;
use crate::web::ApiError;

/// The newest signed checkpoint of one chain.
#[derive(Serialize, ToSchema)]
pub struct HeadView {
    /// Whose chain (a node, or the command line's).
    node_id: String,
    /// The entry vouched for.
    seq: i64,
    /// Its hash, lowercase hex.
    hash: String,
    /// When signed (UTC ms).
    at_ms: i64,
}

impl From<Checkpoint> for HeadView {
    fn from(c: Checkpoint) -> Self {
        Self { node_id: c.node_id, seq: c.seq, hash: to_hex(&c.hash), at_ms: c.at_ms }
    }
}

/// One verification's outcome.
#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    /// When it finished (UTC ms).
    at_ms: i64,
    /// Whether every chain and checkpoint holds.
    intact: bool,
    /// Entries checked, over all chains.
    entries: u64,
    /// Chains checked.
    chains: usize,
    /// Where the first break is (node, seq, kind of problem), when not intact.
    broken: Option<String>,
    /// What it trusted and read: each key (pinned, or registered in the audit store) and each
    /// witness with how many checkpoints it held.
    basis: Vec<String>,
}

impl From<Verification> for VerificationView {
    fn from(v: Verification) -> Self {
        Self {
            at_ms: v.at_ms,
            intact: v.broken.is_none(),
            entries: v.chains.iter().map(|c| c.entries).sum(),
            chains: v.chains.len(),
            broken: v.broken,
            basis: v.basis,
        }
    }
}

/// The audit trail's state.
#[derive(Serialize, ToSchema)]
pub struct AuditStatusView {
    /// The newest checkpoint of each chain.
    heads: Vec<HeadView>,
    /// Checkpoints in the checkpoint files.
    checkpoints: usize,
    /// The last verification this node ran; `null` when none since it started.
    last_verification: Option<VerificationView>,
}

impl From<AuditStatusError> for ApiError {
    fn from(error: AuditStatusError) -> Self {
        match error {
            AuditStatusError::Denied(denial) => ApiError::Forbidden(denial),
            AuditStatusError::AuditUnavailable => ApiError::Unavailable,
            AuditStatusError::Busy => ApiError::Conflict("a verification is running; try again when it ends"),
            AuditStatusError::Storage(e) => e.into(),
            AuditStatusError::Checkpoints(error) => {
                tracing::error!(%error, "the audit checkpoint files cannot be read");
                ApiError::Internal
            }
            AuditStatusError::Trail(error) => {
                tracing::error!(%error, cause = ?std::error::Error::source(&error), "the audit trail cannot be verified");
                ApiError::Unavailable
            }
        }
    }
}

/// The audit trail's heads, checkpoints and last verification (owners).
#[utoipa::path(get, path = "/api/v1/audit/status", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditStatusView), (status = 401), (status = 403)))]
#[get("/api/v1/audit/status")]
pub async fn status(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let status = state.audit_status.status(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(AuditStatusView {
        heads: status.heads.into_iter().map(HeadView::from).collect(),
        checkpoints: status.checkpoints,
        last_verification: status.last.map(VerificationView::from),
    }))
}

/// Verifies every chain and checkpoint now (owners); a break is reported, not an error.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = VerificationView), (status = 401), (status = 403), (status = 409)))]
#[post("/api/v1/audit/verify")]
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let verification = state.audit_status.verify(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(VerificationView::from(verification)))
}
