//! [`Gate`]: the permission check every service passes before it touches a resource. It asks
//! [`Access::check`] (the one decision), audits a refusal, and records an allowed access before
//! the caller goes on: an access to PHI is acknowledged as durable before any data is returned
//! or changed, and if the audit trail cannot take it the access fails (fail closed).

use confidant_actors::audit::{AuditEvent, Outcome};

use super::check::{Access, AccessError, Decision, Principal, Target};
use super::matrix::{Operation, Resource};
use crate::auditor::{About, AuditUnavailable, Auditor, Origin};

/// Who asks, and from where: the signed-in principal and the origin of their request (an HTTP
/// request or a socket's frame). Every service operation takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requester {
    /// Who, with role, session and second-factor state.
    pub principal: Principal,
    /// Where from, in their session.
    pub origin: Origin,
}

impl Requester {
    /// `principal`, asking from `origin` (which is tied to the principal's session).
    pub fn new(principal: Principal, origin: Origin) -> Self {
        Self { principal, origin: Origin { session_id: Some(principal.session_id), ..origin } }
    }
}

impl From<AuditUnavailable> for AccessError {
    fn from(_: AuditUnavailable) -> Self {
        AccessError::AuditUnavailable
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

/// The decision and the audit trail, together.
#[derive(Clone)]
pub struct Gate {
    access: Access,
    auditor: Auditor,
}

impl Gate {
    /// A gate over `access` that records through `auditor`.
    pub fn new(access: Access, auditor: Auditor) -> Self {
        Self { access, auditor }
    }

    /// The decision itself, for lists that check each item (the care-team or break-glass
    /// reach of each patient) and for conversation membership.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The auditor, for events that are not an access decision (a care-team change).
    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// The audit event of `who` doing `about`, with `outcome` and reason `why`.
    pub fn event(&self, who: &Requester, about: About, outcome: Outcome, why: &'static str) -> AuditEvent {
        self.auditor.by_user(who.principal.user_id, who.principal.role, &who.origin, about, outcome, why)
    }

    /// Records `events` and waits until all are durable.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<(), AccessError> {
        Ok(self.auditor.record_all(events).await?)
    }

    /// Asks for permission; a refusal is audited (outcome `denied`, the denial's reason).
    pub async fn authorize(
        &self,
        who: &Requester,
        resource: Resource,
        operation: Operation,
        target: Target,
        about: About,
    ) -> Result<Decision, AccessError> {
        match self.access.check(&who.principal, resource, operation, target).await {
            Ok(decision) => Ok(decision),
            Err(AccessError::Denied(denial)) => {
                let mut denied = self.event(who, about, Outcome::Denied, "denied");
                denied.reason = Some(denial.reason());
                self.auditor.record(denied).await?;
                Err(AccessError::Denied(denial))
            }
            Err(other) => Err(other),
        }
    }

    /// [`Self::authorize`], then the allowed access recorded (and durable) before the caller
    /// goes on.
    pub async fn authorize_and_record(
        &self,
        who: &Requester,
        resource: Resource,
        operation: Operation,
        target: Target,
        about: About,
    ) -> Result<Decision, AccessError> {
        let decision = self.authorize(who, resource, operation, target, about).await?;
        self.auditor.record(self.event(who, about, Outcome::Success, allowed_because(decision))).await?;
        Ok(decision)
    }
}
