//! Who sent a frame: the session's account as the services take it ([`Requester`], with the
//! socket's peer address), and how a refused or failed permission check is told to the socket.

use std::net::IpAddr;

use confidant_actors::session::SessionIdentity;
use confidant_protocol::ErrorCode;

use crate::access::{AccessError, Denial, Principal, Requester};
use crate::auditor::Origin;

/// The session's account as the access decision names it.
pub fn principal(who: SessionIdentity) -> Principal {
    Principal {
        user_id: who.user_id,
        role: who.role,
        session_id: who.session_id,
        patient_id: who.patient_id,
        mfa: who.mfa,
    }
}

/// The session's account asking from `peer`, as every service takes it.
pub fn requester(who: SessionIdentity, peer: Option<IpAddr>) -> Requester {
    Requester::new(principal(who), Origin { request_id: None, source_ip: peer, session_id: Some(who.session_id) })
}

/// The code a socket is told for a refused or failed permission check.
pub fn refusal(error: AccessError) -> ErrorCode {
    match error {
        AccessError::Denied(Denial::MfaRequired) => ErrorCode::MfaRequired,
        AccessError::Denied(_) => ErrorCode::Forbidden,
        AccessError::Storage(_) | AccessError::AuditUnavailable => ErrorCode::Unavailable,
    }
}
