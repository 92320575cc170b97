//! `/api/v1/appointments`: book, reschedule and cancel, answered by
//! [`crate::schedule::ScheduleService`] (authorized by the matrix, audited, stored with its
//! event, then pushed to every subscribed session). Each handler parses, calls, maps.

use actix_web::{HttpResponse, post, put, web};
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::Appointment;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::fields::Whole;
use crate::schedule::{Booking, Change, ScheduleServiceError};
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
    #[schema(value_type = i64, minimum = 1)]
    starts_at_ms: Whole<i64>,
    /// End (UTC ms): after the start, at most 12 hours after it.
    #[schema(value_type = i64, minimum = 1)]
    ends_at_ms: Whole<i64>,
}

/// A new time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    /// Start (UTC ms).
    #[schema(value_type = i64, minimum = 1)]
    starts_at_ms: Whole<i64>,
    /// End (UTC ms): after the start, at most 12 hours after it.
    #[schema(value_type = i64, minimum = 1)]
    ends_at_ms: Whole<i64>,
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

impl From<ScheduleServiceError> for ApiError {
    /// Refusals and conflicts keep their meaning; outages are 503; the rest is logged (no
    /// values) and is 500.
    fn from(error: ScheduleServiceError) -> Self {
        match error {
            ScheduleServiceError::Invalid(field) => ApiError::InvalidField(field),
            ScheduleServiceError::Denied(denial) => ApiError::Forbidden(denial),
            ScheduleServiceError::NotYourSchedule => ApiError::Forbidden(crate::access::Denial::NotPermitted),
            ScheduleServiceError::NotFound => ApiError::NotFound,
            ScheduleServiceError::DoubleBooked => {
                ApiError::Conflict("the clinician already has an appointment at that time")
            }
            ScheduleServiceError::Cancelled => ApiError::Conflict("the appointment is cancelled"),
            ScheduleServiceError::AuditUnavailable => ApiError::Unavailable,
            ScheduleServiceError::Accounts(e) => e.into(),
            ScheduleServiceError::Patients(e) => e.into(),
            ScheduleServiceError::Reminders(e) => e.into(),
            ScheduleServiceError::Storage(e) => e.into(),
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
    let BookBody { clinician_id, patient_id, starts_at_ms: Whole(starts_at_ms), ends_at_ms: Whole(ends_at_ms) } =
        body.into_inner();
    let booking = Booking { clinician_id, patient_id, starts_at_ms, ends_at_ms };
    let booked = state.services.schedule_service.book(&caller.requester(), booking).await?;
    Ok(HttpResponse::Created().json(AppointmentView::from(booked)))
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
    let RescheduleBody { starts_at_ms: Whole(starts_at_ms), ends_at_ms: Whole(ends_at_ms) } = body.into_inner();
    let who = caller.requester();
    let moved = state.services.schedule_service.reschedule(&who, path.into_inner(), starts_at_ms, ends_at_ms).await?;
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
    let cancelled = state.services.schedule_service.cancel(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AppointmentView::from(cancelled)))
}
