//! MLS messaging over the socket: a session attaches one of its account's devices, then sends
//! application messages and commits and acknowledges what it processed. The server validates
//! and orders, stores ciphertext, audits the metadata (never content: it cannot read it), and
//! pushes each accepted message to the member devices' topics, across nodes through the Hub.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ReasonCode, ResourceType};
use confidant_actors::hub::Topic;
use confidant_actors::ids::{ConversationId, DeviceId};
use confidant_actors::session::SessionIdentity;
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, VERSION};

use crate::auditor::reason;
use crate::messaging::frames::{message_frame, welcome_frame};
use crate::messaging::mls::MlsError;
use crate::messaging::{Committed, Conversation, ConversationPolicy, Device, MessagingError, Sent};
use crate::state::AppState;

/// The code a client is told for a messaging failure (details go to the log, without content).
pub fn error_code(error: &MessagingError) -> ErrorCode {
    match error {
        MessagingError::Invalid(_) => ErrorCode::InvalidMls,
        MessagingError::NotAllowed => ErrorCode::Forbidden,
        MessagingError::Conflict => ErrorCode::InvalidMls,
        MessagingError::TooMany => ErrorCode::RateLimited,
        MessagingError::Unavailable | MessagingError::Storage(_) => {
            tracing::warn!(%error, "messaging request failed");
            ErrorCode::Unavailable
        }
    }
}

/// Pushes `frame` to each device's topic (every node's sessions of those devices get it).
pub async fn deliver(state: &AppState, devices: impl IntoIterator<Item = DeviceId>, frame: &ServerFrame) {
    // A device that misses the push catches up from its cursor when it next attaches.
    state.pusher.push(devices.into_iter().map(Topic::Device), None, frame, "conversation_message").await;
}

