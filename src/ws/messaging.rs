//! MLS messaging over the socket: a session attaches one of its account's devices, then sends
//! application messages and commits and acknowledges what it processed. Each `mls.*` frame is
//! parsed here (ids, base64), answered by [`crate::messaging::MessagingService`] (checks, audit,
//! storage, pushes to the member devices' topics) and its outcome mapped to frames and codes.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_actors::ids::{AttachmentId, ConversationId, DeviceId};
use confidant_actors::session::SessionIdentity;
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, VERSION};

use super::caller::requester;
use crate::access::Denial;
use crate::messaging::frames::{message_frame, welcome_frame};
use crate::messaging::{MessagingService, MessagingServiceError, Submitted};
use crate::state::AppState;

/// The code a client is told for a messaging failure (details go to the log, without content).
pub fn error_code(error: &MessagingServiceError) -> ErrorCode {
    match error {
        MessagingServiceError::InvalidMls(_)
        | MessagingServiceError::SignatureKey
        | MessagingServiceError::Conflict => ErrorCode::InvalidMls,
        // Uploads are REST only; never an answer to a frame.
        MessagingServiceError::AttachmentTooLarge { .. } | MessagingServiceError::AttachmentTooShort => {
            ErrorCode::MalformedFrame
        }
        MessagingServiceError::Denied(Denial::MfaRequired) => ErrorCode::MfaRequired,
        MessagingServiceError::Denied(_) | MessagingServiceError::NotAllowed => ErrorCode::Forbidden,
        MessagingServiceError::TooManyKeyPackages | MessagingServiceError::TooManyClaims { .. } => {
            ErrorCode::RateLimited
        }
        MessagingServiceError::NoDevice => ErrorCode::NoDevice,
        MessagingServiceError::NotFound => ErrorCode::NotFound,
        // The auditor logged why.
        MessagingServiceError::AuditUnavailable(_) => ErrorCode::Unavailable,
        MessagingServiceError::Unavailable | MessagingServiceError::Storage(_) => {
            tracing::warn!(%error, "messaging request failed");
            ErrorCode::Unavailable
        }
        // Logged where it was found.
        MessagingServiceError::Internal => ErrorCode::InternalError,
    }
}

/// The catch-up of an attaching device: its Welcomes, then what it has not acknowledged.
pub async fn missed(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    device: DeviceId,
    id: String,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let missed = state.services.messaging.missed(&requester(who, peer), device).await.map_err(|e| error_code(&e))?;
    let mut frames: Vec<ServerFrame> = missed.welcomes.iter().map(welcome_frame).collect();
    frames.extend(missed.messages.iter().map(message_frame));
    frames.push(ServerFrame::ack(id));
    if let Some(left) = missed.key_packages_low {
        frames.push(ServerFrame::MlsKeyPackagesLow { v: VERSION, device_id: *device.as_uuid(), remaining: left });
    }
    Ok(frames)
}

/// Answers one messaging frame with the frames to send back.
pub async fn answer(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    frame: ClientFrame,
) -> Vec<ServerFrame> {
    let id = frame.request_id().map(str::to_owned);
    let service = &state.services.messaging;
    let outcome = match frame {
        ClientFrame::MlsSend { id, conversation_id, message, attachments, .. } => {
            let attachments: Vec<AttachmentId> = attachments.into_iter().map(AttachmentId::from_uuid).collect();
            send(service, who, peer, id, ConversationId::from_uuid(conversation_id), &message, &attachments).await
        }
        ClientFrame::MlsCommit { id, conversation_id, commit, welcome, .. } => {
            let conversation = ConversationId::from_uuid(conversation_id);
            commit_frame(service, who, peer, id, conversation, &commit, welcome.as_deref()).await
        }
        ClientFrame::MlsAck { id, conversation_id, seq, .. } => {
            mark(service, Mark::Processed, who, peer, id, ConversationId::from_uuid(conversation_id), seq).await
        }
        ClientFrame::MlsRead { id, conversation_id, seq, .. } => {
            mark(service, Mark::Read, who, peer, id, ConversationId::from_uuid(conversation_id), seq).await
        }
        // Routed elsewhere (ports.rs); here only by mistake.
        ClientFrame::Auth { .. }
        | ClientFrame::Activity { .. }
        | ClientFrame::ScheduleSubscribe { .. }
        | ClientFrame::ScheduleUnsubscribe { .. }
        | ClientFrame::IntakeOpen { .. }
        | ClientFrame::IntakeDraft { .. }
        | ClientFrame::IntakeSubmit { .. }
        | ClientFrame::MlsAttach { .. }
        | ClientFrame::NoteOpen { .. }
        | ClientFrame::NoteDraft { .. }
        | ClientFrame::AlertAck { .. } => Err(ErrorCode::MalformedFrame),
    };
    match outcome {
        Ok(frames) => frames,
        Err(code) => vec![ServerFrame::error(id, code)],
    }
}

/// The answer to a message or commit.
fn submitted(id: String, conversation: ConversationId, outcome: Submitted) -> ServerFrame {
    let conversation_id = *conversation.as_uuid();
    match outcome {
        Submitted::Accepted { seq, epoch } => ServerFrame::MlsAccepted { v: VERSION, id, conversation_id, seq, epoch },
        Submitted::Stale { epoch } => ServerFrame::MlsStaleEpoch { v: VERSION, id, conversation_id, epoch },
    }
}

fn decode(text: &str) -> Result<Vec<u8>, ErrorCode> {
    B64.decode(text).map_err(|_| ErrorCode::MalformedFrame)
}

async fn send(
    service: &MessagingService,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    conversation: ConversationId,
    message: &str,
    attachments: &[AttachmentId],
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let bytes = decode(message)?;
    let device = who.device_id.ok_or(ErrorCode::NoDevice)?;
    let sent = service.send(&requester(who, peer), device, conversation, &bytes, attachments).await;
    Ok(vec![submitted(id, conversation, sent.map_err(|e| error_code(&e))?)])
}

async fn commit_frame(
    service: &MessagingService,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    conversation: ConversationId,
    commit: &str,
    welcome: Option<&str>,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let commit = decode(commit)?;
    let welcome = welcome.map(decode).transpose()?;
    let device = who.device_id.ok_or(ErrorCode::NoDevice)?;
    let committed = service.commit(&requester(who, peer), device, conversation, &commit, welcome.as_deref()).await;
    Ok(vec![submitted(id, conversation, committed.map_err(|e| error_code(&e))?)])
}

/// How far the attached device got in a conversation.
#[derive(Debug, Clone, Copy)]
enum Mark {
    /// It took in every message through the seq (`mls.ack`).
    Processed,
    /// Its person read through the seq (`mls.read`).
    Read,
}

/// Records a mark of the attached device; answered `ack`.
async fn mark(
    service: &MessagingService,
    mark: Mark,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    conversation: ConversationId,
    seq: u64,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let device = who.device_id.ok_or(ErrorCode::NoDevice)?;
    let who = requester(who, peer);
    let marked = match mark {
        Mark::Processed => service.ack(&who, device, conversation, seq).await,
        Mark::Read => service.read(&who, device, conversation, seq).await,
    };
    marked.map_err(|e| error_code(&e))?;
    Ok(vec![ServerFrame::ack(id)])
}
