//! Schedule subscriptions over the socket: which topic a `schedule.subscribe` may follow, and
//! its catch-up (the changes after the client's last event id, or a snapshot), each read of a
//! patient's appointments audited and acknowledged before it is sent.

use std::collections::BTreeSet;
use std::net::IpAddr;

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType};
use confidant_actors::hub::Topic;
use confidant_actors::ids::PatientId;
use confidant_actors::session::{CatchUp, SessionIdentity};
use confidant_protocol::{ErrorCode, ScheduleScope, ServerFrame, VERSION};
use futures_util::future::join_all;

use super::caller::{refusal, requester};
use crate::access::{Decision, Operation, Resource, Target};
use crate::auditor::{About, reason};
use crate::schedule::{self, Filter};
use crate::state::AppState;

/// Changes replayed to a reconnecting client at most; beyond that it gets a snapshot.
const MAX_REPLAY: usize = 1000;
/// A snapshot holds appointments that ended at most this long ago.
const SNAPSHOT_PAST_MS: i64 = 24 * 3600 * 1000;

/// The topic `who` (asking from `peer`) may follow for `scope`; a refusal is audited.
pub async fn subscription(
    state: &AppState,
    who: SessionIdentity,
    peer: Option<IpAddr>,
    scope: ScheduleScope,
) -> Result<Topic, ErrorCode> {
    let about = About::new(Action::Read, ResourceType::Appointment, None);
    let decision = state
        .gate
        .authorize(&requester(who, peer), Resource::Appointment, Operation::Read, Target::Any, about)
        .await
        .map_err(refusal)?;
    match (scope, decision) {
        (ScheduleScope::Practice, Decision::Practice) => Ok(Topic::PracticeSchedule),
        (ScheduleScope::Mine, Decision::CareTeam) => Ok(Topic::ClinicianSchedule(who.user_id)),
        (ScheduleScope::Mine, Decision::Own) => who.patient_id.map(Topic::PatientSchedule).ok_or(ErrorCode::Forbidden),
        _ => Err(ErrorCode::Forbidden),
    }
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
            let snapshot = ServerFrame::ScheduleSnapshot { v: VERSION, id, scope, last_event_id: last, appointments };
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
}
