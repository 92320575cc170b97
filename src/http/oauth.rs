//! The OAuth 2.0 endpoints (docs/API.md): `POST /oauth/authorize` (password),
//! `POST /oauth/authorize/mfa` (second factor), `POST /oauth/token` (code + PKCE verifier, or
//! refresh token) and `POST /oauth/revoke`. The authorization code comes back in the JSON body,
//! as with `response_mode=form_post`: no code, token or credential ever travels in a URL.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::RequestOrigin;
use super::shapes::Shape;
use crate::identity::oauth::AuthorizationRequest;
use crate::identity::sessions::AccessLifetime;
use crate::identity::sign_in::{Authorized, SecondFactor};
use crate::state::AppState;
use crate::web::ApiError;

/// Sign-in with a password, for an authorization request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    /// Must be `code`.
    #[schema(pattern = "^code$")]
    response_type: String,
    /// A registered public client.
    client_id: String,
    /// One of the client's registered redirect URIs, exactly.
    redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)), 43 characters.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    code_challenge: String,
    /// Must be `S256`.
    #[schema(pattern = "^S256$")]
    code_challenge_method: String,
    /// Returned unchanged: at most 512 visible ASCII characters.
    #[serde(default)]
    #[schema(pattern = "^[!-~]*$", max_length = 512)]
    state: Option<String>,
    /// The account's email.
    email: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    password: Zeroizing<String>,
}

/// The second factor of a sign-in: exactly one of `totp_code` and `recovery_code`
/// ([`MfaBody::shapes`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaBody {
    /// From the `mfa_required` answer.
    mfa_token: String,
    /// A 6-digit TOTP code...
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    totp_code: Option<Zeroizing<String>>,
    /// ...or a one-time recovery code.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    recovery_code: Option<Zeroizing<String>>,
    /// Returned unchanged.
    #[serde(default)]
    state: Option<String>,
}

/// The outcome of a sign-in step.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuthorizeResponse {
    /// Exchange `code` at `POST /oauth/token` within `authorization_code_secs`.
    Authorized {
        /// The one-time authorization code.
        code: String,
        /// The request's `state`.
        state: Option<String>,
    },
    /// Send a TOTP or recovery code to `POST /oauth/authorize/mfa` with this token.
    MfaRequired {
        /// The sign-in flow token.
        mfa_token: String,
    },
}

/// RFC 6749 token request (form-encoded), with the parameters of its grant type
/// ([`TokenForm::shapes`]).
#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    /// `authorization_code` or `refresh_token`.
    #[schema(pattern = "^(authorization_code|refresh_token)$")]
    grant_type: String,
    /// The public client.
    client_id: String,
    /// The code (authorization_code).
    code: Option<String>,
    /// The redirect URI of the authorization request (authorization_code).
    redirect_uri: Option<String>,
    /// The PKCE verifier (authorization_code).
    #[schema(value_type = Option<String>)]
    code_verifier: Option<Zeroizing<String>>,
    /// The refresh token (refresh_token).
    #[schema(value_type = Option<String>)]
    refresh_token: Option<Zeroizing<String>>,
}

impl MfaBody {
    /// Exactly one code: the other absent or null.
    pub(super) fn shapes() -> Vec<Shape> {
        vec![Shape::new().string("totp_code"), Shape::new().string("recovery_code")]
    }
}

impl TokenForm {
    /// What each grant type needs (RFC 6749 sections 4.1.3 and 6, RFC 7636 section 4.5).
    pub(super) fn shapes() -> Vec<Shape> {
        vec![
            Shape::new()
                .value("grant_type", ["authorization_code"])
                .string("code")
                .string("redirect_uri")
                .string("code_verifier"),
            Shape::new().value("grant_type", ["refresh_token"]).string("refresh_token"),
        ]
    }
}

/// RFC 6749 section 5.1 token response.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Bearer token for `/api/v1`.
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds the access token lives.
    expires_in: u64,
    /// Used once at `POST /oauth/token` for new tokens.
    refresh_token: String,
}

/// RFC 7009 revocation request (form-encoded). A `token_type_hint` is accepted and ignored:
/// either kind of token ends its whole session.
#[derive(Deserialize, ToSchema)]
pub struct RevokeForm {
    /// An access or refresh token.
    #[schema(value_type = String)]
    token: Zeroizing<String>,
}

