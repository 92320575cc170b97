//! `ServerPorts`: what a session actor asks of the server. Permissions come from the one
//! access decision; reads of schedule data are audited (and acknowledged) before they are sent.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType, Role};
use confidant_actors::hub::Topic;
use confidant_actors::ids::{DeviceId, PatientId};
use confidant_actors::session::{CatchUp, Ended, PortFuture, SessionIdentity, SessionPorts};
use confidant_protocol::{ClientFrame, ErrorCode, ScheduleScope, ServerFrame, VERSION};
use futures_util::future::join_all;

use crate::access::{AccessError, Decision, Denial, Operation, Principal, Resource, Target};
use crate::auditor::reason;
use crate::identity::Origin;
use crate::identity::sessions::{EndReason, SessionOwner};
use crate::schedule::{self, Filter};
use crate::state::AppState;

/// Changes replayed to a reconnecting client at most; beyond that it gets a snapshot.
const MAX_REPLAY: usize = 1000;
/// A snapshot holds appointments that ended at most this long ago.
const SNAPSHOT_PAST_MS: i64 = 24 * 3600 * 1000;

/// The server side of one session's ports.
pub struct ServerPorts {
    state: Arc<AppState>,
    owner: SessionOwner,
    peer: Option<IpAddr>,
}

impl ServerPorts {
    /// Ports for the session of `owner`, connected from `peer`.
    pub fn new(state: Arc<AppState>, owner: SessionOwner, peer: Option<IpAddr>) -> Self {
        Self { state, owner, peer }
    }

    fn principal(who: SessionIdentity) -> Principal {
        Principal {
            user_id: who.user_id,
            role: who.role,
            session_id: who.session_id,
            patient_id: who.patient_id,
            mfa: who.mfa,
        }
    }
}

fn refusal(error: AccessError) -> ErrorCode {
    match error {
        AccessError::Denied(Denial::MfaRequired) => ErrorCode::MfaRequired,
        AccessError::Denied(_) => ErrorCode::Forbidden,
        AccessError::Storage(_) | AccessError::AuditUnavailable => ErrorCode::Unavailable,
    }
}

impl SessionPorts for ServerPorts {
    fn device(&self, who: SessionIdentity, device: DeviceId) -> PortFuture<Result<Topic, ErrorCode>> {
        let state = self.state.clone();
        Box::pin(async move {
            let found = state.devices.get(device).await.map_err(|e| super::messaging::error_code(&e))?;
            match found {
                Some(d) if d.user_id == who.user_id && d.removed_at_ms.is_none() => Ok(Topic::Device(device)),
                _ => Err(ErrorCode::NotFound),
            }
        })
    }

    fn subscription(&self, who: SessionIdentity, scope: ScheduleScope) -> PortFuture<Result<Topic, ErrorCode>> {
        let state = self.state.clone();
        Box::pin(async move {
            let principal = Self::principal(who);
            let decision =
                match state.access.check(&principal, Resource::Appointment, Operation::Read, Target::Any).await {
                    Ok(decision) => decision,
                    Err(error) => {
                        if let AccessError::Denied(denial) = &error {
                            // Refusals are audited, as over HTTP.
                            let actor = AuditActor::User { id: who.user_id, role: who.role };
                            let mut event = AuditEvent::new(state.node_id, actor, Action::Read, Outcome::Denied)
                                .on(ResourceType::Appointment, None)
                                .in_session(who.session_id);
                            event.reason = Some(denial.reason());
                            if state.auditor.record(event).await.is_err() {
                                tracing::error!("could not audit a refused subscription");
                            }
                        }
                        return Err(refusal(error));
                    }
                };
            match (scope, decision) {
                (ScheduleScope::Practice, Decision::Practice) => Ok(Topic::PracticeSchedule),
                (ScheduleScope::Mine, Decision::CareTeam) => Ok(Topic::ClinicianSchedule(who.user_id)),
                (ScheduleScope::Mine, Decision::Own) => {
                    who.patient_id.map(Topic::PatientSchedule).ok_or(ErrorCode::Forbidden)
                }
                _ => Err(ErrorCode::Forbidden),
            }
        })
    }

