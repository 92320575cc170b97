//! Security headers and request ids on every response, success or error.

use std::collections::HashSet;

use crate::helpers::{Backend, spawn_app};

const PATHS: &[&str] = &["/healthz", "/readyz", "/", "/no-such-page"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app(Backend::Sqlite).await;

    for path in PATHS {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());

        let hsts = header("strict-transport-security").unwrap_or_default();
        assert!(hsts.starts_with("max-age=63072000"), "{path}: {hsts}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{path}");
        let csp = header("content-security-policy").unwrap_or_default();
        for directive in ["default-src 'none'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"] {
            assert!(csp.contains(directive), "{path}: CSP lacks {directive}: {csp}");
        }
        // `'wasm-unsafe-eval'` lets the portal compile its WebAssembly; `'unsafe-eval'` would let
        // script run strings as code.
        assert!(!csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"), "{path}: {csp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_its_own_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut seen = HashSet::new();

    for path in PATHS.iter().chain(PATHS) {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert!(seen.insert(id), "request ids repeat");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_supplied_request_id_is_not_trusted() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.client.get(app.url("/healthz")).header("x-request-id", "forged").send().await.unwrap();

    assert_ne!(response.headers()["x-request-id"], "forged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_page_is_served_over_https() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.client.get(app.url("/")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("<title>Confidant</title>"));
}
