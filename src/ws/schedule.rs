//! Schedule subscriptions over the socket: which topic a `schedule.subscribe` may follow, and
//! its catch-up, both answered by [`crate::schedule::ScheduleService`]; here they are only
//! asked for and their refusals turned into the socket's error codes.

use std::net::IpAddr;

use confidant_actors::hub::Topic;
use confidant_actors::session::{CatchUp, SessionIdentity};
use confidant_protocol::{ErrorCode, ScheduleScope};

use super::caller::{refusal, requester};
use crate::access::AccessError;
use crate::schedule::ScheduleServiceError;
use crate::state::AppState;

/// The topic `who` (asking from `peer`) may follow for `scope`; a refusal is audited.
pub async fn subscription(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    scope: ScheduleScope,
) -> Result<Topic, ErrorCode> {
    state.services.schedule_service.subscription(&requester(who, peer), scope).await.map_err(error_code)
}

/// The catch-up of a schedule topic: the changes after `after`, or a snapshot.
pub async fn catch_up(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    topic: Topic,
    id: String,
    after: Option<u64>,
) -> Result<CatchUp, ErrorCode> {
    state.services.schedule_service.catch_up(&requester(who, peer), topic, id, after).await.map_err(error_code)
}

/// The code a socket is told for a schedule refusal or failure.
fn error_code(error: ScheduleServiceError) -> ErrorCode {
    match error {
        ScheduleServiceError::Denied(denial) => refusal(AccessError::Denied(denial)),
        ScheduleServiceError::NotYourSchedule => ErrorCode::Forbidden,
        ScheduleServiceError::NotFound => ErrorCode::NotFound,
        ScheduleServiceError::AuditUnavailable => ErrorCode::Unavailable,
        ScheduleServiceError::Storage(_) | ScheduleServiceError::Reminders(_) => {
            tracing::warn!(%error, "schedule read failed");
            ErrorCode::Unavailable
        }
        // Subscribing and catching up change nothing and look up no account or record.
        ScheduleServiceError::Invalid(_)
        | ScheduleServiceError::DoubleBooked
        | ScheduleServiceError::Cancelled
        | ScheduleServiceError::Accounts(_)
        | ScheduleServiceError::Patients(_) => {
            tracing::error!(%error, "unexpected answer to a schedule subscription");
            ErrorCode::InternalError
        }
    }
}
