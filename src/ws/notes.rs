//! Clinical-note drafts over the socket (live autosave, docs/PROTOCOL.md): `note.open` and
//! `note.draft` mapped to [`NoteService`](crate::notes::NoteService), the same operations the
//! REST routes call, so a draft typed on one device resumes on another and a signed note refuses
//! here exactly as it does over HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::session::SessionIdentity;
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, VERSION};

use super::caller::{refusal, requester};
use crate::access::AccessError;
use crate::notes::NoteServiceError;
use crate::state::AppState;

/// Answers one note frame with the frames to send back.
pub async fn answer(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    frame: ClientFrame,
) -> Vec<ServerFrame> {
    let service = &state.services.notes;
    let who = requester(who, peer);
    match frame {
        ClientFrame::NoteOpen { id, note_id, .. } => match service.open_draft(&who, note_id).await {
            Ok(opened) => vec![ServerFrame::NoteDraft {
                v: VERSION,
                id,
                note_id,
                template_key: opened.meta.template_key,
                template_version: opened.meta.template_version,
                fields: opened.content.fields,
            }],
            Err(error) => vec![refused(id, error)],
        },
        ClientFrame::NoteDraft { id, note_id, fields, .. } => match service.save_draft(&who, note_id, fields).await {
            Ok(()) => vec![ServerFrame::ack(id)],
            Err(error) => vec![refused(id, error)],
        },
        other @ (ClientFrame::Auth { .. }
        | ClientFrame::Activity { .. }
        | ClientFrame::ScheduleSubscribe { .. }
        | ClientFrame::ScheduleUnsubscribe { .. }
        | ClientFrame::IntakeOpen { .. }
        | ClientFrame::IntakeDraft { .. }
        | ClientFrame::IntakeSubmit { .. }
        | ClientFrame::MlsAttach { .. }
        | ClientFrame::MlsSend { .. }
        | ClientFrame::MlsCommit { .. }
        | ClientFrame::MlsAck { .. }
        | ClientFrame::MlsRead { .. }
        | ClientFrame::AlertAck { .. }) => {
            vec![ServerFrame::error(other.request_id().map(str::to_owned), ErrorCode::MalformedFrame)]
        }
    }
}

/// The error frame of a refused or failed request (a field names itself and its rule, never
/// its value).
fn refused(id: String, error: NoteServiceError) -> ServerFrame {
    let code = match error {
        NoteServiceError::InvalidField(invalid) => {
            return ServerFrame::error_saying(Some(id), ErrorCode::InvalidNote, invalid.to_string());
        }
        NoteServiceError::NotAllowed(denial) => refusal(AccessError::Denied(denial)),
        NoteServiceError::NotFound => ErrorCode::NotFound,
        NoteServiceError::Locked => ErrorCode::NoteLocked,
        // Templates, signatures and supervision are REST operations; kept total for the type.
        NoteServiceError::InvalidTemplate(_)
        | NoteServiceError::Invalid { .. }
        | NoteServiceError::Conflict(_)
        | NoteServiceError::StepUp(_) => ErrorCode::MalformedFrame,
        NoteServiceError::AuditUnavailable => ErrorCode::Unavailable,
        NoteServiceError::Store(error) => {
            tracing::warn!(%error, "note request failed");
            ErrorCode::Unavailable
        }
    };
    ServerFrame::error(Some(id), code)
}
