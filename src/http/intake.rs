//! `/api/v1/.../intake-forms`: a clinician assigns a form to a patient on their care team and
//! reads what was submitted; patients fill forms over the socket (docs/PROTOCOL.md). Every
//! read and write is audited before data moves.

use actix_web::{HttpResponse, get, post, web};
use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{Operation, Resource, Target};
use crate::intake::{Assignment, FormKind, IntakeError, Score};
use crate::state::AppState;
use crate::web::ApiError;

/// A form to assign.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// `general_intake`, `phq9` or `gad7`.
    form: String,
}

/// An assignment.
#[derive(Serialize, ToSchema)]
pub struct AssignmentView {
    /// Its id (the patient opens it over the socket with `intake.open`).
    assignment_id: Uuid,
    /// Whose.
    #[schema(value_type = String, format = Uuid)]
    patient_id: PatientId,
    /// Who is alerted on submission.
    #[schema(value_type = String, format = Uuid)]
    clinician_id: UserId,
    /// Which form.
    form: &'static str,
    /// `assigned` or `submitted`.
    status: &'static str,
    /// When assigned (UTC ms).
    assigned_at_ms: i64,
    /// When submitted (UTC ms).
    submitted_at_ms: Option<i64>,
}

impl From<Assignment> for AssignmentView {
    fn from(a: Assignment) -> Self {
        Self {
            assignment_id: a.id,
            patient_id: a.patient_id,
            clinician_id: a.clinician_id,
            form: a.form.as_str(),
            status: if a.submitted { "submitted" } else { "assigned" },
            assigned_at_ms: a.assigned_at_ms,
            submitted_at_ms: a.submitted_at_ms,
        }
    }
}

/// A submitted form.
#[derive(Serialize, ToSchema)]
pub struct ResponseView {
    /// The assignment.
    #[serde(flatten)]
    assignment: AssignmentView,
    /// Item id -> answer.
    #[schema(value_type = Object)]
    answers: Map<String, Value>,
    /// Total, severity band and urgency, for screenings.
    #[schema(value_type = Option<Object>)]
    score: Option<Score>,
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::Storage(e) => e.into(),
        IntakeError::Crypto(e) => crate::patients::PatientError::Crypto(e).into(),
    }
}

/// Assigns a form to a patient on the caller's care team; the caller is alerted on submission.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/intake-forms", tag = "intake", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)), request_body = AssignBody,
    responses((status = 201, body = AssignmentView), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[post("/api/v1/patients/{patient_id}/intake-forms")]
pub async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
    body: web::Json<AssignBody>,
) -> Result<HttpResponse, ApiError> {
    let patient = path.into_inner();
    let form = FormKind::parse(&body.form).ok_or(ApiError::invalid("form", "is not general_intake, phq9 or gad7"))?;
    let about = About::new(Action::Create, ResourceType::IntakeResponse, None).for_patient(patient);
    guard::authorize(&state, &caller, Resource::IntakeResponse, Operation::Create, Target::Patient(patient), about)
        .await?;
    if !state.patients.exists(patient).await? {
        return Err(ApiError::NotFound);
    }
    guard::record_all(&state, vec![guard::event(&state, &caller, about, Outcome::Success, "intake_assigned")]).await?;
    let now = state.identity.clock.now_ms();
    let me = caller.principal.user_id;
    let assignment = state.intake.assign(patient, me, form, me, now).await.map_err(intake_error)?;
    Ok(HttpResponse::Created().json(AssignmentView::from(assignment)))
}

/// A patient's forms (without answers).
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/intake-forms", tag = "intake", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<AssignmentView>), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/intake-forms")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let patient = path.into_inner();
    let about = About::new(Action::Read, ResourceType::IntakeResponse, None).for_patient(patient);
    guard::authorize_and_record(
        &state,
        &caller,
        Resource::IntakeResponse,
        Operation::Read,
        Target::Patient(patient),
        about,
    )
    .await?;
    let assignments = state.intake.of_patient(patient).await.map_err(intake_error)?;
    Ok(HttpResponse::Ok().json(assignments.into_iter().map(AssignmentView::from).collect::<Vec<_>>()))
}

/// A submitted form with its answers and score.
#[utoipa::path(get, path = "/api/v1/intake-forms/{assignment_id}", tag = "intake", security(("bearer" = [])),
    params(("assignment_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ResponseView), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/intake-forms/{assignment_id}")]
pub async fn read(state: web::Data<AppState>, caller: Caller, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let assignment = state.intake.get(id).await.map_err(intake_error)?.ok_or(ApiError::NotFound)?;
    let patient = assignment.patient_id;
    let about = About::new(Action::Read, ResourceType::IntakeResponse, Some(id)).for_patient(patient);
    guard::authorize_and_record(
        &state,
        &caller,
        Resource::IntakeResponse,
        Operation::Read,
        Target::Patient(patient),
        about,
    )
    .await?;
    let (answers, score) = state.intake.response(id).await.map_err(intake_error)?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(ResponseView { assignment: assignment.into(), answers, score }))
}
