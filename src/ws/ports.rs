//! `ServerPorts`: what a session actor asks of the server, routed to the frame handlers of
//! each domain (`messaging.rs`, `intake.rs`, `schedule.rs`), and the session's activity and end.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::audit::{Action, Outcome, ResourceType, Role};
use confidant_actors::hub::Topic;
use confidant_actors::ids::{DeviceId, PatientId};
use confidant_actors::session::{CatchUp, Ended, PortFuture, SessionIdentity, SessionPorts};
use confidant_protocol::{ClientFrame, ErrorCode, ScheduleScope, ServerFrame};

use super::caller::requester;
use crate::auditor::{About, Origin};
use crate::identity::sessions::{EndReason, SessionOwner};
use crate::state::AppState;

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
}

impl SessionPorts for ServerPorts {
    fn device(&self, who: SessionIdentity, device: DeviceId) -> PortFuture<Result<Topic, ErrorCode>> {
        let (state, peer) = (self.state.clone(), self.peer);
        Box::pin(async move {
            state
                .services
                .messaging
                .attach(&requester(who, peer), device)
                .await
                .map_err(|e| super::messaging::error_code(&e))
        })
    }

    fn subscription(&self, who: SessionIdentity, scope: ScheduleScope) -> PortFuture<Result<Topic, ErrorCode>> {
        let (state, peer) = (self.state.clone(), self.peer);
        Box::pin(async move { super::schedule::subscription(&state, who, peer, scope).await })
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
            match topic {
                Topic::Device(device) => {
                    let frames = super::messaging::missed(&state, who, peer, device, id).await?;
                    Ok(CatchUp { frames, last_event_id: 0 })
                }
                Topic::ClinicianSchedule(_) | Topic::PatientSchedule(_) | Topic::PracticeSchedule => {
                    super::schedule::catch_up(&state, who, peer, topic, id, after).await
                }
                Topic::Alerts(user) if user == who.user_id => super::alerts::replay(&state, who, peer).await,
                Topic::Alerts(_) => Err(ErrorCode::NotFound),
            }
        })
    }

    fn touch(&self, who: SessionIdentity) -> PortFuture<()> {
        let state = self.state.clone();
        Box::pin(async move {
            if let Err(error) = state.services.identity.sessions.touch(who.session_id).await {
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
            if let Err(error) = state.services.identity.end_on_limit(owner, reason, idle_for, origin).await {
                tracing::error!(%error, "could not end or audit a timed-out session");
            }
        })
    }

    fn request(&self, who: SessionIdentity, frame: ClientFrame) -> PortFuture<Vec<ServerFrame>> {
        // The session actor answers the frames of its own state (auth, activity, subscriptions,
        // attach) itself; only requests reach here. Every kind is named, so a new one is a
        // compile error until it is routed.
        match frame {
            ClientFrame::MlsSend { .. }
            | ClientFrame::MlsCommit { .. }
            | ClientFrame::MlsAck { .. }
            | ClientFrame::MlsRead { .. } => {
                Box::pin(super::messaging::answer(self.state.clone(), who, self.peer, frame))
            }
            ClientFrame::IntakeOpen { .. } | ClientFrame::IntakeDraft { .. } | ClientFrame::IntakeSubmit { .. } => {
                Box::pin(super::intake::answer(self.state.clone(), who, self.peer, frame))
            }
            ClientFrame::NoteOpen { .. } | ClientFrame::NoteDraft { .. } => {
                Box::pin(super::notes::answer(self.state.clone(), who, self.peer, frame))
            }
            ClientFrame::AlertAck { .. } => Box::pin(super::alerts::answer(self.state.clone(), who, self.peer, frame)),
            ClientFrame::Auth { .. }
            | ClientFrame::Activity { .. }
            | ClientFrame::ScheduleSubscribe { .. }
            | ClientFrame::ScheduleUnsubscribe { .. }
            | ClientFrame::MlsAttach { .. } => {
                let id = frame.request_id().map(str::to_owned);
                Box::pin(std::future::ready(vec![ServerFrame::error(id, ErrorCode::MalformedFrame)]))
            }
        }
    }

    fn record_pushes(&self, who: SessionIdentity, pushes: Vec<(Topic, PatientId)>) -> PortFuture<bool> {
        let (state, peer) = (self.state.clone(), self.peer);
        // The account's other sessions receiving the same pushes now share this record.
        let records = state.push_records.clone();
        let key = (who.user_id, pushes.clone());
        Box::pin(async move { records.once(key, || record_pushes(state, who, peer, pushes)).await })
    }

    fn standing_topics(&self, who: SessionIdentity) -> Vec<Topic> {
        // Alerts carry PHI: staff receive them only in a session that proved a second factor.
        if !who.mfa {
            return Vec::new();
        }
        match who.role {
            Role::Clinician | Role::PracticeOwner | Role::FrontDesk => vec![Topic::Alerts(who.user_id)],
            Role::Billing | Role::Patient => Vec::new(),
        }
    }
}

/// Puts `pushes` on record as reads by `who` (reason `live_push`), all durable or none.
async fn record_pushes(
    state: Arc<AppState>,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    pushes: Vec<(Topic, PatientId)>,
) -> bool {
    let requester = requester(who, peer);
    let gate = &state.services.gate;
    let events = pushes
        .into_iter()
        .map(|(topic, patient)| {
            let resource = match topic {
                Topic::Alerts(_) => ResourceType::Alert,
                Topic::ClinicianSchedule(_) | Topic::PatientSchedule(_) | Topic::PracticeSchedule => {
                    ResourceType::Appointment
                }
                Topic::Device(_) => ResourceType::Conversation,
            };
            let about = About::new(Action::Read, resource, None).for_patient(patient);
            gate.event(&requester, about, Outcome::Success, "live_push")
        })
        .collect();
    match gate.record_all(events).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "a live push could not be put on record; the session closes");
            false
        }
    }
}
