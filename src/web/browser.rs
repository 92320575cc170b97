//! What a browser request carries that a native client's does not, shared by both transports:
//! the portal's session cookie (`__Host-`, Secure, HttpOnly, SameSite=Strict: its value is an
//! access token script never sees), the anti-CSRF rule for requests it authenticates, and the
//! same-origin check of a browser's `Origin`.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, header};

/// The session cookie. `__Host-` makes the browser refuse it unless Secure, host-only and `/`.
pub const SESSION_COOKIE: &str = "__Host-confidant-session";

/// The cookie that holds a sign-in waiting for its second factor (flow token and PKCE verifier).
pub const SIGN_IN_COOKIE: &str = "__Host-confidant-sign-in";

/// The header every cookie-authenticated request that changes state must carry. A page on
/// another site cannot add a custom header to a cross-origin request without a CORS preflight,
/// and this server answers none.
pub const CSRF_HEADER: &str = "x-confidant-csrf";

/// The session token of the cookie, if any.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// A `__Host-` cookie holding `value` for `max_age_secs` (0: delete it).
pub fn cookie(name: &'static str, value: &str, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(name, value.to_owned())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Whether a request authenticated by the cookie may proceed: safe methods always; others only
/// with the anti-CSRF header and, when the browser names an origin, an allowed one.
pub fn csrf_ok(req: &HttpRequest, allowed_origins: &[String]) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    req.headers().contains_key(CSRF_HEADER) && origin_allowed(req, allowed_origins)
}

/// A request without Origin is not from a browser (or is a same-origin GET); a browser's Origin
/// must be allowed, by default only the server's own.
pub fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    if allowed.is_empty() {
        // HTTP/2 names the host in `:authority` (the URI), HTTP/1.1 in `Host`. Forwarding
        // headers are not consulted: any client can write them.
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
            .unwrap_or_default();
        return !host.is_empty() && origin == format!("https://{host}");
    }
    allowed.iter().any(|a| a == origin)
}
