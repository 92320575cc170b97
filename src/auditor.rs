//! [`Auditor`]: the one place audit events are built and recorded. Every service, the command
//! line and start-up record through it; it owns the acknowledgement deadline and turns reason
//! codes written as literals into [`ReasonCode`]s. A caller that gets [`AuditUnavailable`] does
//! not go on (fail closed): no audit record, no access.

use std::net::IpAddr;
use std::time::Duration;

use actix::Addr;
use confidant_actors::audit::{
    Action, AuditActor, AuditError, AuditEvent, AuditWriter, Outcome, ReasonCode, ResourceType, Role, record,
};
use confidant_actors::ids::{NodeId, PatientId, RequestId, SessionId, UserId};
use futures_util::future::join_all;
use uuid::Uuid;

/// How long a caller waits for its audit events to be durable before it gives up (and fails).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A reason code written as a literal in this crate; all are valid snake_case.
pub fn reason(code: &'static str) -> ReasonCode {
    ReasonCode::new(code).unwrap_or_else(|| unreachable!("invalid reason code literal {code}"))
}

/// A reason code made of parts (`mls_commit_512_bytes`), or `fallback` if it is not a valid code.
pub fn reason_or(code: &str, fallback: &'static str) -> ReasonCode {
    ReasonCode::new(code).unwrap_or_else(|| reason(fallback))
}

/// Where a request came from, for the audit trail: an HTTP request or a socket's frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// The HTTP request.
    pub request_id: Option<RequestId>,
    /// The peer address.
    pub source_ip: Option<IpAddr>,
    /// The session, when the caller is signed in.
    pub session_id: Option<SessionId>,
}

/// What an access is about, for its audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// Names the patient involved, if there is one.
    pub fn for_patient_if(mut self, patient: Option<PatientId>) -> Self {
        self.patient_id = patient.or(self.patient_id);
        self
    }
}

/// Which patients the audit events of a piece of work named (see [`noting_patients`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Named {
    /// None: the work touched no patient's PHI.
    #[default]
    Nobody,
    /// One patient, in every event that named one.
    One(PatientId),
    /// More than one.
    Several,
}

impl Named {
    fn note(&mut self, patient: Option<PatientId>) {
        *self = match (*self, patient) {
            (named, None) => named,
            (Named::Nobody, Some(p)) => Named::One(p),
            (Named::One(q), Some(p)) if q == p => Named::One(q),
            _ => Named::Several,
        };
    }
}

tokio::task_local! {
    /// The patients named by the events recorded in this task, while [`noting_patients`] runs.
    static NAMED: std::cell::Cell<Named>;
}

/// Runs `work` and says which patients the audit events it recorded (through an [`Auditor`],
/// in this task) named. A kept answer of a write (`crate::idempotency`) names its patient this
/// way, so each replay of it is recorded as a read of that patient's PHI, without every
/// service having to hand the patient up.
pub async fn noting_patients<F: std::future::Future>(work: F) -> (F::Output, Named) {
    NAMED
        .scope(std::cell::Cell::new(Named::Nobody), async move {
            let output = work.await;
            (output, NAMED.with(std::cell::Cell::get))
        })
        .await
}

fn note(event: &AuditEvent) {
    // Outside `noting_patients` there is nothing to note.
    let _ = NAMED.try_with(|named| {
        let mut now = named.get();
        now.note(event.patient_id);
        named.set(now);
    });
}

/// The audit trail could not make an event durable in time; the access it records must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit trail cannot record the access")]
pub struct AuditUnavailable;

/// Builds and records this node's audit events through its one `AuditWriter`.
#[derive(Clone)]
pub struct Auditor {
    node_id: NodeId,
    writer: Addr<AuditWriter>,
}

impl Auditor {
    /// The auditor of node `node_id`, writing through `writer`.
    pub fn new(node_id: NodeId, writer: Addr<AuditWriter>) -> Self {
        Self { node_id, writer }
    }

