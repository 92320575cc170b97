//! Appointments: storage ([`store`]), their operations ([`service`]), and the fan-out of each
//! change to the schedules that show it (the clinician's, the patient's, the practice's),
//! through the hub and so, with Redis, to every node.

pub mod service;
pub mod store;

use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{ServerFrame, VERSION};

use crate::push::Pusher;

pub use service::{Booking, ScheduleService, ScheduleServiceError};
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

/// Pushes a stored change to its subscribers. A subscriber that missed the push gets it when
/// it catches up (by event id).
pub async fn publish(pusher: &Pusher, change: &Change) {
    let about = (Some(change.event_id), Some(PatientId::from_uuid(change.appointment.patient_id)));
    pusher.push(topics(change), about, &frame(change), "schedule_change").await;
}
