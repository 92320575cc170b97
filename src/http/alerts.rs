//! `/api/v1/alerts` and `/api/v1/patients/{id}/alerts`: the caller's alerts, acknowledging one,
//! documenting the follow-up of an urgent one, and a patient's urgent alerts for a clinician's
//! view of them. The handlers parse, call [`AlertService`](crate::alerts::AlertService) (which
//! checks and audits before data moves) and map its answer. Sessions receive the same alerts
//! live (docs/PROTOCOL.md, "Alerts").

use actix_web::{HttpResponse, get, post, web};
use confidant_actors::ids::PatientId;
use confidant_protocol::{AlertState, AlertView, FollowUpNote};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use crate::alerts::AlertError;
use crate::patients::InvalidField;
use crate::state::AppState;
use crate::web::ApiError;

/// An acknowledgement, optionally with the follow-up.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// What was done (1 to 2,000 characters): documents the follow-up at the same time (a
    /// clinician who may write notes about the patient).
    #[schema(value_type = Option<super::fields::FollowUpNote>)]
    follow_up: Option<FollowUpNote>,
}

/// A follow-up note.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpBody {
    /// What was done (1 to 2,000 characters).
    #[schema(value_type = super::fields::FollowUpNote)]
    note: FollowUpNote,
}

/// Where an alert stands after the request.
#[derive(Serialize, ToSchema)]
pub struct StateView {
    /// `open`, `acknowledged` (an urgent alert awaiting follow-up) or `resolved`.
    #[schema(value_type = String)]
    state: AlertState,
}

/// A patient's urgent alerts.
#[derive(Serialize, ToSchema)]
pub struct PatientAlertsView {
    /// Whether an urgent alert awaits a clinician's follow-up: the chart's flag.
    urgent: bool,
    /// Unresolved urgent alerts and those of the last week, newest first.
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<AlertView>,
}

impl From<AlertError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a fault is logged (no values) and is 500.
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::NotFound => ApiError::NotFound,
            AlertError::NotAllowed(denial) => ApiError::Forbidden(denial),
            AlertError::InvalidFollowUp => {
                ApiError::InvalidField(InvalidField { field: "note", rule: "must have 1 to 2000 characters" })
            }
            AlertError::AlreadyFollowedUp => ApiError::Conflict("the follow-up was already documented"),
            AlertError::NoFollowUp => ApiError::Conflict("this alert is about no patient and takes no follow-up note"),
            AlertError::AuditUnavailable => ApiError::Unavailable,
            AlertError::Storage(e) => e.into(),
            AlertError::Accounts(e) => e.into(),
            AlertError::Outbox(e) => e.into(),
            AlertError::Crypto(e) => crate::patients::PatientError::Crypto(e).into(),
        }
    }
}

/// The caller's alerts: every unresolved one and those of the last week, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
#[get("/api/v1/alerts")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.alerts.list(&caller.requester()).await?))
}

/// Acknowledges an alert sent to the caller: it stops escalating and clears for every recipient.
/// With a follow-up, 409 when one was documented already or the alert is about no patient.
#[utoipa::path(post, path = "/api/v1/alerts/{alert_id}/ack", tag = "alerts", security(("bearer" = [])),
    params(("alert_id" = String, Path, format = Uuid)), request_body = AckBody,
    responses((status = 200, body = StateView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409)))]
#[post("/api/v1/alerts/{alert_id}/ack")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // No body acknowledges; a body must be the JSON document (a malformed one changes nothing).
    let body: AckBody = if body.is_empty() {
        AckBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::InvalidBody)?
    };
    let alerts = &state.services.alerts;
    let state = alerts.acknowledge(&caller.requester(), path.into_inner(), body.follow_up.as_ref()).await?;
    Ok(HttpResponse::Ok().json(StateView { state }))
}

/// Documents the follow-up of an alert (a clinician who may write notes about the patient); an
/// urgent alert is then resolved and the patient's flag clears.
#[utoipa::path(post, path = "/api/v1/alerts/{alert_id}/follow-up", tag = "alerts", security(("bearer" = [])),
    params(("alert_id" = String, Path, format = Uuid)), request_body = FollowUpBody,
    responses((status = 200, body = StateView), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/alerts/{alert_id}/follow-up")]
pub async fn follow_up(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<FollowUpBody>,
) -> Result<HttpResponse, ApiError> {
    let state = state.services.alerts.follow_up(&caller.requester(), path.into_inner(), &body.note).await?;
    Ok(HttpResponse::Ok().json(StateView { state }))
}

/// A patient's urgent alerts with their follow-up notes, and the chart's urgent flag, for the
/// clinicians who may read the patient's clinical notes.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/alerts", tag = "alerts", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = PatientAlertsView), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/alerts")]
pub async fn of_patient(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let found = state.services.alerts.of_patient(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(PatientAlertsView { urgent: found.urgent, alerts: found.alerts }))
}
