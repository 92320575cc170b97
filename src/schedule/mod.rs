//! Appointments: storage ([`store`]) and the fan-out of each change to the schedules that show
//! it (the clinician's, the patient's, the practice's), through the hub and so, with Redis,
//! to every node.

pub mod store;

use std::sync::Arc;

use actix::Addr;
use confidant_actors::hub::{BrokerMessage, Hub, Publish, Topic};
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{ServerFrame, VERSION};

pub use store::{Change, Filter, Schedule, ScheduleError};

/// The topics a change is pushed on.
pub fn topics(change: &Change) -> [Topic; 3] {
    [
        Topic::ClinicianSchedule(UserId::from_uuid(change.appointment.clinician_id)),
        Topic::PatientSchedule(PatientId::from_uuid(change.appointment.patient_id)),
        Topic::PracticeSchedule,
    ]
}

/// The `schedule.changed` frame of a change.
pub fn frame(change: &Change) -> ServerFrame {
    ServerFrame::ScheduleChanged {
        v: VERSION,
        event_id: change.event_id,
        change: change.change,
        appointment: change.appointment.clone(),
    }
}

/// Pushes a stored change to its subscribers. A failure is logged, not returned: the change is
/// stored, and a subscriber that missed the push gets it when it catches up (by event id).
pub async fn publish(hub: &Addr<Hub>, change: &Change) {
    let text: Arc<str> = frame(change).to_text().into();
    for topic in topics(change) {
        let message = BrokerMessage::Publish { topic, event_id: Some(change.event_id), text: text.clone() };
        match hub.send(Publish(message)).await {
            Ok(Ok(())) => {}
            _ => tracing::warn!(event_id = change.event_id, %topic, "could not publish a schedule change"),
        }
    }
}
