//! The portal's backend-for-frontend (docs/API.md, "Browser session"): sign-in for a browser
//! without any token reaching script. The server runs the OAuth flow itself
//! (`crate::identity::browser`) and answers with the `__Host-` session cookie; the second factor
//! waits in a short-lived cookie of its own. `GET /api/v1/browser/session` tells a reloaded page
//! who is signed in and the session's limits, and counts as activity ("stay signed in").

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{Caller, RequestOrigin};
use crate::identity::browser::BrowserSignIn;
use crate::identity::sessions::SessionOwner;
use crate::identity::sign_in::SecondFactor;
use crate::state::AppState;
use crate::web::ApiError;
use crate::web::browser::{self, SESSION_COOKIE, SIGN_IN_COOKIE};

/// Email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserCredentials {
    /// The account's email.
    email: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    password: Zeroizing<String>,
}

/// A TOTP code or a recovery code: exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserFactor {
    /// Six digits from the authenticator...
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    totp_code: Option<Zeroizing<String>>,
    /// ...or a one-time recovery code.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    recovery_code: Option<Zeroizing<String>>,
}

/// The signed-in account and its session's limits.
#[derive(Serialize, ToSchema)]
pub struct BrowserSession {
    /// Account id.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// Its role.
    role: &'static str,
    /// For a patient account, the patient record.
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// How the account appears on screen.
    display_name: String,
    /// Whether this session proved a second factor.
    mfa: bool,
    /// Whether the account has TOTP enrolled.
    totp_enabled: bool,
    /// Whether the role must prove a second factor (and so enroll TOTP first).
    mfa_required: bool,
    /// The session ends after this long without a request.
    idle_timeout_secs: u64,
    /// The session ends at this time whatever happens (UTC ms).
    expires_at_ms: i64,
    /// Whether the practice shares patients' final progress notes with them
    /// (`notes.open_notes`): the portal shows a patient their notes only then.
    open_notes: bool,
}

/// A sign-in step's outcome.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BrowserStep {
    /// Signed in; the session cookie is set.
    SignedIn {
        /// Who, and the limits.
        session: BrowserSession,
    },
    /// Send the second factor to `POST /api/v1/browser/sign-in/mfa`.
    MfaRequired,
}

/// The anti-CSRF header a browser sign-in must carry (any value): a page on another site cannot
/// send it without the server's consent.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code, reason = "documents a header `from_this_page` checks")]
struct Csrf {
    /// Any value; its presence is what counts.
    #[param(rename = "X-Confidant-Csrf")]
    x_confidant_csrf: String,
}

/// Sign-in requests change state too: a page on another site must not sign a browser into an
/// account of its choosing (login CSRF).
fn from_this_page(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let from_page = req.headers().contains_key(browser::CSRF_HEADER)
        && browser::origin_allowed(req, &state.settings.ws.allowed_origins);
    if from_page { Ok(()) } else { Err(ApiError::CrossSite) }
}

async fn session_view(state: &AppState, owner: &SessionOwner) -> Result<BrowserSession, ApiError> {
    let identity = &state.services.identity;
    let account = identity.accounts.get(owner.user_id).await?.ok_or(ApiError::Unauthenticated)?;
    let display_name = state.services.users.display_name(&account).await?;
    Ok(BrowserSession {
        user_id: owner.user_id,
        role: owner.role.as_str(),
        patient_id: owner.patient_id,
        display_name,
        mfa: owner.mfa,
        totp_enabled: account.totp_enabled,
        mfa_required: state.services.access.needs_mfa(owner.role),
        idle_timeout_secs: identity.settings().session_idle_secs,
        expires_at_ms: owner.expires_at_ms,
        open_notes: state.settings.notes.open_notes,
    })
}

async fn answer(state: &AppState, step: BrowserSignIn) -> Result<HttpResponse, ApiError> {
    let mut response = HttpResponse::Ok();
    response.insert_header(CacheControl(vec![CacheDirective::NoStore]));
    match step {
        BrowserSignIn::SignedIn(owner, issued) => {
            let max_age = (issued.session_expires_at_ms - state.services.identity.clock.now_ms()) / 1000;
            let session = session_view(state, &owner).await?;
            response
                .cookie(browser::cookie(SESSION_COOKIE, issued.access.expose(), max_age.max(0)))
                .cookie(browser::cookie(SIGN_IN_COOKIE, "", 0));
            Ok(response.json(BrowserStep::SignedIn { session }))
        }
        BrowserSignIn::SecondFactor { pending } => {
            let secs = i64::try_from(state.services.identity.settings().sign_in_flow_secs).unwrap_or(300);
            response.cookie(browser::cookie(SIGN_IN_COOKIE, &pending, secs));
            Ok(response.json(BrowserStep::MfaRequired))
        }
    }
}

/// Password step of a browser sign-in.
#[utoipa::path(post, path = "/api/v1/browser/sign-in", tag = "browser", request_body = BrowserCredentials,
    params(Csrf),
    responses((status = 200, body = BrowserStep), (status = 401), (status = 403), (status = 429)))]
#[post("/api/v1/browser/sign-in")]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: RequestOrigin,
    body: web::Json<BrowserCredentials>,
) -> Result<HttpResponse, ApiError> {
    from_this_page(&req, &state)?;
    let step = state.services.identity.browser_sign_in(&body.email, &body.password, origin.0).await?;
    answer(&state, step).await
}

/// Second-factor step of a browser sign-in.
#[utoipa::path(post, path = "/api/v1/browser/sign-in/mfa", tag = "browser", request_body = BrowserFactor,
    params(Csrf),
    responses((status = 200, body = BrowserStep), (status = 400), (status = 401), (status = 403), (status = 429)))]
#[post("/api/v1/browser/sign-in/mfa")]
pub async fn sign_in_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    origin: RequestOrigin,
    body: web::Json<BrowserFactor>,
) -> Result<HttpResponse, ApiError> {
    from_this_page(&req, &state)?;
    let pending =
        req.cookie(SIGN_IN_COOKIE).map(|c| Zeroizing::new(c.value().to_owned())).ok_or(ApiError::InvalidMfa)?;
    let factor = match (&body.totp_code, &body.recovery_code) {
        (Some(code), None) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => return Err(ApiError::invalid("totp_code", "or recovery_code must be given, not both")),
    };
    let step = state.services.identity.browser_second_factor(&pending, factor, origin.0).await?;
    answer(&state, step).await
}

/// Who is signed in, and the session's limits; counts as activity.
#[utoipa::path(get, path = "/api/v1/browser/session", tag = "browser", security(("bearer" = [])),
    responses((status = 200, body = BrowserSession), (status = 401)))]
#[get("/api/v1/browser/session")]
pub async fn current(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let view = session_view(&state, &caller.session).await?;
    Ok(HttpResponse::Ok().insert_header(CacheControl(vec![CacheDirective::NoStore])).json(view))
}
