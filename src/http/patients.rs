//! `/api/v1/patients`: create, read, update and list patient records, their care team, and
//! break-glass access. Every read and write of a record is audited (and acknowledged) before
//! data is returned or changed; a refusal is audited too.

use actix_web::{HttpResponse, delete, get, post, put, web};
use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{CareAccessError, Decision, Operation, Resource, Target};
use crate::patients::{Patient, PatientError, PatientRecord, Patients};
use crate::phi::PhiText;
use crate::state::AppState;
use crate::web::ApiError;

/// The most records one list returns.
const LIST_LIMIT: i64 = 500;

/// A stored patient record.
#[derive(Serialize, ToSchema)]
pub struct PatientView {
    /// The patient's id.
    #[schema(value_type = String, format = Uuid)]
    id: PatientId,
    /// The record.
    #[serde(flatten)]
    record: PatientRecord,
    /// Created (UTC ms).
    created_at_ms: i64,
    /// Last changed (UTC ms).
    updated_at_ms: i64,
}

impl From<Patient> for PatientView {
    fn from(p: Patient) -> Self {
        Self { id: p.id, record: p.record, created_at_ms: p.created_at_ms, updated_at_ms: p.updated_at_ms }
    }
}

/// A created record's id.
#[derive(Serialize, ToSchema)]
pub struct Created {
    /// The new patient's id.
    #[schema(value_type = String, format = Uuid)]
    id: PatientId,
}

/// Creates a patient record. A clinician who creates one joins its care team.
#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", security(("bearer" = [])),
    request_body = PatientRecord,
    responses((status = 201, body = Created), (status = 400), (status = 401), (status = 403), (status = 503)))]
#[post("/api/v1/patients")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<PatientRecord>,
) -> Result<HttpResponse, ApiError> {
    let record = body.into_inner();
    Patients::check(&record)?;
    let id = PatientId::generate();
    let about = About::patient(Action::Create, id);
    guard::authorize_and_record(&state, &caller, Resource::PatientDemographics, Operation::Create, Target::Any, about)
        .await?;
    state.patients.create_with_id(id, &record).await?;
    state.care_access.creator_joins(&caller.requester(), id).await?;
    Ok(HttpResponse::Created().json(Created { id }))
}

/// The records the caller may see: all for owners, front desk and billing; the care team (and
/// live break-glass grants) for a clinician; their own for a patient. Each is audited.
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", security(("bearer" = [])),
    responses((status = 200, body = Vec<PatientView>), (status = 401), (status = 403), (status = 503)))]
#[get("/api/v1/patients")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let about = About::new(Action::Read, ResourceType::Patient, None);
    let decision =
        guard::authorize(&state, &caller, Resource::PatientDemographics, Operation::Read, Target::Any, about).await?;
    let ids = match decision {
        Decision::Practice => state.patients.all_ids(LIST_LIMIT).await?,
        Decision::CareTeam | Decision::BreakGlass { .. } => {
            state.access.reachable_patients(caller.principal.user_id).await?
        }
        Decision::Own => caller.principal.patient_id.into_iter().collect(),
    };
    let mut events = Vec::with_capacity(ids.len());
    for &id in &ids {
        // A clinician's list mixes care team and break-glass patients: each is checked (and
        // so audited) for how it was reached.
        let reached = match decision {
            Decision::CareTeam | Decision::BreakGlass { .. } => {
                let target = Target::Patient(id);
                state.access.check(&caller.principal, Resource::PatientDemographics, Operation::Read, target).await?
            }
            other => other,
        };
        events.push(guard::event(
            &state,
            &caller,
            About::patient(Action::Read, id),
            Outcome::Success,
            guard::allowed_because(reached),
        ));
    }
    guard::record_all(&state, events).await?;
    let patients = state.patients.get_many(&ids).await?;
    Ok(HttpResponse::Ok().json(patients.into_iter().map(PatientView::from).collect::<Vec<_>>()))
}

/// One patient record.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}", tag = "patients", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = PatientView), (status = 401), (status = 403), (status = 404), (status = 503)))]
#[get("/api/v1/patients/{patient_id}")]
pub async fn read(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let about = About::patient(Action::Read, id);
    guard::authorize_and_record(
        &state,
        &caller,
        Resource::PatientDemographics,
        Operation::Read,
        Target::Patient(id),
        about,
    )
    .await?;
    let patient = state.patients.get(id).await?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(PatientView::from(patient)))
}