    fn catch_up(
        &self,
        who: SessionIdentity,
        topic: Topic,
        id: String,
        after: Option<u64>,
    ) -> PortFuture<Result<CatchUp, ErrorCode>> {
        let (state, peer) = (self.state.clone(), self.peer);
        Box::pin(async move {
            if let Topic::Device(device) = topic {
                let frames = super::messaging::missed(&state, device, id).await?;
                return Ok(CatchUp { frames, last_event_id: 0 });
            }
            let (filter, scope) = match topic {
                Topic::ClinicianSchedule(c) => (Filter::Clinician(c), ScheduleScope::Mine),
                Topic::PatientSchedule(p) => (Filter::Patient(p), ScheduleScope::Mine),
                Topic::PracticeSchedule => (Filter::Practice, ScheduleScope::Practice),
                Topic::ClinicianAlerts(_) | Topic::OwnerAlerts | Topic::Device(_) => return Err(ErrorCode::NotFound),
            };
            let unavailable = |error: schedule::ScheduleError| {
                tracing::warn!(%error, "schedule read failed");
                ErrorCode::Unavailable
            };
            let replay = match after {
                Some(after) => state.schedule.changes_after(filter, after, MAX_REPLAY).await.map_err(unavailable)?,
                None => None,
            };
            let (frames, last_event_id, patients) = match (replay, after) {
                (Some(changes), Some(after)) => {
                    let last = changes.last().map_or(after, |c| c.event_id);
                    let patients = changes.iter().map(|c| c.appointment.patient_id).collect::<BTreeSet<_>>();
                    let mut frames: Vec<ServerFrame> = changes.iter().map(schedule::frame).collect();
                    frames.push(ServerFrame::ack(id));
                    (frames, last, patients)
                }
                _ => {
                    let now = state.identity.clock.now_ms();
                    let (last, appointments) =
                        state.schedule.snapshot(filter, now - SNAPSHOT_PAST_MS).await.map_err(unavailable)?;
                    let patients = appointments.iter().map(|a| a.patient_id).collect::<BTreeSet<_>>();
                    let snapshot =
                        ServerFrame::ScheduleSnapshot { v: VERSION, id, scope, last_event_id: last, appointments };
                    (vec![snapshot], last, patients)
                }
            };
            // One read per patient whose appointments are sent, acknowledged before they are.
            let actor = AuditActor::User { id: who.user_id, role: who.role };
            let events = patients.into_iter().map(|patient| {
                let mut event = AuditEvent::new(state.node_id, actor, Action::Read, Outcome::Success)
                    .on(ResourceType::Appointment, None)
                    .for_patient(PatientId::from_uuid(patient))
                    .in_session(who.session_id)
                    .because(reason("schedule_subscription"));
                event.source_ip = peer;
                state.auditor.record(event)
            });
            if join_all(events).await.iter().any(Result::is_err) {
                return Err(ErrorCode::Unavailable);
            }
            Ok(CatchUp { frames, last_event_id })
        })
    }

    fn touch(&self, who: SessionIdentity) -> PortFuture<()> {
        let state = self.state.clone();
        Box::pin(async move {
            if let Err(error) = state.identity.sessions.touch(who.session_id).await {
                tracing::warn!(%error, "could not record socket activity");
            }
        })
    }

    fn ended(&self, who: SessionIdentity, why: Ended) -> PortFuture<()> {
        let (state, owner, peer) = (self.state.clone(), self.owner, self.peer);
        Box::pin(async move {
            let reason = match why {
                Ended::Idle => EndReason::IdleTimeout,
                Ended::Expired => EndReason::AbsoluteTimeout,
            };
            let origin = Origin { request_id: None, source_ip: peer, session_id: Some(who.session_id) };
            // The sign-in session ends with the socket only if it was idle over HTTP too.
            let idle_ms =
                i64::try_from(state.settings.identity.session_idle_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let idle_for = match why {
                Ended::Idle => Some(idle_ms),
                Ended::Expired => None,
            };
            if let Err(error) = state.identity.end_on_limit(owner, reason, idle_for, origin).await {
                tracing::error!(%error, "could not end or audit a timed-out session");
            }
        })
    }

    fn request(&self, who: SessionIdentity, frame: ClientFrame) -> PortFuture<Vec<ServerFrame>> {
        match frame {
            ClientFrame::MlsSend { .. } | ClientFrame::MlsCommit { .. } | ClientFrame::MlsAck { .. } => {
                Box::pin(super::messaging::answer(self.state.clone(), who, self.peer, frame))
            }
            _ => Box::pin(super::intake::answer(self.state.clone(), who, self.peer, frame)),
        }
    }

    fn standing_topics(&self, who: SessionIdentity) -> Vec<Topic> {
        // Alerts carry PHI: staff receive them only in a session that proved a second factor.
        if !who.mfa {
            return Vec::new();
        }
        match who.role {
            Role::Clinician => vec![Topic::ClinicianAlerts(who.user_id)],
            Role::PracticeOwner => vec![Topic::OwnerAlerts],
            Role::FrontDesk | Role::Billing | Role::Patient => Vec::new(),
        }
    }
}