/// Responses carrying credentials must not be cached (RFC 6749 section 5.1).
fn no_store(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

fn authorized(outcome: Authorized) -> HttpResponse {
    no_store(match outcome {
        Authorized::Code { code, state } => AuthorizeResponse::Authorized { code: code.expose().to_owned(), state },
        Authorized::SecondFactorRequired { flow } => {
            AuthorizeResponse::MfaRequired { mfa_token: flow.expose().to_owned() }
        }
    })
}

/// Password step of sign-in.
#[utoipa::path(post, path = "/oauth/authorize", tag = "oauth", request_body = AuthorizeBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400), (status = 401), (status = 429)))]
#[post("/oauth/authorize")]
pub async fn authorize(
    state: web::Data<AppState>,
    origin: RequestOrigin,
    body: web::Json<AuthorizeBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.response_type != "code" {
        return Err(ApiError::OAuth { code: "unsupported_response_type", description: "response_type must be code" });
    }
    let request = AuthorizationRequest {
        client_id: body.client_id,
        redirect_uri: body.redirect_uri,
        code_challenge: body.code_challenge,
        state: body.state,
    };
    request.check(&state.services.identity.settings().clients, Some(&body.code_challenge_method))?;
    let outcome = state.services.identity.authorize(&request, &body.email, &body.password, origin.0).await?;
    Ok(authorized(outcome))
}

/// Second-factor step of sign-in.
#[utoipa::path(post, path = "/oauth/authorize/mfa", tag = "oauth", request_body = MfaBody,
    responses((status = 200, body = AuthorizeResponse), (status = 400), (status = 401), (status = 429)))]
#[post("/oauth/authorize/mfa")]
pub async fn authorize_mfa(
    state: web::Data<AppState>,
    origin: RequestOrigin,
    body: web::Json<MfaBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let factor = match (&body.totp_code, &body.recovery_code) {
        (Some(code), None) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => return Err(ApiError::OAuth { code: "invalid_request", description: "give totp_code or recovery_code" }),
    };
    let outcome = state.services.identity.second_factor(&body.mfa_token, factor, body.state, origin.0).await?;
    Ok(authorized(outcome))
}

/// Token endpoint: authorization code + PKCE verifier, or a refresh token (rotated).
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400), (status = 401)))]
#[post("/oauth/token")]
pub async fn token(
    state: web::Data<AppState>,
    origin: RequestOrigin,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    if !state.services.identity.settings().clients.iter().any(|c| c.id == form.client_id) {
        return Err(ApiError::OAuth { code: "invalid_client", description: "unknown client_id" });
    }
    let missing = |what| ApiError::OAuth { code: "invalid_request", description: what };
    let issued = match form.grant_type.as_str() {
        "authorization_code" => {
            let code = form.code.ok_or(missing("code is required"))?;
            let redirect_uri = form.redirect_uri.ok_or(missing("redirect_uri is required"))?;
            let verifier = form.code_verifier.ok_or(missing("code_verifier is required"))?;
            let (_, issued) = state
                .services
                .identity
                .exchange_code(&code, &form.client_id, &redirect_uri, &verifier, AccessLifetime::Short, origin.0)
                .await?;
            issued
        }
        "refresh_token" => {
            let refresh = form.refresh_token.ok_or(missing("refresh_token is required"))?;
            state.services.identity.refresh(&refresh, &form.client_id, origin.0).await?
        }
        _ => {
            return Err(ApiError::OAuth {
                code: "unsupported_grant_type",
                description: "grant_type must be authorization_code or refresh_token",
            });
        }
    };
    Ok(no_store(TokenResponse {
        access_token: issued.access.expose().to_owned(),
        token_type: "Bearer",
        expires_in: issued.expires_in_secs,
        refresh_token: issued.refresh.expose().to_owned(),
    }))
}

/// Revokes a token's session (RFC 7009); answers 200 whether or not the token was known.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 400)))]
#[post("/oauth/revoke")]
pub async fn revoke(
    state: web::Data<AppState>,
    origin: RequestOrigin,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    if let Some((session, user)) = state.services.identity.revoke(&form.token, origin.0).await? {
        state.services.pusher.revoke(user, Some(session)).await;
    }
    Ok(HttpResponse::Ok().insert_header(CacheControl(vec![CacheDirective::NoStore])).finish())
}
