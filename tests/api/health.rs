//! Liveness and readiness.

use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};
use crate::on_both_backends;
use serde_json::{Value, json};

on_both_backends!(readiness_reports_every_configured_dependency_up, readiness_names_a_redis_that_is_down);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_answers_ok() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "status": "ok" }));
}

async fn readiness_reports_every_configured_dependency_up(backend: Backend) {
    let redis = ("CONFIDANT_REDIS_URL", "redis://127.0.0.1:6379".to_owned());
    let app = spawn_app_with(backend, Options { env: vec![redis], ..Options::default() }).await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"], json!({ "database": "up", "audit_database": "up", "redis": "up" }));
}

async fn readiness_names_a_redis_that_is_down(backend: Backend) {
    // Nothing listens on port 1: the node starts, but is not ready.
    let redis = ("CONFIDANT_REDIS_URL", "redis://127.0.0.1:1".to_owned());
    let app = spawn_app_with(backend, Options { env: vec![redis], ..Options::default() }).await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["error"], "not ready: redis down");
    assert_eq!(body["checks"], json!({ "database": "up", "audit_database": "up", "redis": "down" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_configured_readiness_does_not_need_it() {
    let app = spawn_app(Backend::Sqlite).await;

    let body: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();

    assert_eq!(body["checks"]["redis"], "not_configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_an_audit_database_that_went_away() {
    let app = spawn_app(Backend::Postgres).await;
    app.audit_db.as_ref().unwrap().drop_now().await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"], json!({ "database": "up", "audit_database": "down", "redis": "not_configured" }));
    // The driver's error text (database names, SQLSTATEs) stays in the log.
    assert!(!body.to_string().contains("confidant_test"), "{body}");
}
