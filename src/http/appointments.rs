//! `/api/v1/appointments`: book, reschedule and cancel. Each change is authorized by the
//! matrix (a clinician only on their own schedule, for their own patients), audited, stored
//! with its event, then pushed to every subscribed session.

use actix_web::{HttpResponse, post, put, web};
use confidant_actors::audit::{Action, Outcome, ResourceType, Role};
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::Appointment;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{Operation, Resource, Target};
use crate::identity::AccountStatus;
use crate::schedule::{self, Change, ScheduleError};
use crate::state::AppState;
use crate::web::ApiError;

/// A booking.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    /// The clinician (a clinician books on their own schedule only).
    #[schema(value_type = String, format = Uuid)]
    clinician_id: UserId,
    /// The patient.
    #[schema(value_type = String, format = Uuid)]
    patient_id: PatientId,
    /// Start (UTC ms).
    starts_at_ms: i64,
    /// End (UTC ms); at most 12 hours after the start.
    ends_at_ms: i64,
}

/// A new time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    /// Start (UTC ms).
    starts_at_ms: i64,
    /// End (UTC ms).
    ends_at_ms: i64,
}

/// An appointment and the schedule event that changed it.
#[derive(Serialize, ToSchema)]
pub struct AppointmentView {
    /// The event id of this change (subscribers see it in `schedule.changed`).
    event_id: u64,
    /// The appointment's id.
    id: Uuid,
    /// Clinician.
    clinician_id: Uuid,
    /// Patient.
    patient_id: Uuid,
    /// Start (UTC ms).
    starts_at_ms: i64,
    /// End (UTC ms).
    ends_at_ms: i64,
    /// `booked` or `cancelled`.
    status: String,
}

impl From<Change> for AppointmentView {
    fn from(c: Change) -> Self {
        let a: Appointment = c.appointment;
        Self {
            event_id: c.event_id,
            id: a.id,
            clinician_id: a.clinician_id,
            patient_id: a.patient_id,
            starts_at_ms: a.starts_at_ms,
            ends_at_ms: a.ends_at_ms,
            status: a.status,
        }
    }
}

fn schedule_error(error: ScheduleError) -> ApiError {
    match error {
        ScheduleError::DoubleBooked => ApiError::Conflict("the clinician already has an appointment at that time"),
        ScheduleError::Cancelled => ApiError::Conflict("the appointment is cancelled"),
        ScheduleError::NotFound => ApiError::NotFound,
        ScheduleError::InvalidTimes => {
            ApiError::invalid("ends_at_ms", "must be after starts_at_ms, at most 12 hours later, both positive")
        }
        ScheduleError::Storage(e) => e.into(),
        ScheduleError::Reminders(e) => e.into(),
    }
}

/// Audits the attempt, runs the change, records a failure as such, and pushes a success.
async fn change(
    state: &AppState,
    caller: &Caller,
    about: About,
    code: &'static str,
    run: impl Future<Output = Result<Change, ScheduleError>>,
) -> Result<Change, ApiError> {
    guard::record_all(state, vec![guard::event(state, caller, about, Outcome::Success, code)]).await?;
    match run.await {
        Ok(change) => {
            schedule::publish(&state.pusher, &change).await;
            Ok(change)
        }
        Err(error) => {
            let failed = match error {
                ScheduleError::DoubleBooked => "double_booked",
                ScheduleError::Cancelled => "already_cancelled",
                _ => "failed",
            };
            // The attempt was recorded before; its failure is recorded too.
            let _ = guard::record_all(state, vec![guard::event(state, caller, about, Outcome::Error, failed)]).await;
            Err(schedule_error(error))
        }
    }
}

/// Books an appointment; 409 if the clinician is already booked then.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "schedule", security(("bearer" = [])),
    request_body = BookBody,
    responses((status = 201, body = AppointmentView), (status = 400), (status = 401), (status = 403), (status = 409)))]
#[post("/api/v1/appointments")]
pub async fn book(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<BookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let target = Target::Appointment { patient: body.patient_id, clinician: body.clinician_id };
    let about = About::new(Action::Create, ResourceType::Appointment, None).for_patient(body.patient_id);
    guard::authorize(&state, &caller, Resource::Appointment, Operation::Create, target, about).await?;
    let clinician = state.identity.accounts.get(body.clinician_id).await?;
    if !clinician.is_some_and(|a| a.role == Role::Clinician && a.status == AccountStatus::Active) {
        return Err(ApiError::invalid("clinician_id", "is not an active clinician account"));
    }
    if !state.patients.exists(body.patient_id).await? {
        return Err(ApiError::invalid("patient_id", "is not a patient record"));
    }
    let now = state.identity.clock.now_ms();
    let run = state.schedule.book(
        body.clinician_id,
        body.patient_id,
        body.starts_at_ms,
        body.ends_at_ms,
        caller.principal.user_id,
        now,
    );
    let booked = change(&state, &caller, about, "appointment_booked", run).await?;
    Ok(HttpResponse::Created().json(AppointmentView::from(booked)))
}

/// The authorization of `operation` on `resource` of an existing appointment (the appointment
/// itself, or its reminders): its patient and clinician are the target. Returns what to audit.
pub(super) async fn authorize_on_appointment(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    (resource, resource_type): (Resource, ResourceType),
    operation: Operation,
    action: Action,
) -> Result<(About, crate::access::Decision), ApiError> {
    let appointment = state.schedule.get(id).await.map_err(schedule_error)?.ok_or(ApiError::NotFound)?;
    let patient = PatientId::from_uuid(appointment.patient_id);
    let target = Target::Appointment { patient, clinician: UserId::from_uuid(appointment.clinician_id) };
    let about = About::new(action, resource_type, Some(id)).for_patient(patient);
    let decision = guard::authorize(state, caller, resource, operation, target, about).await?;
    Ok((about, decision))
}

/// The authorization of a change to an existing appointment.
async fn existing(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    operation: Operation,
    action: Action,
) -> Result<About, ApiError> {
    let appointment = (Resource::Appointment, ResourceType::Appointment);
    Ok(authorize_on_appointment(state, caller, id, appointment, operation, action).await?.0)
}

/// Moves an appointment; 409 if the clinician is booked at the new time.
#[utoipa::path(put, path = "/api/v1/appointments/{appointment_id}", tag = "schedule", security(("bearer" = [])),
    params(("appointment_id" = String, Path, format = Uuid)), request_body = RescheduleBody,
    responses((status = 200, body = AppointmentView), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[put("/api/v1/appointments/{appointment_id}")]
pub async fn reschedule(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<RescheduleBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let about = existing(&state, &caller, id, Operation::Update, Action::Update).await?;
    let now = state.identity.clock.now_ms();
    let run = state.schedule.reschedule(id, body.starts_at_ms, body.ends_at_ms, now);
    let moved = change(&state, &caller, about, "appointment_rescheduled", run).await?;
    Ok(HttpResponse::Ok().json(AppointmentView::from(moved)))
}

/// Cancels an appointment.
#[utoipa::path(post, path = "/api/v1/appointments/{appointment_id}/cancel", tag = "schedule",
    security(("bearer" = [])), params(("appointment_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AppointmentView), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/appointments/{appointment_id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let about = existing(&state, &caller, id, Operation::Delete, Action::Update).await?;
    let now = state.identity.clock.now_ms();
    let cancelled = change(&state, &caller, about, "appointment_cancelled", state.schedule.cancel(id, now)).await?;
    Ok(HttpResponse::Ok().json(AppointmentView::from(cancelled)))
}
