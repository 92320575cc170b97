//! `/api/v1/.../reminders` and `/reminder-preferences`: front desk sends a reminder for an
//! appointment now and sees each reminder's status; staff and the patient themself set the
//! patient's preferences and OpenPGP key. Answered by [`crate::reminders::ReminderService`]
//! (authorized by the matrix, `reminder`, audited before data moves); each handler parses,
//! calls, maps. Views carry ids, times, states and reason codes: never a message or an address.

use actix_web::{HttpResponse, get, post, put, web};
use confidant_actors::ids::PatientId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::fields::Whole;
use crate::reminders::{Preferences, PreferencesChange, ReminderService, ReminderServiceError, ReminderView};
use crate::state::AppState;
use crate::web::ApiError;

/// A reminder's status.
#[derive(Serialize, ToSchema)]
pub struct ReminderStatus {
    /// Its id.
    id: Uuid,
    /// The appointment.
    appointment_id: Uuid,
    /// `upcoming` or `cancelled` (a cancellation notice).
    kind: &'static str,
    /// `schedule` (a lead time) or `staff` (sent on request).
    origin: String,
    /// For a lead-time reminder, minutes before the start.
    lead_minutes: Option<i64>,
    /// `queued`, `sending`, `sent`, `failed` or `withdrawn`.
    state: &'static str,
    /// When it is (was) due (UTC ms).
    due_at_ms: i64,
    /// Attempts so far.
    attempts: i64,
    /// Whether it went OpenPGP-encrypted.
    encrypted: bool,
    /// Why the last attempt failed, or why it was withdrawn: a code such as `smtp_unreachable`,
    /// `outcome_unknown`, `no_email`, `appointment_changed`.
    reason: Option<String>,
    /// When it was sent, failed or withdrawn (UTC ms).
    finished_at_ms: Option<i64>,
}

impl From<ReminderView> for ReminderStatus {
    fn from(r: ReminderView) -> Self {
        Self {
            id: r.id,
            appointment_id: r.appointment_id,
            kind: r.kind.as_str(),
            origin: r.origin,
            lead_minutes: r.lead_minutes,
            state: r.state.as_str(),
            due_at_ms: r.due_at_ms,
            attempts: r.attempts,
            encrypted: r.encrypted,
            reason: r.reason,
            finished_at_ms: r.finished_at_ms,
        }
    }
}

/// A patient's reminder preferences.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// Whether reminders go by email.
    email_enabled: bool,
    /// Minutes before the start (at most 5, each 1 to 43200); absent or null: the practice's.
    #[serde(default)]
    #[schema(value_type = Option<Vec<LeadMinutes>>, max_items = 5)]
    lead_minutes: Option<Vec<Whole<u32>>>,
    /// An ASCII-armored OpenPGP public key with an encryption subkey: reminders then carry the
    /// appointment's details, encrypted to it (PGP/MIME). Absent or null: no key, no details.
    #[serde(default)]
    pgp_public_key: Option<String>,
}

/// Minutes before an appointment's start.
#[derive(ToSchema)]
#[schema(minimum = 1, maximum = 43200)]
#[allow(dead_code, reason = "describes a field the body reads as a number")]
pub struct LeadMinutes(u32);

/// A patient's reminder preferences as stored.
#[derive(Serialize, ToSchema)]
pub struct PreferencesView {
    /// The patient.
    #[schema(value_type = String, format = Uuid)]
    patient_id: PatientId,
    /// Whether reminders go by email.
    email_enabled: bool,
    /// The patient's lead times, or null for the practice's.
    lead_minutes: Option<Vec<u32>>,
    /// The lead times in effect.
    effective_lead_minutes: Vec<u32>,
    /// The registered OpenPGP public key (armored), if any.
    pgp_public_key: Option<String>,
}

impl From<ReminderServiceError> for ApiError {
    /// Refusals and conflicts keep their meaning; outages are 503; the rest is logged (no
    /// values) and is 500.
    fn from(error: ReminderServiceError) -> Self {
        match error {
            ReminderServiceError::Invalid(field) => ApiError::InvalidField(field),
            ReminderServiceError::Denied(denial) => ApiError::Forbidden(denial),
            ReminderServiceError::NotFound => ApiError::NotFound,
            ReminderServiceError::NotRemindable => {
                ApiError::Conflict("the appointment is cancelled or already started")
            }
            ReminderServiceError::Disabled => ApiError::Conflict("the patient turned email reminders off"),
            ReminderServiceError::Appointment(e) => e.into(),
            ReminderServiceError::AuditUnavailable => ApiError::Unavailable,
            ReminderServiceError::Patients(e) => e.into(),
            ReminderServiceError::Store(e) => e.into(),
            ReminderServiceError::Storage(e) => e.into(),
        }
    }
}

/// Queues a reminder for this appointment, due now (202: the scheduler sends it).
#[utoipa::path(post, path = "/api/v1/appointments/{appointment_id}/reminders", tag = "reminders",
    security(("bearer" = [])), params(("appointment_id" = String, Path, format = Uuid)),
    responses((status = 202, body = ReminderStatus), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/appointments/{appointment_id}/reminders")]
pub async fn send_now(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let queued = state.services.reminder_service.send_now(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(ReminderStatus::from(queued)))
}

/// The reminders of an appointment and where each stands.
#[utoipa::path(get, path = "/api/v1/appointments/{appointment_id}/reminders", tag = "reminders",
    security(("bearer" = [])), params(("appointment_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [ReminderStatus]), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/appointments/{appointment_id}/reminders")]
pub async fn status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let reminders = state.services.reminder_service.status(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(reminders.into_iter().map(ReminderStatus::from).collect::<Vec<_>>()))
}

/// A patient's reminder preferences.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/reminder-preferences", tag = "reminders",
    security(("bearer" = [])), params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = PreferencesView), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/patients/{patient_id}/reminder-preferences")]
pub async fn get_preferences(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let patient = path.into_inner();
    let stored = state.services.reminder_service.preferences(&caller.requester(), patient).await?;
    Ok(HttpResponse::Ok().json(view(&state.services.reminder_service, patient, stored)))
}

/// Replaces a patient's reminder preferences (a patient may set their own, key included).
#[utoipa::path(put, path = "/api/v1/patients/{patient_id}/reminder-preferences", tag = "reminders",
    security(("bearer" = [])), params(("patient_id" = String, Path, format = Uuid)), request_body = PreferencesBody,
    responses((status = 200, body = PreferencesView), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[put("/api/v1/patients/{patient_id}/reminder-preferences")]
pub async fn set_preferences(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
    body: web::Json<PreferencesBody>,
) -> Result<HttpResponse, ApiError> {
    let patient = path.into_inner();
    let PreferencesBody { email_enabled, lead_minutes, pgp_public_key } = body.into_inner();
    let lead_minutes = lead_minutes.map(|minutes| minutes.into_iter().map(|Whole(m)| m).collect());
    let change = PreferencesChange { email_enabled, lead_minutes, pgp_public_key };
    let stored = state.services.reminder_service.set_preferences(&caller.requester(), patient, change).await?;
    Ok(HttpResponse::Ok().json(view(&state.services.reminder_service, patient, stored)))
}

fn view(service: &ReminderService, patient: PatientId, p: Preferences) -> PreferencesView {
    PreferencesView {
        patient_id: patient,
        email_enabled: p.email_enabled,
        effective_lead_minutes: service.effective_lead_minutes(&p),
        lead_minutes: p.lead_minutes,
        pgp_public_key: p.pgp_key.map(|k| k.armored().to_owned()),
    }
}