    /// The node whose chain the events join.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The writer, for callers that batch their own events with their own work (the message
    /// ingest sends a batch's events as one group and commits only once they are durable).
    pub fn writer(&self) -> &Addr<AuditWriter> {
        &self.writer
    }

    /// An event of the node itself (start-up, shutdown, background work).
    pub fn system(&self, action: Action, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(self.node_id, AuditActor::System, action, outcome)
    }

    /// An event of `actor` from `origin` (request, address, session), with a reason.
    pub fn event(
        &self,
        actor: AuditActor,
        origin: &Origin,
        action: Action,
        outcome: Outcome,
        why: &'static str,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(self.node_id, actor, action, outcome).because(reason(why));
        match origin.request_id {
            Some(request) => event = event.from_request(request, origin.source_ip),
            None => event.source_ip = origin.source_ip,
        }
        if let Some(session) = origin.session_id {
            event = event.in_session(session);
        }
        event
    }

    /// An event of signed-in user `user` (with `role`) from `origin`, about `about`.
    pub fn by_user(
        &self,
        user: UserId,
        role: Role,
        origin: &Origin,
        about: About,
        outcome: Outcome,
        why: &'static str,
    ) -> AuditEvent {
        let mut event = self
            .event(AuditActor::User { id: user, role }, origin, about.action, outcome, why)
            .on(about.resource_type, about.resource_id);
        event.patient_id = about.patient_id;
        event
    }

    /// Records `event` and waits until it is durable; [`AuditUnavailable`] otherwise.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        note(&event);
        record(&self.writer, event, ACK_TIMEOUT).await.map_err(|error| unavailable(&error))
    }

    /// Records `events` and waits until every one is durable; [`AuditUnavailable`] if any is not.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<(), AuditUnavailable> {
        events.iter().for_each(note);
        let results = join_all(events.into_iter().map(|event| record(&self.writer, event, ACK_TIMEOUT))).await;
        match results.into_iter().find_map(Result::err) {
            Some(error) => Err(unavailable(&error)),
            None => Ok(()),
        }
    }

    /// Records a follow-up event whose absence changes no answer (how a submission already on
    /// record ended, a summary of what was just recorded): a failure is logged, not returned.
    pub async fn record_follow_up(&self, event: AuditEvent, what: &'static str) {
        if let Err(error) = record(&self.writer, event, ACK_TIMEOUT).await {
            tracing::warn!(%error, what, "a follow-up audit record was not made");
        }
    }
}

/// Logs why an event could not be recorded (no values: events hold ids and codes only).
fn unavailable(error: &AuditError) -> AuditUnavailable {
    tracing::error!(%error, "could not write an audit event; refusing the access it records");
    AuditUnavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_names_nobody_one_patient_or_several() {
        let (ada, bea) = (PatientId::from_uuid(Uuid::new_v4()), PatientId::from_uuid(Uuid::new_v4()));
        let after = |seen: &[Option<PatientId>]| {
            let mut named = Named::Nobody;
            seen.iter().for_each(|p| named.note(*p));
            named
        };
        assert_eq!(after(&[None, None]), Named::Nobody);
        assert_eq!(after(&[None, Some(ada), None, Some(ada)]), Named::One(ada));
        assert_eq!(after(&[Some(ada), Some(bea), None]), Named::Several);
    }

    #[tokio::test]
    async fn only_the_work_inside_noting_patients_is_noted() {
        let ada = PatientId::from_uuid(Uuid::new_v4());
        let event = |patient: Option<PatientId>| {
            let mut event =
                AuditEvent::new(NodeId::from_uuid(Uuid::new_v4()), AuditActor::System, Action::Read, Outcome::Success);
            event.patient_id = patient;
            event
        };
        note(&event(Some(ada)));
        let ((), named) = noting_patients(async { note(&event(Some(ada))) }).await;
        assert_eq!(named, Named::One(ada));
        let ((), named) = noting_patients(async { note(&event(None)) }).await;
        assert_eq!(named, Named::Nobody, "nothing leaks from one piece of work into the next");
    }
}
