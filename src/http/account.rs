//! The caller's own account: who am I, TOTP enrollment and step-up, sign-out (this session or
//! everywhere), and accepting an invitation (the one call here without a session).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, post, web};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{Caller, RequestOrigin};
use crate::state::AppState;
use crate::web::{ApiError, browser};

/// The signed-in account.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// Account id.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// Its role.
    role: &'static str,
    /// For a patient account, the patient record.
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// Whether this session proved a second factor.
    mfa: bool,
    /// Whether the account has TOTP enrolled.
    totp_enabled: bool,
    /// Whether this account must prove a second factor before reaching PHI.
    mfa_required: bool,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401)))]
#[get("/api/v1/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let p = caller.principal;
    let account = state.services.identity.accounts.get(p.user_id).await?.ok_or(ApiError::Unauthenticated)?;
    Ok(HttpResponse::Ok().json(Me {
        user_id: p.user_id,
        role: p.role.as_str(),
        patient_id: p.patient_id,
        mfa: p.mfa,
        totp_enabled: account.totp_enabled,
        mfa_required: state.services.access.needs_mfa(p.role),
    }))
}

/// A started TOTP enrollment.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentResponse {
    /// Base32 secret for typing in.
    secret: String,
    /// `otpauth://` URI for a QR code.
    provisioning_uri: String,
}

/// Starts TOTP enrollment (replaces an unconfirmed one).
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrollmentResponse), (status = 401), (status = 409)))]
#[post("/api/v1/me/totp")]
pub async fn begin_totp(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let enrollment = state.services.identity.begin_totp(&caller.session, caller.origin).await?;
    Ok(HttpResponse::Ok().insert_header(CacheControl(vec![CacheDirective::NoStore])).json(TotpEnrollmentResponse {
        secret: enrollment.secret.to_string(),
        provisioning_uri: enrollment.provisioning_uri.to_string(),
    }))
}

/// A TOTP code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six digits from the authenticator.
    #[schema(value_type = String, pattern = "^[0-9]{6}$")]
    code: Zeroizing<String>,
}

/// Recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a TOTP code.
    recovery_codes: Vec<String>,
}

/// Confirms enrollment with a first code; returns the recovery codes.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "account", security(("bearer" = [])),
    request_body = TotpCode, responses((status = 200, body = RecoveryCodes), (status = 401), (status = 409), (status = 429)))]
#[post("/api/v1/me/totp/confirm")]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let codes = state.services.identity.confirm_totp(&caller.session, &body.code, caller.origin).await?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(RecoveryCodes { recovery_codes: codes.iter().map(|c| c.as_str().to_owned()).collect() }))
}

/// Proves TOTP within this session (step-up).
#[utoipa::path(post, path = "/api/v1/me/totp/verify", tag = "account", security(("bearer" = [])),
    request_body = TotpCode, responses((status = 204), (status = 401), (status = 429)))]
#[post("/api/v1/me/totp/verify")]
pub async fn verify_totp(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    state.services.identity.step_up(&caller.session, &body.code, caller.origin).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// How many sessions a sign-out ended.
#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    /// Sessions ended.
    sessions_ended: u64,
}

/// The answer to a sign-out: the portal's cookie is deleted, and a browser drops whatever it
/// cached or stored for this origin (`Clear-Site-Data`), so nothing of the session outlives it.
fn signed_out(sessions_ended: u64) -> HttpResponse {
    HttpResponse::Ok()
        .cookie(browser::cookie(browser::SESSION_COOKIE, "", 0))
        .insert_header(("Clear-Site-Data", "\"cache\", \"storage\""))
        .json(SignedOut { sessions_ended })
}

/// Ends this session.
#[utoipa::path(post, path = "/api/v1/sign-out", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = SignedOut), (status = 401)))]
#[post("/api/v1/sign-out")]
pub async fn sign_out(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let sessions_ended = state.services.identity.sign_out(&caller.session, false, caller.origin).await?;
    state.services.pusher.revoke(caller.principal.user_id, Some(caller.principal.session_id)).await;
    Ok(signed_out(sessions_ended))
}

/// Ends every session of the account, on every device.
#[utoipa::path(post, path = "/api/v1/sign-out-everywhere", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = SignedOut), (status = 401)))]
#[post("/api/v1/sign-out-everywhere")]
pub async fn sign_out_everywhere(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let sessions_ended = state.services.identity.sign_out(&caller.session, true, caller.origin).await?;
    state.services.pusher.revoke(caller.principal.user_id, None).await;
    Ok(signed_out(sessions_ended))
}

/// Accepting an invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The invitation token, as delivered.
    #[schema(value_type = String)]
    token: Zeroizing<String>,
    /// The new password: 12 to 256 characters, not a common one, not the email's local part.
    #[schema(value_type = String, format = Password, min_length = 12, max_length = 256)]
    password: Zeroizing<String>,
}

/// The activated account.
#[derive(Serialize, ToSchema)]
pub struct Activated {
    /// Account id; sign in with the invited email and the new password.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
}

/// Sets the password of an invited account and activates it.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "account", request_body = AcceptInvitation,
    responses((status = 200, body = Activated), (status = 400), (status = 404)))]
#[post("/api/v1/invitations/accept")]
pub async fn accept_invitation(
    state: web::Data<AppState>,
    origin: RequestOrigin,
    body: web::Json<AcceptInvitation>,
) -> Result<HttpResponse, ApiError> {
    let user_id = state.services.identity.accept_invitation(&body.token, &body.password, origin.0).await?;
    Ok(HttpResponse::Ok().json(Activated { user_id }))
}
