//! SIGTERM and SIGINT stop the node gracefully: it finishes, records a clean stop and exits 0.
//! A kill is noticed at the next start.

use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(sigterm_stops_cleanly_with_exit_code_0, a_killed_node_is_reported_at_the_next_start);

async fn sigterm_stops_cleanly_with_exit_code_0(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);

    let (status, options) = app.into_parts_after("TERM");
    assert_eq!(status.code(), Some(0));

    let restarted = spawn_app_with(backend, options).await;
    assert!(!restarted.logs().iter().any(|l| l.contains("did not stop cleanly")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_with_exit_code_0() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let status = app.stop_with("INT");
    assert_eq!(status.code(), Some(0));
    assert!(app.logs().iter().any(|l| l.contains("\"stopped\"")), "{:?}", app.logs());
}

async fn a_killed_node_is_reported_at_the_next_start(backend: Backend) {
    let app = spawn_app(backend).await;

    let (status, options) = app.into_parts_after("KILL");
    assert_eq!(status.code(), None, "SIGKILL leaves no exit code");

    let restarted = spawn_app_with(backend, options).await;
    assert!(restarted.logs().iter().any(|l| l.contains("did not stop cleanly")), "{:?}", restarted.logs());
}
