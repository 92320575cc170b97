//! Intake forms over the socket: open (the form and the saved draft), autosave a draft, submit.
//! Each is checked against the permission matrix (a patient, their own forms), validated
//! against the form, audited and acknowledged before anything is read or stored, and a
//! submission is pushed to the assigned clinician at once (with an urgent alert when PHQ-9
//! item 9 is above zero).

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType};
use confidant_actors::hub::Topic;
use confidant_actors::session::SessionIdentity;
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, VERSION};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::access::{Operation, Principal, Resource, Target};
use crate::auditor::reason;
use crate::intake::{Assignment, templates};
use crate::state::AppState;

/// Answers one intake frame with the frames to send back.
pub async fn answer(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    frame: ClientFrame,
) -> Vec<ServerFrame> {
    let id = frame.request_id().map(str::to_owned);
    let outcome = match frame {
        ClientFrame::IntakeOpen { id, assignment_id, .. } => open(&state, who, peer, id, assignment_id).await,
        ClientFrame::IntakeDraft { id, assignment_id, answers, .. } => {
            draft(&state, who, peer, id, assignment_id, answers).await
        }
        ClientFrame::IntakeSubmit { id, assignment_id, answers, .. } => {
            submit(&state, who, peer, id, assignment_id, answers).await
        }
        _ => Err((ErrorCode::MalformedFrame, None)),
    };
    match outcome {
        Ok(frames) => frames,
        Err((code, Some(message))) => vec![ServerFrame::error_saying(id, code, message)],
        Err((code, None)) => vec![ServerFrame::error(id, code)],
    }
}

type Answered = Result<Vec<ServerFrame>, (ErrorCode, Option<String>)>;

fn code(code: ErrorCode) -> (ErrorCode, Option<String>) {
    (code, None)
}

/// The assignment, if `who` may perform `operation` on it; refusals are audited.
async fn allowed(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    assignment_id: Uuid,
    operation: Operation,
) -> Result<Assignment, (ErrorCode, Option<String>)> {
    let assignment = state.intake.get(assignment_id).await.map_err(|_| code(ErrorCode::Unavailable))?;
    let assignment = assignment.ok_or(code(ErrorCode::NotFound))?;
    let principal = Principal {
        user_id: who.user_id,
        role: who.role,
        session_id: who.session_id,
        patient_id: who.patient_id,
        mfa: who.mfa,
    };
    let target = Target::Patient(assignment.patient_id);
    match state.access.check(&principal, Resource::IntakeResponse, operation, target).await {
        Ok(_) => Ok(assignment),
        Err(crate::access::AccessError::Denied(denial)) => {
            let mut refused = event(state, who, peer, Action::Read, &assignment, Outcome::Denied, "denied");
            refused.reason = Some(denial.reason());
            let _ = record_all(state, vec![refused]).await;
            Err(code(if denial == crate::access::Denial::MfaRequired {
                ErrorCode::MfaRequired
            } else {
                ErrorCode::Forbidden
            }))
        }
        Err(crate::access::AccessError::Storage(_) | crate::access::AccessError::AuditUnavailable) => {
            Err(code(ErrorCode::Unavailable))
        }
    }
}

fn event(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    action: Action,
    assignment: &Assignment,
    outcome: Outcome,
    why: &'static str,
) -> AuditEvent {
    let actor = AuditActor::User { id: who.user_id, role: who.role };
    let mut event = AuditEvent::new(state.node_id, actor, action, outcome)
        .on(ResourceType::IntakeResponse, Some(assignment.id))
        .for_patient(assignment.patient_id)
        .in_session(who.session_id)
        .because(reason(why));
    event.source_ip = peer;
    event
}

async fn record_all(state: &AppState, events: Vec<AuditEvent>) -> Result<(), (ErrorCode, Option<String>)> {
    state.auditor.record_all(events).await.map_err(|_| code(ErrorCode::Unavailable))
}

fn invalid(error: templates::InvalidAnswer) -> (ErrorCode, Option<String>) {
    (ErrorCode::InvalidAnswer, Some(error.to_string()))
}

async fn open(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    assignment_id: Uuid,
) -> Answered {
    let assignment = allowed(state, who, peer, assignment_id, Operation::Read).await?;
    if assignment.submitted {
        return Err(code(ErrorCode::AlreadySubmitted));
    }
    record_all(state, vec![event(state, who, peer, Action::Read, &assignment, Outcome::Success, "intake_opened")])
        .await?;
    let answers = state.intake.draft(assignment_id).await.map_err(|_| code(ErrorCode::Unavailable))?;
    let form = serde_json::to_value(templates::template(assignment.form)).unwrap_or(Value::Null);
    Ok(vec![ServerFrame::IntakeForm { v: VERSION, id, assignment_id, form, answers }])
}

async fn draft(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    assignment_id: Uuid,
    answers: Map<String, Value>,
) -> Answered {
    let assignment = allowed(state, who, peer, assignment_id, Operation::Update).await?;
    templates::validate(assignment.form, &answers, false).map_err(invalid)?;
    record_all(
        state,
        vec![event(state, who, peer, Action::Update, &assignment, Outcome::Success, "intake_draft_saved")],
    )
    .await?;
    let now = state.identity.clock.now_ms();
    match state.intake.save_draft(assignment_id, &answers, now).await {
        Ok(true) => Ok(vec![ServerFrame::ack(id)]),
        Ok(false) => Err(code(ErrorCode::AlreadySubmitted)),
        Err(_) => Err(code(ErrorCode::Unavailable)),
    }
}

async fn submit(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    assignment_id: Uuid,
    answers: Map<String, Value>,
) -> Answered {
    let assignment = allowed(state, who, peer, assignment_id, Operation::Update).await?;
    templates::validate(assignment.form, &answers, true).map_err(invalid)?;
    let score = templates::score(assignment.form, &answers);
    let mut events = vec![event(state, who, peer, Action::Create, &assignment, Outcome::Success, "intake_submitted")];
    let urgent = score.as_ref().is_some_and(|s| s.urgent);
    if urgent {
        events.push(event(state, who, peer, Action::Create, &assignment, Outcome::Success, "urgent_alert_phq9_item9"));
    }
    record_all(state, events).await?;
    let now = state.identity.clock.now_ms();
    match state.intake.submit(assignment_id, &answers, score.as_ref(), now).await {
        Ok(true) => {}
        Ok(false) => return Err(code(ErrorCode::AlreadySubmitted)),
        Err(_) => return Err(code(ErrorCode::Unavailable)),
    }
    let patient_id = *assignment.patient_id.as_uuid();
    let submitted = ServerFrame::IntakeSubmitted {
        v: VERSION,
        assignment_id,
        patient_id,
        form: assignment.form.as_str().to_owned(),
        score: score.as_ref().map(|s| s.total),
        severity: score.as_ref().map(|s| s.severity.clone()),
        submitted_at_ms: now,
    };
    let topic = Topic::ClinicianAlerts(assignment.clinician_id);
    let mut pushes = vec![submitted];
    if urgent {
        pushes.push(ServerFrame::Alert {
            v: VERSION,
            kind: "phq9_item9".into(),
            patient_id,
            assignment_id: Some(assignment_id),
            clinician_id: None,
            at_ms: now,
        });
    }
    for frame in pushes {
        state.pusher.push([topic], None, &frame, "intake_submission").await;
    }
    Ok(vec![ServerFrame::ack(id)])
}
