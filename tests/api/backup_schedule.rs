//! Scheduled backups (issue 30, item 4), on both backends with a one-second interval: backups
//! appear in the directory, retention prunes the ones it lets go (and never a file the schedule
//! did not name), each backup, pruning and failure is audited, `/readyz` shows the last success
//! and failure, and a failure (the directory became unwritable) alerts the owners once. With
//! two nodes on one PostgreSQL, one takes each backup.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::on_both_backends;
use crate::signin::owner;

on_both_backends!(scheduled_backups_are_taken_pruned_audited_and_a_failure_alerts_the_owners,);

/// Scheduled backups of another era, named as the schedule names them.
const OLD: [&str; 3] = [
    "confidant-20200110T023000.000Z.backup",
    "confidant-20200120T023000.000Z.backup",
    "confidant-20200205T023000.000Z.backup",
];
const NOT_OURS: &str = "before-the-move.backup";

pub(crate) fn schedule_env(directory: &Path, recipient: &str, interval_secs: u64) -> Vec<(&'static str, String)> {
    vec![
        ("CONFIDANT_BACKUP__SCHEDULE", "interval".to_owned()),
        ("CONFIDANT_BACKUP__INTERVAL_SECS", interval_secs.to_string()),
        ("CONFIDANT_BACKUP__DIRECTORY", directory.display().to_string()),
        ("CONFIDANT_BACKUP__RECIPIENTS", format!("[\"{recipient}\"]")),
        ("CONFIDANT_BACKUP__KEEP_DAILY", "2".to_owned()),
        ("CONFIDANT_BACKUP__KEEP_WEEKLY", "0".to_owned()),
        ("CONFIDANT_BACKUP__KEEP_MONTHLY", "3".to_owned()),
    ]
}

fn backups_in(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

async fn readyz_backups(app: &TestApp) -> Value {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a backup never makes a node unready");
    let body: Value = response.json().await.unwrap();
    body["checks"]["backups"].clone()
}

/// Waits (up to 60 s) until `done` holds of `/readyz`'s backups.
async fn until_readyz(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let backups = readyz_backups(app).await;
        if done(&backups) {
            return backups;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: {backups}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scheduled_backups_are_taken_pruned_audited_and_a_failure_alerts_the_owners(backend: Backend) {
    let work = tempfile::tempdir().unwrap();
    let directory = work.path().join("backups");
    std::fs::create_dir(&directory).unwrap();
    for name in OLD.iter().chain([&NOT_OURS]) {
        std::fs::write(directory.join(name), b"an older backup").unwrap();
    }
    let key = crate::backup::age_key(work.path());
    let env = schedule_env(&directory, &key.recipient, 1);
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await;
    let owner = owner(&app).await;

    // Backups appear; retention keeps the newest of today and of the day before that has one
    // (5 February 2020), and of three months (December, February and January 2020).
    let first = until_readyz(&app, "a scheduled backup succeeds", |b| b["last_success_at_ms"].is_i64()).await;
    assert_eq!(first["schedule"], "every 1 s");
    assert_eq!(first["failing"], false);
    assert!(first["last_success_bytes"].as_i64().unwrap() > 0);
    let started = Instant::now();
    let pruned = loop {
        let names = backups_in(&directory);
        let today: Vec<&String> =
            names.iter().filter(|n| n.starts_with("confidant-2") && !OLD.contains(&n.as_str())).collect();
        let settled =
            !names.iter().any(|n| n == OLD[0]) && today.iter().filter(|n| n.ends_with(".backup")).count() == 1;
        if settled && app.audit_entries().iter().filter(|e| e["reason"] == "backup_scheduled").count() >= 2 {
            break names;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "retention never pruned: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for kept in [OLD[1], OLD[2], NOT_OURS] {
        assert!(pruned.iter().any(|n| n == kept), "{kept} was kept: {pruned:?}");
    }
    let entries = app.audit_entries();
    let taken: Vec<&Value> = entries.iter().filter(|e| e["reason"] == "backup_scheduled").collect();
    assert!(
        taken.iter().all(|e| e["action"] == "export" && e["outcome"] == "success" && e["resource_type"] == "server")
    );
    let deleted: Vec<&Value> = entries.iter().filter(|e| e["reason"] == "backup_pruned").collect();
    assert!(!deleted.is_empty() && deleted.iter().all(|e| e["action"] == "delete" && e["outcome"] == "success"));

    // The directory becomes unwritable (a file where it was): the next backup fails, audited,
    // shown in /readyz (the last success too), and the owners are alerted once for the run.
    std::fs::rename(&directory, work.path().join("moved-away")).unwrap();
    std::fs::write(&directory, b"not a directory").unwrap();
    let failing = until_readyz(&app, "a failed backup is shown", |b| b["failing"] == true).await;
    assert_eq!(failing["last_failure"], "file");
    assert!(failing["last_failure_at_ms"].as_i64().unwrap() > failing["last_success_at_ms"].as_i64().unwrap());
    let started = Instant::now();
    loop {
        let failures =
            app.audit_entries().into_iter().filter(|e| e["reason"] == "backup_failed_file").collect::<Vec<_>>();
        if failures.len() >= 2 {
            assert!(failures.iter().all(|e| e["action"] == "export" && e["outcome"] == "error"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "failures were not audited");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, alerts) = owner.session.get(&app, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let raised: Vec<&Value> = alerts.as_array().unwrap().iter().filter(|a| a["kind"] == "backup_failed").collect();
    assert_eq!(raised.len(), 1, "one alert for the run of failures: {alerts}");
    assert!(raised[0].get("patient_id").is_none() && raised[0]["urgent"] == false);
    let path = format!("/api/v1/alerts/{}/ack", raised[0]["alert_id"].as_str().unwrap());
    let (status, body) = owner.session.call(&app, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "an owner acknowledges it: {body}");

    // Writable again: the next backup succeeds and /readyz says so.
    std::fs::remove_file(&directory).unwrap();
    std::fs::create_dir(&directory).unwrap();
    until_readyz(&app, "backups succeed again", |b| b["failing"] == false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql_take_each_scheduled_backup_once() {
    let work = tempfile::tempdir().unwrap();
    let directory = work.path().join("backups");
    std::fs::create_dir(&directory).unwrap();
    let key = crate::backup::age_key(work.path());
    let env = schedule_env(&directory, &key.recipient, 2);
    let first = spawn_app_with(Backend::Postgres, Options { env: env.clone(), ..Options::default() }).await;
    let shared = (first.main_db.as_ref().unwrap().url(), first.audit_db.as_ref().unwrap().url());
    let second =
        spawn_app_with(Backend::Postgres, Options { env, shared_databases: Some(shared), ..Options::default() }).await;

    tokio::time::sleep(Duration::from_secs(9)).await;

    let entries = first.audit_entries();
    let mut taken: Vec<(i64, String)> = entries
        .iter()
        .filter(|e| e["reason"] == "backup_scheduled")
        .map(|e| (e["at_ms"].as_i64().unwrap(), e["node_id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    taken.sort();
    assert!(taken.len() >= 3, "a backup every 2 s: {taken:?}");
    for pair in taken.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= 1000, "two backups in one interval: {taken:?}");
    }
    drop(second);
}