/// Replaces a patient record.
#[utoipa::path(put, path = "/api/v1/patients/{patient_id}", tag = "patients", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)), request_body = PatientRecord,
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404), (status = 503)))]
#[put("/api/v1/patients/{patient_id}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
    body: web::Json<PatientRecord>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let record = body.into_inner();
    Patients::check(&record)?;
    let about = About::patient(Action::Update, id);
    guard::authorize_and_record(
        &state,
        &caller,
        Resource::PatientDemographics,
        Operation::Update,
        Target::Patient(id),
        about,
    )
    .await?;
    if !state.patients.update(id, &record).await? {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A clinician on a care team.
#[derive(Serialize, ToSchema)]
pub struct CareTeamMember {
    /// The clinician's account.
    #[schema(value_type = String, format = Uuid)]
    clinician_id: UserId,
    /// Who assigned them (absent: they created the record).
    #[schema(value_type = Option<String>, format = Uuid)]
    assigned_by: Option<UserId>,
    /// When (UTC ms).
    assigned_at_ms: i64,
}

/// The clinicians on a patient's care team.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/care-team", tag = "care team", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<CareTeamMember>), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/care-team")]
pub async fn care_team(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let members = state.care_access.care_team(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(
        members
            .into_iter()
            .map(|m| CareTeamMember {
                clinician_id: m.clinician_id,
                assigned_by: m.assigned_by,
                assigned_at_ms: m.assigned_at_ms,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Puts a clinician on a patient's care team (a permission change, audited).
#[utoipa::path(put, path = "/api/v1/patients/{patient_id}/care-team/{clinician_id}", tag = "care team",
    security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid), ("clinician_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[put("/api/v1/patients/{patient_id}/care-team/{clinician_id}")]
pub async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(PatientId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let (patient, clinician) = path.into_inner();
    state.care_access.assign(&caller.requester(), patient, clinician).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Takes a clinician off a patient's care team (a permission change, audited).
#[utoipa::path(delete, path = "/api/v1/patients/{patient_id}/care-team/{clinician_id}", tag = "care team",
    security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid), ("clinician_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
#[delete("/api/v1/patients/{patient_id}/care-team/{clinician_id}")]
pub async fn unassign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(PatientId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let (patient, clinician) = path.into_inner();
    state.care_access.unassign(&caller.requester(), patient, clinician).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Why the glass is broken.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// 10 to 1000 characters; stored encrypted, shown to owners.
    #[schema(value_type = String)]
    reason: PhiText,
}

/// A break-glass grant.
#[derive(Serialize, ToSchema)]
pub struct BreakGlassView {
    /// The grant.
    grant_id: uuid::Uuid,
    /// The clinician it lets in.
    #[schema(value_type = String, format = Uuid)]
    clinician_id: UserId,
    /// The patient.
    #[schema(value_type = String, format = Uuid)]
    patient_id: PatientId,
    /// The stated reason (owners' list only).
    #[schema(value_type = Option<String>)]
    reason: Option<PhiText>,
    /// When (UTC ms).
    created_at_ms: i64,
    /// Until when (UTC ms).
    expires_at_ms: i64,
}

impl From<crate::access::BreakGlassGrant> for BreakGlassView {
    fn from(g: crate::access::BreakGlassGrant) -> Self {
        Self {
            grant_id: g.grant_id,
            clinician_id: g.clinician_id,
            patient_id: g.patient_id,
            reason: g.reason,
            created_at_ms: g.created_at_ms,
            expires_at_ms: g.expires_at_ms,
        }
    }
}

/// A clinician opens a patient outside their care team, stating why; the grant lasts
/// `identity.break_glass_secs` and is audited as `break_glass`.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/break-glass", tag = "care team", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)), request_body = BreakGlassBody,
    responses((status = 201, body = BreakGlassView), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/patients/{patient_id}/break-glass")]
pub async fn break_glass(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
    body: web::Json<BreakGlassBody>,
) -> Result<HttpResponse, ApiError> {
    let grant = state.care_access.break_glass(&caller.requester(), path.into_inner(), &body.reason).await?;
    Ok(HttpResponse::Created().json(BreakGlassView::from(grant)))
}

/// Break-glass grants of the last 30 days, newest first, with their reasons (owners).
#[utoipa::path(get, path = "/api/v1/break-glass", tag = "care team", security(("bearer" = [])),
    responses((status = 200, body = Vec<BreakGlassView>), (status = 401), (status = 403)))]
#[get("/api/v1/break-glass")]
pub async fn break_glass_list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let grants = state.care_access.break_glass_grants(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(grants.into_iter().map(BreakGlassView::from).collect::<Vec<_>>()))
}

impl From<CareAccessError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a reason failing its integrity check is
    /// logged (no values) and is 500.
    fn from(error: CareAccessError) -> Self {
        match error {
            CareAccessError::Invalid(field) => ApiError::InvalidField(field),
            CareAccessError::Denied(denial) => ApiError::Forbidden(denial),
            CareAccessError::NotFound => ApiError::NotFound,
            CareAccessError::OnCareTeam => ApiError::Conflict("this patient is already on your care team"),
            CareAccessError::AuditUnavailable => ApiError::Unavailable,
            CareAccessError::Accounts(e) => e.into(),
            CareAccessError::Patients(e) => e.into(),
            CareAccessError::Crypto(e) => PatientError::Crypto(e).into(),
            CareAccessError::Storage(e) => e.into(),
        }
    }
}