/// The catch-up of an attaching device: its Welcomes, then what it has not acknowledged.
pub async fn missed(state: &AppState, device: DeviceId, id: String) -> Result<Vec<ServerFrame>, ErrorCode> {
    let (welcomes, messages) = state.conversations.missed(device).await.map_err(|e| error_code(&e))?;
    let mut frames: Vec<ServerFrame> = welcomes.iter().map(welcome_frame).collect();
    frames.extend(messages.iter().map(message_frame));
    frames.push(ServerFrame::ack(id));
    if let Ok(left) = state.devices.stock(device).await
        && left < crate::messaging::devices::LOW_KEY_PACKAGES
    {
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
    let outcome = match frame {
        ClientFrame::MlsSend { id, conversation_id, message, .. } => {
            send(&state, who, peer, id, ConversationId::from_uuid(conversation_id), &message).await
        }
        ClientFrame::MlsCommit { id, conversation_id, commit, welcome, .. } => {
            commit_frame(&state, who, peer, id, ConversationId::from_uuid(conversation_id), &commit, welcome.as_deref())
                .await
        }
        ClientFrame::MlsAck { id, conversation_id, seq, .. } => {
            ack(&state, who, id, ConversationId::from_uuid(conversation_id), seq).await
        }
        _ => Err(ErrorCode::MalformedFrame),
    };
    match outcome {
        Ok(frames) => frames,
        Err(code) => vec![ServerFrame::error(id, code)],
    }
}

/// The attached device, still registered and active, and the conversation it names, of which
/// it must be a member.
async fn member(
    state: &AppState,
    who: SessionIdentity,
    conversation: ConversationId,
) -> Result<(Device, Conversation), ErrorCode> {
    let device_id = who.device_id.ok_or(ErrorCode::NoDevice)?;
    let device = state.devices.get(device_id).await.map_err(|e| error_code(&e))?;
    let device = device.filter(|d| d.user_id == who.user_id && d.removed_at_ms.is_none()).ok_or(ErrorCode::NoDevice)?;
    let found = state.conversations.get(conversation).await.map_err(|e| error_code(&e))?;
    let conversation = found.ok_or(ErrorCode::NotFound)?;
    if !state.conversations.is_member(conversation.id, device.id).await.map_err(|e| error_code(&e))? {
        return Err(ErrorCode::NotFound);
    }
    Ok((device, conversation))
}

/// Records `event` and waits for the audit writer's acknowledgement; without it nothing may
/// be stored (`unavailable`, fail closed).
async fn on_record(state: &AppState, event: AuditEvent) -> Result<(), ErrorCode> {
    state.auditor.record(event).await.map_err(|_| ErrorCode::Unavailable)
}

/// The answer to a commit or message that was stored at `seq`.
fn accepted(id: String, conversation: &Conversation, seq: u64, epoch: u64) -> ServerFrame {
    ServerFrame::MlsAccepted { v: VERSION, id, conversation_id: *conversation.id.as_uuid(), seq, epoch }
}

/// The answer to a commit or message made in an epoch that is over.
fn stale(id: String, conversation: &Conversation, epoch: u64) -> ServerFrame {
    ServerFrame::MlsStaleEpoch { v: VERSION, id, conversation_id: *conversation.id.as_uuid(), epoch }
}

fn decode(text: &str) -> Result<Vec<u8>, ErrorCode> {
    B64.decode(text).map_err(|_| ErrorCode::MalformedFrame)
}

/// The audit record of a message: who sent what kind, how large, to which conversation, and
/// the patient it is about (none for a staff conversation). Never content.
fn audited(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    conversation: &Conversation,
    what: &str,
    bytes: usize,
    outcome: Outcome,
) -> AuditEvent {
    let actor = AuditActor::User { id: who.user_id, role: who.role };
    let mut event = AuditEvent::new(state.node_id, actor, Action::Create, outcome)
        .on(ResourceType::Message, Some(*conversation.id.as_uuid()))
        .in_session(who.session_id)
        .because(ReasonCode::new(&format!("{what}_{bytes}_bytes")).unwrap_or_else(|| reason("mls_message")));
    event.patient_id = conversation.kind.patient();
    event.source_ip = peer;
    event
}

/// Records how a submission already on record ended when it changed nothing stored (refused,
/// or its epoch lost). The answer does not depend on it, so a failure is logged, not answered.
async fn record_outcome(state: &AppState, event: AuditEvent) {
    if let Err(error) = state.auditor.record(event).await {
        tracing::warn!(%error, "the audit record of an MLS submission's outcome was not made");
    }
}

/// Records that a submission already on record as made lost its epoch: it took no seq and
/// changed nothing, and its sender is told the current epoch. Without it the trail would show a
/// message or commit as made that nobody received.
async fn record_stale(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    conversation: &Conversation,
    what: &str,
) {
    let code = ReasonCode::new(&format!("{what}_stale_epoch")).unwrap_or_else(|| reason("mls_stale_epoch"));
    record_outcome(state, audited(state, who, peer, conversation, what, 0, Outcome::Error).because(code)).await;
}

async fn send(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    conversation: ConversationId,
    message: &str,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let bytes = decode(message)?;
    // The attached device was checked at attach; a device removed since is no longer in any
    // conversation's membership, which is read here once and is also the fan-out.
    let device = who.device_id.ok_or(ErrorCode::NoDevice)?;
    let found = state.conversations.for_sending(conversation, device).await.map_err(|e| error_code(&e))?;
    let (conversation, members) = found.ok_or(ErrorCode::NotFound)?;
    if !members.contains(&device) {
        return Err(ErrorCode::NotFound);
    }
    // Stored only once its audit record is durable: if the audit trail cannot take it, nothing
    // is stored or delivered and the sender hears `unavailable`. The ingest records it with
    // the other messages of its batch.
    let event = audited(state, who, peer, &conversation, "mls_application", bytes.len(), Outcome::Success);
    let now = state.identity.clock.now_ms();
    let sent = state.conversations.send(device, &conversation, members, &bytes, now, event).await;
    let sent = sent.map_err(|e| error_code(&e))?;
    let (stored, epoch, recipients) = match sent {
        Sent::Accepted { stored, epoch, recipients } => (stored, epoch, recipients),
        Sent::Stale { epoch } => {
            record_stale(state, who, peer, &conversation, "mls_application").await;
            return Ok(vec![stale(id, &conversation, epoch)]);
        }
    };
    deliver(state, recipients, &message_frame(&stored)).await;
    Ok(vec![accepted(id, &conversation, stored.seq, epoch)])
}

async fn commit_frame(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    id: String,
    conversation: ConversationId,
    commit: &str,
    welcome: Option<&str>,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let commit = decode(commit)?;
    let welcome = welcome.map(decode).transpose()?;
    let (device, conversation) = member(state, who, conversation).await?;
    // As for application messages, the submission is on record before it can change anything.
    let event = audited(state, who, peer, &conversation, "mls_commit", commit.len(), Outcome::Success);
    on_record(state, event).await?;
    let now = state.identity.clock.now_ms();
    let policy = ConversationPolicy::new(state.identity.accounts.clone(), state.access.clone());
    let outcome = state.conversations.commit(&device, &conversation, &commit, welcome.as_deref(), &policy, now).await;
    let committed = match outcome {
        Ok(committed) => committed,
        Err(error) => {
            if matches!(error, MessagingError::NotAllowed | MessagingError::Invalid(MlsError::Credential)) {
                let refused = audited(state, who, peer, &conversation, "mls_commit", commit.len(), Outcome::Denied);
                record_outcome(state, refused).await;
            }
            return Err(error_code(&error));
        }
    };
    let (stored, epoch, recipients, welcomed) = match committed {
        Committed::Accepted { stored, epoch, recipients, welcomed } => (stored, epoch, recipients, welcomed),
        Committed::Stale { epoch } => {
            record_stale(state, who, peer, &conversation, "mls_commit").await;
            return Ok(vec![stale(id, &conversation, epoch)]);
        }
    };
    if !welcomed.is_empty() {
        let actor = AuditActor::User { id: who.user_id, role: who.role };
        let mut added = AuditEvent::new(state.node_id, actor, Action::PermissionChange, Outcome::Success)
            .on(ResourceType::Conversation, Some(*conversation.id.as_uuid()))
            .in_session(who.session_id)
            .because(reason("conversation_members_added"));
        added.patient_id = conversation.kind.patient();
        added.source_ip = peer;
        if state.auditor.record(added).await.is_err() {
            // The commit itself is on record (above) and stored; only this summary is missing.
            tracing::error!(conversation = %conversation.id, "could not audit added conversation members");
        }
    }
    deliver(state, recipients, &message_frame(&stored)).await;
    for (device, welcome) in &welcomed {
        deliver(state, [*device], &welcome_frame(welcome)).await;
    }
    Ok(vec![accepted(id, &conversation, stored.seq, epoch)])
}

async fn ack(
    state: &AppState,
    who: SessionIdentity,
    id: String,
    conversation: ConversationId,
    seq: u64,
) -> Result<Vec<ServerFrame>, ErrorCode> {
    let device = who.device_id.ok_or(ErrorCode::NoDevice)?;
    state.conversations.ack(device, conversation, seq).await.map_err(|e| error_code(&e))?;
    Ok(vec![ServerFrame::ack(id)])
}
