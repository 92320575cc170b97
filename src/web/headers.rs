//! Security headers on every response. Nothing the server sends may be cached by a browser or a
//! proxy (responses can carry PHI), framed, sniffed, or followed by a referrer.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;

/// Content Security Policy for the API and the portal: same-origin resources only, no inline
/// script or style, no plugins, no framing, and connections only back to this origin (HTTPS and
/// its WebSocket). `'wasm-unsafe-eval'` lets the portal compile its own WebAssembly (it allows
/// no JavaScript `eval`); Trusted Types forbid every string-to-script sink.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// The headers, added to each response that does not set them itself.
pub fn security_headers(hsts_max_age_secs: u64) -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::STRICT_TRANSPORT_SECURITY, format!("max-age={hsts_max_age_secs}; includeSubDomains")))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"))
}
