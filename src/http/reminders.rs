//! `/api/v1/.../reminders` and `/reminder-preferences`: front desk sends a reminder for an
//! appointment now and sees each reminder's status; staff and the patient themself set the
//! patient's preferences and OpenPGP key. Authorized by the matrix (`reminder`), audited before
//! data moves. Views carry ids, times, states and reason codes: never a message or an address.

use actix_web::{HttpResponse, get, post, put, web};
use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::ids::PatientId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{Operation, Resource, Target};
use crate::reminders::pgp_mime::PgpKey;
use crate::reminders::preferences::checked_lead_minutes;
use crate::reminders::{Preferences, ReminderView};
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
    lead_minutes: Option<Vec<u32>>,
    /// An ASCII-armored OpenPGP public key with an encryption subkey: reminders then carry the
    /// appointment's details, encrypted to it (PGP/MIME). Absent or null: no key, no details.
    #[serde(default)]
    pgp_public_key: Option<String>,
}

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

/// The appointment's reminders, authorized for `operation` and audited as allowed.
async fn appointment_target(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    operation: Operation,
    action: Action,
) -> Result<About, ApiError> {
    let reminders = (Resource::Reminder, ResourceType::Reminder);
    let (about, decision) =
        state.schedule_service.authorize_on(&caller.requester(), id, reminders, operation, action).await?;
    let allowed = guard::event(state, caller, about, Outcome::Success, guard::allowed_because(decision));
    guard::record_all(state, vec![allowed]).await?;
    Ok(about)
}

/// A patient's preferences, about to be read or replaced: 404 for no such patient, else the
/// access audited (and acknowledged) before it happens.
async fn record_preferences_access(state: &AppState, caller: &Caller, about: About) -> Result<(), ApiError> {
    let Some(patient) = about.patient_id else { return Err(ApiError::Internal) };
    if !state.patients.exists(patient).await? {
        return Err(ApiError::NotFound);
    }
    guard::record_all(state, vec![guard::event(state, caller, about, Outcome::Success, "reminder_preferences")]).await
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
    let id = path.into_inner();
    let about = appointment_target(&state, &caller, id, Operation::Create, Action::Create).await?;
    let now = state.identity.clock.now_ms();
    let defaults = state.reminder_preferences.default_lead_minutes();
    let queued = match state.outbox.send_now(id, caller.principal.user_id, defaults, now).await {
        Ok(queued) => queued,
        Err(error) => {
            // The attempt was recorded before; its failure is recorded too.
            let failed = guard::event(&state, &caller, about, Outcome::Error, "reminder_not_queued");
            let _ = guard::record_all(&state, vec![failed]).await;
            return Err(error.into());
        }
    };
    tracing::info!(reminder_id = %queued.id, appointment_id = %id, "reminder queued on request");
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
    let id = path.into_inner();
    appointment_target(&state, &caller, id, Operation::Read, Action::Read).await?;
    let reminders = state.outbox.of_appointment(id).await?;
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
    let about = About::new(Action::Read, ResourceType::Reminder, Some(*patient.as_uuid())).for_patient(patient);
    guard::authorize(&state, &caller, Resource::Reminder, Operation::Read, Target::Patient(patient), about).await?;
    record_preferences_access(&state, &caller, about).await?;
    let stored = state.reminder_preferences.get(patient).await?;
    Ok(HttpResponse::Ok().json(view(&state, patient, stored)))
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
    let body = body.into_inner();
    let about = About::new(Action::Update, ResourceType::Reminder, Some(*patient.as_uuid())).for_patient(patient);
    guard::authorize(&state, &caller, Resource::Reminder, Operation::Update, Target::Patient(patient), about).await?;
    let lead_minutes = match body.lead_minutes {
        Some(minutes) => Some(
            checked_lead_minutes(minutes)
                .ok_or_else(|| ApiError::invalid("lead_minutes", "at most 5 lead times, each 1 to 43200 minutes"))?,
        ),
        None => None,
    };
    let pgp_key = match body.pgp_public_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(armored) => Some(PgpKey::parse(armored).map_err(|why| {
            ApiError::invalid(
                "pgp_public_key",
                match why {
                    crate::reminders::pgp_mime::InvalidKey::NotAKey => "is not an ASCII-armored OpenPGP public key",
                    crate::reminders::pgp_mime::InvalidKey::BadSignature => {
                        "has a binding signature that does not verify"
                    }
                    crate::reminders::pgp_mime::InvalidKey::NoEncryptionKey => "has no subkey for encryption",
                },
            )
        })?),
        None => None,
    };
    record_preferences_access(&state, &caller, about).await?;
    let preferences = Preferences { email_enabled: body.email_enabled, lead_minutes, pgp_key };
    let now = state.identity.clock.now_ms();
    state.reminder_preferences.put(patient, &preferences, caller.principal.user_id, now).await?;
    Ok(HttpResponse::Ok().json(view(&state, patient, preferences)))
}

fn view(state: &AppState, patient: PatientId, p: Preferences) -> PreferencesView {
    let effective =
        p.lead_minutes.clone().unwrap_or_else(|| state.reminder_preferences.default_lead_minutes().to_vec());
    PreferencesView {
        patient_id: patient,
        email_enabled: p.email_enabled,
        lead_minutes: p.lead_minutes,
        effective_lead_minutes: effective,
        pgp_public_key: p.pgp_key.map(|k| k.armored().to_owned()),
    }
}
