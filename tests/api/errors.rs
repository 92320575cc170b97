//! The error contract: JSON `{"error", "code", "request_id"}` and nothing more, whatever failed.

use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

/// Asserts the standard error shape and returns the body.
async fn error_body(response: reqwest::Response) -> Value {
    let header_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "error", "request_id"], "{body}");
    assert_eq!(body["request_id"], header_id.as_str());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_gets_a_json_404() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.client.get(app.url("/api/v1/nothing-here")).send().await.unwrap();

    assert_eq!(response.status(), 404);
    assert_eq!(error_body(response).await["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_path_asked_with_another_method_gets_405_with_allow() {
    let app = spawn_app(Backend::Sqlite).await;
    let cases = [
        ("DELETE", "/api/v1/patients", "POST, GET"),
        ("PATCH", "/api/v1/patients/6a0c1b1e-0a7e-4c1e-9d43-6f3c2b0c5a11", "GET, PUT"),
        ("POST", "/healthz", "GET"),
        ("OPTIONS", "/api/v1/me", "GET"),
        ("PUT", "/ws", "GET"),
        ("POST", "/", "GET"),
    ];

    for (method, path, allowed) in cases {
        let response = app.client.request(method.parse().unwrap(), app.url(path)).send().await.unwrap();

        assert_eq!(response.status(), 405, "{method} {path}");
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        let mut allow: Vec<&str> = allow.split(", ").collect();
        let mut expected: Vec<&str> = allowed.split(", ").collect();
        allow.sort_unstable();
        expected.sort_unstable();
        assert_eq!(allow, expected, "{method} {path}");
        assert_eq!(error_body(response).await["code"], "method_not_allowed");
    }
    let unknown = app.client.delete(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404, "a path nothing serves stays 404 whatever the method");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let too_big = vec![b'x'; 1024 * 1024 + 1];

    let response = app.client.post(app.url("/healthz")).body(too_big).send().await.unwrap();

    assert_eq!(response.status(), 413);
    assert_eq!(error_body(response).await["code"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_at_the_limit_is_not_refused_for_its_size() {
    let app = spawn_app(Backend::Sqlite).await;
    let at_limit = vec![b'x'; 1024 * 1024];

    let response = app.client.post(app.url("/healthz")).body(at_limit).send().await.unwrap();

    assert_ne!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_strings_are_not_logged() {
    let app = spawn_app(Backend::Sqlite).await;

    app.client.get(app.url("/healthz?patient=Jane+Doe")).send().await.unwrap();
    app.client.get(app.url("/no-such?email=jane@example.org")).send().await.unwrap();

    // The access log line is written as the response goes out: wait for both to reach the log.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = app.logs().join("\n");
        if logs.matches("request served").count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(logs.matches("request served").count() >= 2, "the request log lines are missing");
    assert!(!logs.contains("Jane") && !logs.contains("jane@example.org"), "{logs}");
}
