//! `/api/v1/users`: invite, list and disable accounts. Owners manage staff; owners, front desk
//! and clinicians (for patients on their care team) invite patients; the matrix decides.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, post, put, web};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::shapes::Shape;
use crate::state::AppState;
use crate::users::{Invite, Invited, Listed, UserError};
use crate::web::ApiError;

/// An invitation to send: a member of staff (named now or later), or a patient's account for
/// their record ([`InviteBody::shapes`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// `practice_owner`, `clinician`, `front_desk`, `billing` or `patient`.
    role: String,
    /// Where the person will sign in from.
    #[schema(value_type = super::fields::AccountEmail)]
    email: String,
    /// For a patient account: the patient record it is for.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// Staff only: how they appear on screen and in reminders, e.g. "Dr. Ana Ruiz" (1-100
    /// characters); until given, they appear by email.
    #[serde(default)]
    #[schema(value_type = Option<super::fields::StaffName>)]
    display_name: Option<String>,
    /// Staff only, with a `display_name`: degrees or licences shown after the name, e.g. "PsyD"
    /// (at most 40).
    #[serde(default)]
    #[schema(value_type = Option<super::fields::Credentials>)]
    credentials: Option<String>,
}

impl InviteBody {
    /// Staff named now, staff named later, or a patient's account: what `Users::invite` takes.
    pub(super) fn shapes() -> Vec<Shape> {
        let staff_roles = ["practice_owner", "clinician", "front_desk", "billing"];
        vec![
            Shape::new().value("role", staff_roles).without("patient_id").string("display_name"),
            Shape::new()
                .value("role", staff_roles)
                .without("patient_id")
                .without("display_name")
                .without("credentials"),
            Shape::new().value("role", ["patient"]).uuid("patient_id").without("display_name").without("credentials"),
        ]
    }
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
    responses((status = 201, body = Invitation), (status = 404, description = "No such patient record"), (status = 409)))]
#[post("/api/v1/users/invitations")]
pub async fn invite(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let invite = Invite {
        role: &body.role,
        email: &body.email,
        patient_id: body.patient_id,
        display_name: body.display_name.as_deref(),
        credentials: body.credentials.as_deref(),
    };
    let Invited { user_id, token, expires_at_ms } = state.services.users.invite(&caller.requester(), invite).await?;
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
    /// Staff only, once named: the name, e.g. "Dr. Ana Ruiz".
    display_name: Option<String>,
    /// Staff only: degrees or licences, e.g. "PsyD".
    credentials: Option<String>,
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
    let listed: Vec<UserSummary> = state
        .services
        .users
        .list(&caller.requester())
        .await?
        .into_iter()
        .map(|Listed { account, staff_email }| UserSummary {
            user_id: account.user_id,
            role: account.role.as_str(),
            status: account.status.as_str(),
            email: staff_email.map(|email| email.expose().to_owned()),
            display_name: account.name.as_ref().map(|n| n.display_name.clone()),
            credentials: account.name.as_ref().and_then(|n| n.credentials.clone()),
            patient_id: account.patient_id,
            totp_enabled: account.totp_enabled,
            created_at_ms: account.created_at_ms,
        })
        .collect();
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
    state.services.users.disable(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member of staff's name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    /// How they appear, e.g. "Dr. Ana Ruiz" (1-100 characters).
    #[schema(value_type = super::fields::StaffName)]
    display_name: String,
    /// Degrees or licences shown after the name, e.g. "PsyD" (at most 40; empty for none).
    #[serde(default)]
    #[schema(value_type = Option<super::fields::Credentials>)]
    credentials: Option<String>,
}

/// Names (or renames) a member of staff (owners).
#[utoipa::path(put, path = "/api/v1/users/{user_id}/name", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), request_body = NameBody,
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[put("/api/v1/users/{user_id}/name")]
pub async fn set_name(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<UserId>,
    body: web::Json<NameBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state
        .services
        .users
        .set_name(&caller.requester(), path.into_inner(), &body.display_name, body.credentials.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member of staff in the directory.
#[derive(Serialize, ToSchema)]
pub struct StaffMember {
    /// Account id.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// Role.
    role: &'static str,
    /// How they appear on screen ("Dr. Ana Ruiz, PsyD"); a member of staff not named yet
    /// appears by email to staff and as `null` to patients.
    display_name: Option<String>,
}

/// The practice's active staff, by name and role.
#[utoipa::path(get, path = "/api/v1/staff", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [StaffMember]), (status = 401), (status = 403)))]
#[get("/api/v1/staff")]
pub async fn staff(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let staff = state.services.users.directory(&caller.requester()).await?;
    let members: Vec<StaffMember> = staff
        .into_iter()
        .map(|(account, display_name)| StaffMember {
            user_id: account.user_id,
            role: account.role.as_str(),
            display_name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(members))
}

/// Someone who may be in a conversation about a patient.
#[derive(Serialize, ToSchema)]
pub struct ParticipantView {
    /// The account (claim its devices' KeyPackages with it).
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// `patient` or `clinician`.
    role: &'static str,
    /// How a clinician appears ("Dr. Ana Ruiz, PsyD"); null for the patient.
    display_name: Option<String>,
}

/// Who may be in a conversation about this patient: the patient's own account and the clinicians
/// on the care team. For whoever may message about the patient; recorded with the patient.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/participants", tag = "messaging", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = [ParticipantView]), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/participants")]
pub async fn participants(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let people = state.services.users.participants(&caller.requester(), path.into_inner()).await?;
    let view: Vec<ParticipantView> = people
        .into_iter()
        .map(|p| ParticipantView { user_id: p.user_id, role: p.role.as_str(), display_name: p.display_name })
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid { field, rule } => ApiError::invalid(field, rule),
            UserError::Denied(denial) => ApiError::Forbidden(denial),
            UserError::NotFound => ApiError::NotFound,
            UserError::Conflict(what) => ApiError::Conflict(what),
            UserError::Identity(error) => error.into(),
            UserError::Unavailable => ApiError::Unavailable,
            UserError::Internal => ApiError::Internal,
        }
    }
}
