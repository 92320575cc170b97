//! How a REST handler passes the gate: its [`Caller`] as the domain's [`Requester`], and the
//! gate's answers as [`ApiError`]s. The decision and its audit records are
//! [`crate::access::Gate`]'s; nothing here decides.

use confidant_actors::audit::{AuditEvent, Outcome};

use crate::access::{Decision, Operation, Requester, Resource, Target};
pub use crate::auditor::About;
use crate::state::AppState;
use crate::web::ApiError;

use super::auth::Caller;

impl Caller {
    /// The caller as every service takes them.
    pub fn requester(&self) -> Requester {
        Requester::new(self.principal, self.origin)
    }
}

/// The audit event of `caller` doing `about`, with `outcome` and `code`.
pub fn event(state: &AppState, caller: &Caller, about: About, outcome: Outcome, code: &'static str) -> AuditEvent {
    state.gate.event(&caller.requester(), about, outcome, code)
}

/// Records events and waits until all are durable; 503 otherwise.
pub async fn record_all(state: &AppState, events: Vec<AuditEvent>) -> Result<(), ApiError> {
    Ok(state.gate.record_all(events).await?)
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
    Ok(state.gate.authorize(&caller.requester(), resource, operation, target, about).await?)
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
    Ok(state.gate.authorize_and_record(&caller.requester(), resource, operation, target, about).await?)
}
