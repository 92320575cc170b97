//! `/api/v1/patients`: create, read, update and list patient records
//! ([`crate::patients::PatientService`]), their care team, and break-glass access
//! ([`crate::patients::CareAccess`]). Each handler parses, calls the service and maps its answer;
//! the services authorize and audit.

use actix_web::{HttpResponse, delete, get, post, put, web};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::auth::Caller;
use crate::patients::CareAccessError;
use crate::patients::{Patient, PatientError, PatientRecord, PatientServiceError};
use crate::phi::PhiText;
use crate::state::AppState;
use crate::web::ApiError;

/// A stored patient record: the record's fields, and its id and times.
#[derive(Serialize)]
pub struct PatientView {
    /// The patient's id.
    id: PatientId,
    /// The record.
    #[serde(flatten)]
    record: PatientRecord,
    /// Created (UTC ms).
    created_at_ms: i64,
    /// Last changed (UTC ms).
    updated_at_ms: i64,
}

impl PartialSchema for PatientView {
    /// The record's schema with the three fields the server adds, as one object: the record's
    /// own schema refuses fields it lacks, so the two side by side (`allOf`) would refuse every
    /// answer.
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut object)) = PatientRecord::schema() else { return PatientRecord::schema() };
        let uuid =
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        let ms = |what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some(what))
        };
        let added = [
            ("id", uuid.description(Some("The patient's id."))),
            ("created_at_ms", ms("Created (UTC ms).")),
            ("updated_at_ms", ms("Last changed (UTC ms).")),
        ];
        for (name, schema) in added {
            object.properties.insert(name.to_owned(), schema.build().into());
            object.required.push(name.to_owned());
        }
        object.description = Some("A stored patient record: the record's fields, and its id and times.".to_owned());
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for PatientView {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        PatientRecord::schemas(schemas);
    }
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
    let id = state.services.patient_service.create(&caller.requester(), &body).await?;
    Ok(HttpResponse::Created().json(Created { id }))
}

/// The records the caller may see: all for owners, front desk and billing; the care team (and
/// live break-glass grants) for a clinician; their own for a patient. Each is audited.
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", security(("bearer" = [])),
    responses((status = 200, body = Vec<PatientView>), (status = 401), (status = 403), (status = 503)))]
#[get("/api/v1/patients")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let patients = state.services.patient_service.list(&caller.requester()).await?;
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
    let patient = state.services.patient_service.read(&caller.requester(), path.into_inner()).await?;
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
    state.services.patient_service.update(&caller.requester(), path.into_inner(), &body).await?;
    Ok(HttpResponse::NoContent().finish())
}

impl From<PatientServiceError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a value failing its integrity check, or a
    /// database fault, is logged (no values) and is 500.
    fn from(error: PatientServiceError) -> Self {
        match error {
            PatientServiceError::Invalid(field) => ApiError::InvalidField(field),
            PatientServiceError::Denied(denial) => ApiError::Forbidden(denial),
            PatientServiceError::NotFound => ApiError::NotFound,
            PatientServiceError::AuditUnavailable => ApiError::Unavailable,
            PatientServiceError::Crypto(e) => PatientError::Crypto(e).into(),
            PatientServiceError::Storage(e) => PatientError::Storage(e).into(),
        }
    }
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
    let members = state.services.care_access.care_team(&caller.requester(), path.into_inner()).await?;
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
    state.services.care_access.assign(&caller.requester(), patient, clinician).await?;
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
    state.services.care_access.unassign(&caller.requester(), patient, clinician).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Why the glass is broken.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// 10 to 1000 characters; stored encrypted, shown to owners.
    #[schema(value_type = super::fields::BreakGlassReason)]
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
    let grant = state.services.care_access.break_glass(&caller.requester(), path.into_inner(), &body.reason).await?;
    Ok(HttpResponse::Created().json(BreakGlassView::from(grant)))
}

/// Break-glass grants of the last 30 days, newest first, with their reasons (owners).
#[utoipa::path(get, path = "/api/v1/break-glass", tag = "care team", security(("bearer" = [])),
    responses((status = 200, body = Vec<BreakGlassView>), (status = 401), (status = 403)))]
#[get("/api/v1/break-glass")]
pub async fn break_glass_list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let grants = state.services.care_access.break_glass_grants(&caller.requester()).await?;
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
