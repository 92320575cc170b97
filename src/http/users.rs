//! `/api/v1/users`: invite, list and disable accounts. Owners manage staff; owners, front desk
//! and clinicians (for patients on their care team) invite patients; the matrix decides.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, post, web};
use confidant_actors::audit::{Action, AuditActor, Outcome, ResourceType, Role};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::guard::{self, About};
use crate::access::{Decision, Operation, Resource, Target};
use crate::identity::{AccountStatus, Email, NewAccount};
use crate::state::AppState;
use crate::web::ApiError;

/// The matrix resource an account of `role` is.
fn resource_of(role: Role) -> Resource {
    if role == Role::Patient { Resource::PatientAccount } else { Resource::StaffAccount }
}

/// An invitation to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// `practice_owner`, `clinician`, `front_desk`, `billing` or `patient`.
    role: String,
    /// Where the person will sign in from.
    email: String,
    /// For a patient account: the patient record it is for.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
}

/// A created invitation. Deliver the token out of band; it works once.
#[derive(Serialize, ToSchema)]
pub struct Invitation {
    /// The invited account.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// The one-time invitation token.
    invitation_token: String,
    /// When it stops working (UTC ms).
    expires_at_ms: i64,
}

/// Invites an account.
#[utoipa::path(post, path = "/api/v1/users/invitations", tag = "users", security(("bearer" = [])),
    request_body = InviteBody,
    responses((status = 201, body = Invitation), (status = 400), (status = 401), (status = 403), (status = 409)))]
#[post("/api/v1/users/invitations")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role = Role::parse(&body.role)
        .ok_or(ApiError::invalid("role", "is not one of practice_owner, clinician, front_desk, billing, patient"))?;
    let email = Email::parse(&body.email).ok_or(ApiError::invalid("email", "is not an email address"))?;
    let (target, about) = match (role, body.patient_id) {
        (Role::Patient, Some(patient)) => {
            (Target::Patient(patient), About::new(Action::Create, ResourceType::User, None).for_patient(patient))
        }
        (Role::Patient, None) => {
            return Err(ApiError::invalid("patient_id", "is required for a patient account"));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid("patient_id", "is only for patient accounts"));
        }
        (_, None) => (Target::Any, About::new(Action::Create, ResourceType::User, None)),
    };
    guard::authorize(&state, &caller, resource_of(role), Operation::Create, target, about).await?;
    if let Some(patient) = body.patient_id
        && !state.patients.exists(patient).await?
    {
        return Err(ApiError::NotFound);
    }
    let by = AuditActor::User { id: caller.principal.user_id, role: caller.principal.role };
    let new = NewAccount { role, email, patient_id: body.patient_id };
    let (user_id, token, expires_at_ms) = state.identity.invite(&new, by, caller.origin).await?;
    Ok(HttpResponse::Created().insert_header(CacheControl(vec![CacheDirective::NoStore])).json(Invitation {
        user_id,
        invitation_token: token.expose().to_owned(),
        expires_at_ms,
    }))
}

/// An account as listed. Staff emails are shown; a patient account shows its patient id
/// instead (its email is PHI, read through the patient record).
#[derive(Serialize, ToSchema)]
pub struct UserSummary {
    /// Account id.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// Its role.
    role: &'static str,
    /// `invited`, `active` or `disabled`.
    status: &'static str,
    /// Staff only.
    email: Option<String>,
    /// Patient accounts only.
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// Whether TOTP is enrolled.
    totp_enabled: bool,
    /// Created (UTC ms).
    created_at_ms: i64,
}

/// The accounts the caller may see: all for owners; their own for other staff; patient
/// accounts within each role's reach.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<UserSummary>), (status = 401), (status = 403)))]
#[get("/api/v1/users")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let about = About::new(Action::Read, ResourceType::User, None);
    let p = &caller.principal;
    let staff = state.access.check(p, Resource::StaffAccount, Operation::Read, Target::Any).await.ok();
    let patients = state.access.check(p, Resource::PatientAccount, Operation::Read, Target::Any).await.ok();
    if staff.is_none() && patients.is_none() {
        // Neither is allowed: let the gate record and answer the refusal.
        guard::authorize(&state, &caller, Resource::StaffAccount, Operation::Read, Target::Any, about).await?;
    }
    let reachable = match patients {
        Some(Decision::CareTeam) => state.access.reachable_patients(p.user_id).await?,
        _ => Vec::new(),
    };
    let visible = |account: &crate::identity::Account| {
        let decision = if account.role == Role::Patient { patients } else { staff };
        match decision {
            Some(Decision::Practice) => true,
            Some(Decision::Own) => account.user_id == p.user_id,
            Some(Decision::CareTeam) => account.patient_id.is_some_and(|id| reachable.contains(&id)),
            Some(Decision::BreakGlass { .. }) | None => false,
        }
    };
    let accounts = state.identity.accounts.list().await?;
    let listed: Vec<UserSummary> = accounts
        .into_iter()
        .filter(|(account, _)| visible(account))
        .map(|(account, email)| UserSummary {
            user_id: account.user_id,
            role: account.role.as_str(),
            status: account.status.as_str(),
            email: (account.role != Role::Patient).then(|| email.expose().to_owned()),
            patient_id: account.patient_id,
            totp_enabled: account.totp_enabled,
            created_at_ms: account.created_at_ms,
        })
        .collect();
    guard::record_all(&state, vec![guard::event(&state, &caller, about, Outcome::Success, "account_list")]).await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// Disables an account and ends its sessions at once.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/disable", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/users/{user_id}/disable")]
pub async fn disable(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let user = path.into_inner();
    let account = state.identity.accounts.get(user).await?;
    let about = About::new(Action::PermissionChange, ResourceType::User, Some(*user.as_uuid()));
    let resource = account.as_ref().map_or(Resource::StaffAccount, |a| resource_of(a.role));
    guard::authorize(&state, &caller, resource, Operation::Update, Target::Account(user), about).await?;
    let account = account.ok_or(ApiError::NotFound)?;
    if account.user_id == caller.principal.user_id {
        return Err(ApiError::Conflict("an account cannot disable itself"));
    }
    if account.status == AccountStatus::Disabled {
        return Ok(HttpResponse::NoContent().finish());
    }
    let by = AuditActor::User { id: caller.principal.user_id, role: caller.principal.role };
    state.identity.disable(user, by, caller.origin).await?;
    state.pusher.revoke(user, None).await;
    // A disabled account's devices leave every conversation's delivery at once; the members'
    // next commits remove them from the MLS groups (the server refuses to re-add them).
    if let Err(error) = crate::messaging::retire_devices(&state.devices, &state.conversations, user).await {
        tracing::error!(%error, "could not take a disabled account's devices out of its conversations");
    }
    Ok(HttpResponse::NoContent().finish())
}
