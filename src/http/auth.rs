//! Who is calling: [`Caller`] turns `Authorization: Bearer <access token>`, or the portal's
//! session cookie (with its anti-CSRF rule, `crate::web::browser`), into a [`Principal`] through
//! the session table (so a revoked or timed-out session is refused at once), and
//! [`RequestOrigin`] records where any request came from. Tokens are never read from the URL.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::access::{Principal, Requester};
use crate::identity::Origin;
use crate::identity::sessions::SessionOwner;
use crate::state::AppState;
use crate::web::{ApiError, RequestId, browser};

/// Where a request came from (request id and peer address), for the audit trail. The peer is
/// the TCP peer: `X-Forwarded-For` is not trusted, since any client can write it.
#[derive(Debug, Clone, Copy)]
pub struct RequestOrigin(pub Origin);

impl RequestOrigin {
    fn of(req: &HttpRequest) -> Self {
        Self(Origin {
            request_id: RequestId::of(req).map(RequestId::for_audit),
            source_ip: req.peer_addr().map(|a| a.ip()),
            session_id: None,
        })
    }
}

impl FromRequest for RequestOrigin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// A signed-in caller: their principal and the request's origin (with their session).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Who, with role, session and second-factor state.
    pub principal: Principal,
    /// Where from.
    pub origin: Origin,
    /// The session the token belongs to.
    pub session: SessionOwner,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Already authenticated for this request (the Idempotency-Key middleware does it first).
        if let Some(caller) = req.extensions().get::<Caller>().copied() {
            return Box::pin(std::future::ready(Ok(caller)));
        }
        let origin = RequestOrigin::of(req).0;
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(Ok).or_else(|| {
            let token = browser::session_token(req)?;
            let allowed = state.as_ref().map(|s| s.settings.ws.allowed_origins.as_slice()).unwrap_or_default();
            Some(if browser::csrf_ok(req, allowed) { Ok(token) } else { Err(ApiError::CrossSite) })
        });
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal)?;
            let token = token.ok_or(ApiError::Unauthenticated)??;
            let owner = state.services.identity.authenticate(&token, origin).await?;
            let principal = Principal {
                user_id: owner.user_id,
                role: owner.role,
                session_id: owner.session_id,
                patient_id: owner.patient_id,
                mfa: owner.mfa,
            };
            Ok(Caller { principal, origin: Origin { session_id: Some(owner.session_id), ..origin }, session: owner })
        })
    }
}

impl Caller {
    /// The caller as every service takes them.
    pub fn requester(&self) -> Requester {
        Requester::new(self.principal, self.origin)
    }
}

/// The bearer token of the `Authorization` header (RFC 6750 section 2.1), if well formed.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}
