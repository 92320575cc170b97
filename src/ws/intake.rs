//! Intake forms over the socket: `intake.open`, `intake.draft` and `intake.submit` mapped to
//! [`IntakeService`](crate::intake::IntakeService) and its answers mapped back to frames. The
//! checks, audit records and the clinician's alerts are the service's.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::session::SessionIdentity;
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, VERSION};

use super::caller::{refusal, requester};
use crate::access::AccessError;
use crate::intake::IntakeServiceError;
use crate::state::AppState;

/// Answers one intake frame with the frames to send back.
pub async fn answer(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    frame: ClientFrame,
) -> Vec<ServerFrame> {
    let service = &state.services.intake_service;
    let who = requester(who, peer);
    match frame {
        ClientFrame::IntakeOpen { id, assignment_id, .. } => match service.open(&who, assignment_id).await {
            Ok(opened) => vec![ServerFrame::IntakeForm {
                v: VERSION,
                id,
                assignment_id,
                form: opened.template.definition(),
                answers: opened.draft,
            }],
            Err(error) => vec![refused(id, error)],
        },
        ClientFrame::IntakeDraft { id, assignment_id, answers, .. } => {
            acknowledged(id, service.save_draft(&who, assignment_id, &answers).await)
        }
        ClientFrame::IntakeSubmit { id, assignment_id, answers, .. } => {
            acknowledged(id, service.submit(&who, assignment_id, &answers).await)
        }
        other @ (ClientFrame::Auth { .. }
        | ClientFrame::Activity { .. }
        | ClientFrame::ScheduleSubscribe { .. }
        | ClientFrame::ScheduleUnsubscribe { .. }
        | ClientFrame::MlsAttach { .. }
        | ClientFrame::NoteOpen { .. }
        | ClientFrame::NoteDraft { .. }
        | ClientFrame::MlsSend { .. }
        | ClientFrame::MlsCommit { .. }
        | ClientFrame::MlsAck { .. }
        | ClientFrame::MlsRead { .. }
        | ClientFrame::AlertAck { .. }) => {
            vec![ServerFrame::error(other.request_id().map(str::to_owned), ErrorCode::MalformedFrame)]
        }
    }
}

/// `ack` for a done request, its error frame otherwise.
fn acknowledged(id: String, outcome: Result<(), IntakeServiceError>) -> Vec<ServerFrame> {
    match outcome {
        Ok(()) => vec![ServerFrame::ack(id)],
        Err(error) => vec![refused(id, error)],
    }
}

/// The error frame of a refused or failed request (an invalid answer names the item and the
/// rule, never the value).
fn refused(id: String, error: IntakeServiceError) -> ServerFrame {
    let code = match error {
        IntakeServiceError::InvalidAnswer(invalid) => {
            return ServerFrame::error_saying(Some(id), ErrorCode::InvalidAnswer, invalid.to_string());
        }
        IntakeServiceError::NotAllowed(denial) => refusal(AccessError::Denied(denial)),
        IntakeServiceError::NotFound => ErrorCode::NotFound,
        IntakeServiceError::AlreadySubmitted => ErrorCode::AlreadySubmitted,
        // Assigning is not a socket operation; kept total for the type's sake.
        IntakeServiceError::Invalid { .. } => ErrorCode::MalformedFrame,
        IntakeServiceError::AuditUnavailable => ErrorCode::Unavailable,
        IntakeServiceError::Store(error) => {
            tracing::warn!(%error, "intake request failed");
            ErrorCode::Unavailable
        }
    };
    ServerFrame::error(Some(id), code)
}
