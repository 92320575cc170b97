//! `/api/v1/patients`: create, read, update and list patient records, their care team, and
//! break-glass access. Every read and write of a record is audited (and acknowledged) before
//! data is returned or changed; a refusal is audited too.

use actix_web::{HttpResponse, delete, get, post, put, web};
use confidant_actors::audit::{Action, Outcome, ResourceType, Role};
use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{ServerFrame, VERSION};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{Decision, Operation, Resource, Target};
use crate::identity::AccountStatus;
use crate::patients::{Patient, PatientRecord, Patients};
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
    if caller.principal.role == Role::Clinician {
        let change = About::new(Action::PermissionChange, ResourceType::CareTeam, Some(*id.as_uuid())).for_patient(id);
        guard::record_all(&state, vec![guard::event(&state, &caller, change, Outcome::Success, "care_team_assigned")])
            .await?;
        let now = state.identity.clock.now_ms();
        state.care_team.assign(id, caller.principal.user_id, None, now).await?;
    }
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
    let id = path.into_inner();
    let about = About::new(Action::Read, ResourceType::CareTeam, Some(*id.as_uuid())).for_patient(id);
    guard::authorize_and_record(&state, &caller, Resource::CareTeam, Operation::Read, Target::Patient(id), about)
        .await?;
    let members = state.care_team.members(id).await?;
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
    let about =
        About::new(Action::PermissionChange, ResourceType::CareTeam, Some(*clinician.as_uuid())).for_patient(patient);
    guard::authorize(&state, &caller, Resource::CareTeam, Operation::Create, Target::Patient(patient), about).await?;
    if !state.patients.exists(patient).await? {
        return Err(ApiError::NotFound);
    }
    let account = state.identity.accounts.get(clinician).await?;
    if !account.is_some_and(|a| a.role == Role::Clinician && a.status == AccountStatus::Active) {
        return Err(ApiError::invalid("clinician_id", "is not an active clinician account"));
    }
    guard::record_all(&state, vec![guard::event(&state, &caller, about, Outcome::Success, "care_team_assigned")])
        .await?;
    let now = state.identity.clock.now_ms();
    state.care_team.assign(patient, clinician, Some(caller.principal.user_id), now).await?;
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
    let about =
        About::new(Action::PermissionChange, ResourceType::CareTeam, Some(*clinician.as_uuid())).for_patient(patient);
    guard::authorize(&state, &caller, Resource::CareTeam, Operation::Delete, Target::Patient(patient), about).await?;
    guard::record_all(&state, vec![guard::event(&state, &caller, about, Outcome::Success, "care_team_unassigned")])
        .await?;
    if !state.care_team.unassign(patient, clinician).await? {
        return Err(ApiError::NotFound);
    }
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
    let patient = path.into_inner();
    let about = About::new(Action::BreakGlass, ResourceType::BreakGlassGrant, None).for_patient(patient);
    guard::authorize(&state, &caller, Resource::BreakGlassGrant, Operation::Create, Target::Any, about).await?;
    let reason_chars = body.reason.expose().trim().chars().count();
    if !crate::access::break_glass::REASON_CHARS.contains(&reason_chars) {
        return Err(ApiError::invalid("reason", "must be 10 to 1000 characters"));
    }
    if !state.patients.exists(patient).await? {
        return Err(ApiError::NotFound);
    }
    if state.care_team.includes(patient, caller.principal.user_id).await? {
        return Err(ApiError::Conflict("this patient is already on your care team"));
    }
    guard::record_all(&state, vec![guard::event(&state, &caller, about, Outcome::Success, "emergency_access")]).await?;
    let now = state.identity.clock.now_ms();
    let lifetime = i64::try_from(state.settings.identity.break_glass_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let grant = state
        .break_glass
        .grant(caller.principal.user_id, patient, &body.reason, now, lifetime)
        .await
        .map_err(break_glass_error)?;
    // Owners see it live (their sessions hold the owners' alert topic).
    let alert = ServerFrame::Alert {
        v: VERSION,
        kind: "break_glass".into(),
        patient_id: *patient.as_uuid(),
        assignment_id: None,
        clinician_id: Some(*caller.principal.user_id.as_uuid()),
        at_ms: now,
    };
    state.pusher.push([Topic::OwnerAlerts], None, &alert, "break_glass_alert").await;
    Ok(HttpResponse::Created().json(BreakGlassView::from(grant)))
}

/// Break-glass grants of the last 30 days, newest first, with their reasons (owners).
#[utoipa::path(get, path = "/api/v1/break-glass", tag = "care team", security(("bearer" = [])),
    responses((status = 200, body = Vec<BreakGlassView>), (status = 401), (status = 403)))]
#[get("/api/v1/break-glass")]
pub async fn break_glass_list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    const WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
    let about = About::new(Action::Read, ResourceType::BreakGlassGrant, None);
    let decision =
        guard::authorize(&state, &caller, Resource::BreakGlassGrant, Operation::Read, Target::Any, about).await?;
    let since = state.identity.clock.now_ms() - WINDOW_MS;
    let mut grants = state.break_glass.list(since).await.map_err(break_glass_error)?;
    if decision == Decision::Own {
        grants.retain(|g| g.clinician_id == caller.principal.user_id);
    }
    let events = grants
        .iter()
        .map(|g| {
            let about =
                About::new(Action::Read, ResourceType::BreakGlassGrant, Some(g.grant_id)).for_patient(g.patient_id);
            guard::event(&state, &caller, about, Outcome::Success, guard::allowed_because(decision))
        })
        .collect();
    guard::record_all(&state, events).await?;
    Ok(HttpResponse::Ok().json(grants.into_iter().map(BreakGlassView::from).collect::<Vec<_>>()))
}

fn break_glass_error(error: crate::access::BreakGlassError) -> ApiError {
    match error {
        crate::access::BreakGlassError::Reason => ApiError::invalid("reason", "must be 10 to 1000 characters"),
        crate::access::BreakGlassError::Storage(e) => e.into(),
        crate::access::BreakGlassError::Crypto(e) => crate::patients::PatientError::Crypto(e).into(),
    }
}
