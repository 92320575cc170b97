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
