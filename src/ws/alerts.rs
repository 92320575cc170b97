//! Alerts over the socket: the replay of a user's unacknowledged alerts when a session starts
//! (its standing alert topic's catch-up) and `alert.ack`, both mapped to
//! [`AlertService`](crate::alerts::AlertService). Checks and audit records are the service's.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::session::{CatchUp, SessionIdentity};
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::caller::{refusal, requester};
use crate::access::AccessError;
use crate::alerts::AlertError;
use crate::state::AppState;

/// The alerts stored for the session's user that nobody acknowledged yet, oldest first.
pub async fn replay(state: &AppState, who: SessionIdentity, peer: Option<IpAddr>) -> Result<CatchUp, ErrorCode> {
    match state.services.alerts.replay(&requester(who, peer)).await {
        Ok(frames) => Ok(CatchUp { frames, last_event_id: 0 }),
        Err(error) => Err(code(error)),
    }
}

/// Answers `alert.ack`.
pub async fn answer(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    frame: ClientFrame,
) -> Vec<ServerFrame> {
    let ClientFrame::AlertAck { id, alert_id, follow_up, .. } = frame else {
        return vec![ServerFrame::error(frame.request_id().map(str::to_owned), ErrorCode::MalformedFrame)];
    };
    let outcome = state.services.alerts.acknowledge(&requester(who, peer), alert_id, follow_up.as_ref()).await;
    match outcome {
        Ok(_) => vec![ServerFrame::ack(id)],
        Err(error) => vec![ServerFrame::error(Some(id), code(error))],
    }
}

/// The code a socket is told for a refused or failed alert operation.
fn code(error: AlertError) -> ErrorCode {
    match error {
        AlertError::NotFound => ErrorCode::NotFound,
        AlertError::NotAllowed(denial) => refusal(AccessError::Denied(denial)),
        AlertError::InvalidFollowUp | AlertError::AlreadyFollowedUp | AlertError::NoFollowUp => {
            ErrorCode::InvalidFollowUp
        }
        AlertError::AuditUnavailable => ErrorCode::Unavailable,
        error @ (AlertError::Crypto(_) | AlertError::Storage(_) | AlertError::Outbox(_) | AlertError::Accounts(_)) => {
            tracing::warn!(%error, "alert request failed");
            ErrorCode::Unavailable
        }
    }
}
