//! `/api/v1/.../intake-forms`: a clinician assigns a form to a patient on their care team and
//! reads what was submitted; patients fill forms over the socket (docs/PROTOCOL.md). The
//! handlers parse, call [`IntakeService`](crate::intake::IntakeService) (which checks and audits
//! every read and write before data moves) and map its answer.

use actix_web::{HttpResponse, get, post, web};
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::IntakeAnswers;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use crate::intake::{Assignment, FormKind, IntakeError, IntakeServiceError, ListedForm, Score, SubmittedForm};
use crate::state::AppState;
use crate::web::ApiError;

/// A form, as the API names it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormName {
    /// First-visit intake.
    GeneralIntake,
    /// Patient Health Questionnaire-9.
    Phq9,
    /// Generalized Anxiety Disorder-7.
    Gad7,
}

impl From<FormName> for FormKind {
    fn from(name: FormName) -> Self {
        match name {
            FormName::GeneralIntake => FormKind::GeneralIntake,
            FormName::Phq9 => FormKind::Phq9,
            FormName::Gad7 => FormKind::Gad7,
        }
    }
}

/// A form to assign.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// `general_intake`, `phq9` or `gad7`.
    form: FormName,
    /// Front desk: the clinician on the patient's care team who reads the results (a clinician
    /// assigning leaves it out: it is them).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    clinician_id: Option<UserId>,
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
    /// In a list read by staff: whether an urgent alert about this form (PHQ-9 item 9 above
    /// zero, a severe total) awaits a clinician's documented follow-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    urgent: Option<bool>,
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
            urgent: None,
        }
    }
}

impl From<ListedForm> for AssignmentView {
    fn from(listed: ListedForm) -> Self {
        Self { urgent: listed.urgent, ..Self::from(listed.assignment) }
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
    answers: IntakeAnswers,
    /// Total, severity band and urgency, for screenings.
    #[schema(value_type = Option<Object>)]
    score: Option<Score>,
}

impl From<SubmittedForm> for ResponseView {
    fn from(form: SubmittedForm) -> Self {
        Self { assignment: form.assignment.into(), answers: form.answers, score: form.score }
    }
}

impl From<IntakeServiceError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a fault is logged (no values) and is 500.
    fn from(error: IntakeServiceError) -> Self {
        match error {
            IntakeServiceError::InvalidAnswer(invalid) => ApiError::invalid(invalid.item, invalid.rule),
            IntakeServiceError::NotAllowed(denial) => ApiError::Forbidden(denial),
            IntakeServiceError::NotFound => ApiError::NotFound,
            IntakeServiceError::AlreadySubmitted => ApiError::Conflict("the form was already submitted"),
            IntakeServiceError::Invalid { field, rule } => ApiError::invalid(field, rule),
            IntakeServiceError::AuditUnavailable => ApiError::Unavailable,
            IntakeServiceError::Store(IntakeError::Storage(e)) => e.into(),
            IntakeServiceError::Store(IntakeError::Crypto(e)) => crate::patients::PatientError::Crypto(e).into(),
        }
    }
}

/// Assigns a form to a patient: a clinician on the care team for themselves, front desk for a
/// clinician on it; that clinician is alerted on submission.
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
    let form = FormKind::from(body.form);
    let assignment =
        state.services.intake_service.assign(&caller.requester(), path.into_inner(), form, body.clinician_id).await?;
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
    let assignments = state.services.intake_service.list(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(assignments.into_iter().map(AssignmentView::from).collect::<Vec<_>>()))
}

/// A submitted form with its answers and score.
#[utoipa::path(get, path = "/api/v1/intake-forms/{assignment_id}", tag = "intake", security(("bearer" = [])),
    params(("assignment_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ResponseView), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/intake-forms/{assignment_id}")]
pub async fn read(state: web::Data<AppState>, caller: Caller, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let form = state.services.intake_service.read(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ResponseView::from(form)))
}

/// One screening result in a patient's series.
#[derive(Serialize, ToSchema)]
pub struct ScreeningPoint {
    /// `phq9` or `gad7`.
    form: &'static str,
    /// The form it came from.
    assignment_id: Uuid,
    /// When it was submitted (UTC ms).
    submitted_at_ms: i64,
    /// The total.
    total: u32,
    /// The published severity band (`minimal`, `mild`, `moderate`, `moderately_severe`,
    /// `severe`).
    #[schema(value_type = String)]
    severity: confidant_protocol::Severity,
}

/// A patient's PHQ-9 and GAD-7 series (measurement-based care).
#[derive(Serialize, ToSchema)]
pub struct ScreeningSeries {
    /// PHQ-9 results, oldest first.
    phq9: Vec<ScreeningPoint>,
    /// GAD-7 results, oldest first.
    gad7: Vec<ScreeningPoint>,
}

/// A patient's PHQ-9 and GAD-7 results over time, oldest first, with their severity bands.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/screening-series", tag = "intake", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ScreeningSeries), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/screening-series")]
pub async fn series(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let results = state.services.intake_service.series(&caller.requester(), path.into_inner()).await?;
    let mut series = ScreeningSeries { phq9: Vec::new(), gad7: Vec::new() };
    for result in results {
        let point = ScreeningPoint {
            form: result.form.as_str(),
            assignment_id: result.assignment_id,
            submitted_at_ms: result.submitted_at_ms,
            total: result.score.total,
            severity: result.score.severity,
        };
        match result.form {
            FormKind::Phq9 => series.phq9.push(point),
            FormKind::Gad7 => series.gad7.push(point),
            FormKind::GeneralIntake => {}
        }
    }
    Ok(HttpResponse::Ok().json(series))
}
