//! The gate every `/api/v1` handler passes: ask [`crate::access::Access`] (the one decision),
//! audit a refusal, and build the audit events of allowed access. Events about PHI are
//! recorded, and acknowledged as durable, before any data is returned or changed: if the
//! audit trail cannot take them the request fails with 503 (fail closed).

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType, record};
use confidant_actors::ids::PatientId;
use futures_util::future::join_all;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use crate::access::{AccessError, Decision, Operation, Resource, Target};
use crate::server::{AUDIT_ACK_TIMEOUT, reason};
use crate::state::AppState;

/// What an access is about, for its audit event.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The action recorded.
    pub action: Action,
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// Which one.
    pub resource_id: Option<Uuid>,
    /// The patient whose PHI is involved.
    pub patient_id: Option<PatientId>,
}

impl About {
    /// An action on a resource.
    pub fn new(action: Action, resource_type: ResourceType, resource_id: Option<Uuid>) -> Self {
        Self { action, resource_type, resource_id, patient_id: None }
    }

    /// An action on a patient's record.
    pub fn patient(action: Action, patient: PatientId) -> Self {
        Self {
            action,
            resource_type: ResourceType::Patient,
            resource_id: Some(*patient.as_uuid()),
            patient_id: Some(patient),
        }
    }

    /// Names the patient involved.
    pub fn for_patient(mut self, patient: PatientId) -> Self {
        self.patient_id = Some(patient);
        self
    }
}

/// The audit reason of an allowed access: how it was allowed.
pub fn allowed_because(decision: Decision) -> &'static str {
    match decision {
        Decision::Practice => "practice_role",
        Decision::Own => "own_record",
        Decision::CareTeam => "care_team",
        Decision::BreakGlass { .. } => "break_glass",
    }
}

/// The audit event of `caller` doing `about`, with `outcome` and `code`.
pub fn event(state: &AppState, caller: &Caller, about: About, outcome: Outcome, code: &'static str) -> AuditEvent {
    let actor = AuditActor::User { id: caller.principal.user_id, role: caller.principal.role };
    let mut event = AuditEvent::new(state.node_id, actor, about.action, outcome)
        .on(about.resource_type, about.resource_id)
        .in_session(caller.principal.session_id)
        .because(reason(code));
    if let Some(request) = caller.origin.request_id {
        event = event.from_request(request, caller.origin.source_ip);
    }
    if let Some(patient) = about.patient_id {
        event = event.for_patient(patient);
    }
    event
}

/// Records events and waits until all are durable; 503 otherwise.
pub async fn record_all(state: &AppState, events: Vec<AuditEvent>) -> Result<(), ApiError> {
    let results = join_all(events.into_iter().map(|e| record(&state.audit, e, AUDIT_ACK_TIMEOUT))).await;
    if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
        tracing::error!(%error, "could not write an access audit event; refusing the request");
        return Err(ApiError::Unavailable);
    }
    Ok(())
}

/// Asks for permission; a refusal is audited (outcome `denied`) and answered 403.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    resource: Resource,
    operation: Operation,
    target: Target,
    about: About,
) -> Result<Decision, ApiError> {
    match state.access.check(&caller.principal, resource, operation, target).await {
        Ok(decision) => Ok(decision),
        Err(AccessError::Denied(denial)) => {
            let mut denied = event(state, caller, about, Outcome::Denied, "denied");
            denied.reason = Some(denial.reason());
            record_all(state, vec![denied]).await?;
            Err(ApiError::Forbidden(denial))
        }
        Err(other) => Err(other.into()),
    }
}

/// [`authorize`], then the allowed access audited before the caller goes on.
pub async fn authorize_and_record(
    state: &AppState,
    caller: &Caller,
    resource: Resource,
    operation: Operation,
    target: Target,
    about: About,
) -> Result<Decision, ApiError> {
    let decision = authorize(state, caller, resource, operation, target, about).await?;
    record_all(state, vec![event(state, caller, about, Outcome::Success, allowed_because(decision))]).await?;
    Ok(decision)
}
