//! The API contract: schemathesis (pinned, installed by scripts/schemathesis) reads the OpenAPI
//! document the server serves and generates requests from it: valid ones, ones breaking each rule
//! of the document, unknown methods, missing credentials, and sequences that follow the ids one
//! answer gives to the next request. Every check it has runs on every answer: status documented,
//! body and headers matching their schema, valid data accepted, invalid data refused, 405 with
//! `Allow`, no 5xx. Once without a token, once as a clinician and once as an owner (both with
//! TOTP proved), against the real server. A failure prints schemathesis's report, which names
//! the operation, the check and a `curl` command that reproduces it.
//!
//! It runs on SQLite only: the contract is the HTTP layer's, the same on either backend, and the
//! storage tests run both.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::signin::{owner, patient_record, staff};

/// Test cases per operation and phase: enough to reach each rule of every body, few enough that
/// the three runs take about two minutes on two cores.
const MAX_EXAMPLES: &str = "25";

/// The `st` command of scripts/schemathesis; the test fails (never skips) without it.
fn schemathesis() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/schemathesis")).output().unwrap();
    assert!(out.status.success(), "scripts/schemathesis failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs schemathesis against `app`, with `token` as the bearer token when given and without the
/// operations under `excluded` paths; panics with its report unless every check passed.
fn run(st: &str, app: &TestApp, who: &str, token: Option<&str>, excluded: &[&str]) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let mut command = Command::new(st);
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES, "--workers", "2"])
        // The server's own development certificate, verified as any client would.
        .arg("--tls-verify")
        .arg(app.dev_cert())
        // Each run starts afresh: no examples remembered from an earlier one, nothing written
        // outside the test's data directory.
        .args(["--generation-database", "none", "--no-color"])
        .current_dir(app.data_dir.path())
        .env("HOME", app.data_dir.path());
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    for path in excluded {
        command.args(["--exclude-path", path]);
    }
    let started = Instant::now();
    let out = command.output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("schemathesis as {who}: {:.1?}", started.elapsed());
    assert!(out.status.success(), "schemathesis found failures as {who}:\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_the_contract_of_its_openapi_document() {
    let st = schemathesis();
    let app = spawn_app(Backend::Sqlite).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "clinician@practice.example").await;
    patient_record(&app, &clinician, "Ada Lovelace").await;

    run(&st, &app, "anonymous", None, &[]);
    // Signing out would end the session the rest of the run uses: the anonymous run covers these
    // two routes, and tests/api/identity.rs covers them signed in. The clinician goes before the
    // owner, whose run disables the accounts it finds.
    let sign_out = ["/api/v1/sign-out", "/api/v1/sign-out-everywhere"];
    run(&st, &app, "clinician", Some(&clinician.session.access), &sign_out);
    run(&st, &app, "owner", Some(&owner.session.access), &sign_out);
}
