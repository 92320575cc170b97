//! `Idempotency-Key` (docs/API.md, "Retrying a write"): a write retried with its key gets the
//! first answer, even across a node's restart, and is not done twice; the key used with another
//! request is refused and changes nothing; a failed write keeps nothing, so its retry runs again;
//! one account's key is not another's; a replay is on record as a read of the patient's PHI; the
//! kept answer is sealed at rest. Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use crate::on_both_backends;
use crate::signin::{Person, owner, patient_record, staff};

on_both_backends!(
    a_retried_booking_gets_the_first_answer_and_books_once,
    a_failed_write_keeps_nothing_so_its_retry_runs_again,
    an_answer_outlives_the_node_that_gave_it,
    a_kept_answer_is_sealed_at_rest_and_its_replay_is_on_record,
);

/// What a keyed write got back.
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn keyed(app: &TestApp, who: &Person, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
    let mut request =
        app.client.request(method, app.url(path)).bearer_auth(&who.session.access).header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    Answer { status, replayed, body }
}

fn booking(clinician: &str, patient: &str, start: i64) -> Value {
    json!({ "clinician_id": clinician, "patient_id": patient, "starts_at_ms": start, "ends_at_ms": start + 3_000_000 })
}

const TEN_AM: i64 = 1_900_000_000_000;

/// The booked appointments on the clinician's schedule, from the clinician's own snapshot.
async fn appointments(app: &TestApp, clinician: &Person) -> Vec<Value> {
    let mut socket = crate::wsclient::signed_in(app, &clinician.session.access).await;
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": "mine" })).await;
    let snapshot = socket.frame().await;
    assert_eq!(snapshot["type"], "schedule.snapshot", "{snapshot}");
    let all = snapshot["appointments"].as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|a| a["status"] == "booked").collect()
}

struct Practice {
    desk: Person,
    other_desk: Person,
    clinician: Person,
    patient: String,
}

async fn practice(app: &TestApp) -> Practice {
    let owner = owner(app).await;
    let desk = staff(app, &owner, "front_desk", "desk@practice.example").await;
    let other_desk = staff(app, &owner, "front_desk", "desk2@practice.example").await;
    let clinician = staff(app, &owner, "clinician", "dr.a@practice.example").await;
    let patient = patient_record(app, &desk, "Ada Lovelace").await;
    Practice { desk, other_desk, clinician, patient }
}

async fn a_retried_booking_gets_the_first_answer_and_books_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let Practice { desk, other_desk, clinician, patient } = practice(&app).await;
    let dr = clinician.session.user_id.clone();
    let key = "8e03978e-40d5-43e8-bc93-6894a57f9324";

    let first =
        keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!first.replayed);

    // The retry (bare or in the draft's quotes: the same key) gets the same answer, marked.
    for sent in [key.to_owned(), format!("\"{key}\"")] {
        let retry =
            keyed(&app, &desk, Method::POST, "/api/v1/appointments", &sent, Some(booking(&dr, &patient, TEN_AM))).await;
        assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
        assert!(retry.replayed, "a replay says so");
        assert_eq!(retry.body, first.body, "the first answer, not a new booking");
    }
    assert_eq!(appointments(&app, &clinician).await.len(), 1, "booked once");

    // The key with another request is refused, and books nothing.
    let later = booking(&dr, &patient, TEN_AM + 86_400_000);
    let reused = keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(later.clone())).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reused.body);
    assert_eq!(reused.body["code"], "idempotency_key_reused");
    assert!(reused.body["request_id"].is_string());
    assert_eq!(appointments(&app, &clinician).await.len(), 1);

    // Another account's identical key is its own: its write runs (and meets the booking).
    let theirs =
        keyed(&app, &other_desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(theirs.status, StatusCode::CONFLICT, "{}", theirs.body);
    assert!(!theirs.replayed, "never another account's answer");

    // A malformed key is refused before anything is written.
    for bad in ["has space", "\"", "a\"b", &"k".repeat(256)] {
        let refused = keyed(&app, &desk, Method::POST, "/api/v1/appointments", bad, Some(later.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", refused.body);
        assert_eq!(refused.body["code"], "invalid_idempotency_key");
    }
    assert_eq!(appointments(&app, &clinician).await.len(), 1);

    // Writes without a key behave as before; a key on a read is ignored.
    let (status, _) = desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(later.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(later)).await;
    assert_eq!(status, StatusCode::CONFLICT, "without a key, a retry is a second booking");
    let read = keyed(&app, &desk, Method::GET, &format!("/api/v1/patients/{patient}"), key, None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(!read.replayed);
}

async fn a_failed_write_keeps_nothing_so_its_retry_runs_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let Practice { desk, clinician, patient, .. } = practice(&app).await;
    let dr = clinician.session.user_id.clone();
    let (status, blocking) =
        desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(status, StatusCode::CREATED);

    let key = "retry-after-a-conflict";
    let refused =
        keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["code"], "conflict");

    // The slot frees up; the same retry now books, for real.
    let cancel = format!("/api/v1/appointments/{}/cancel", blocking["id"].as_str().unwrap());
    assert_eq!(desk.session.call(&app, Method::POST, &cancel, None).await.0, StatusCode::OK);
    let retry =
        keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert!(!retry.replayed, "nothing was kept of the refusal");
    assert_eq!(appointments(&app, &clinician).await.len(), 1);
}

/// Issue 27, item 15: SIGTERM while a booking waited; the booking committed but the client had
/// no answer, and its retry was refused as a double booking. Now the retry, to the restarted
/// node, gets the answer the booking had.
async fn an_answer_outlives_the_node_that_gave_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let Practice { desk, clinician, patient, .. } = practice(&app).await;
    let dr = clinician.session.user_id.clone();
    let key = "booking-before-the-restart";
    let lost =
        keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(lost.status, StatusCode::CREATED);

    let (status, options) = app.into_parts_after("TERM");
    assert_eq!(status.code(), Some(0));
    let app = spawn_app_with(backend, options).await;

    let retry =
        keyed(&app, &desk, Method::POST, "/api/v1/appointments", key, Some(booking(&dr, &patient, TEN_AM))).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert!(retry.replayed);
    assert_eq!(retry.body, lost.body);
    assert_eq!(appointments(&app, &clinician).await.len(), 1);
}

async fn a_kept_answer_is_sealed_at_rest_and_its_replay_is_on_record(backend: Backend) {
    let app = spawn_app(backend).await;
    let Practice { clinician, patient, .. } = practice(&app).await;
    // A break-glass grant: its answer names who may now read which patient's record.
    let canary = "canary-7f3c patient in crisis at the front desk";
    let glass = format!("/api/v1/patients/{patient}/break-glass");
    let key = "break-glass-once";
    let granted = keyed(&app, &clinician, Method::POST, &glass, key, Some(json!({ "reason": canary }))).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.body);

    let before = app.audit_entries().len();
    let replay = keyed(&app, &clinician, Method::POST, &glass, key, Some(json!({ "reason": canary }))).await;
    assert!(replay.replayed);
    assert_eq!(replay.body, granted.body, "opened whole");
    let replays: Vec<Value> =
        app.audit_entries().into_iter().skip(before).filter(|e| e["reason"] == "idempotent_replay").collect();
    assert_eq!(replays.len(), 1, "one read on record per replay: {replays:?}");
    assert_eq!(replays[0]["action"], "read");
    assert_eq!(replays[0]["patient_id"], patient.as_str(), "names whose PHI it handed over");
    assert_eq!(replays[0]["actor_user_id"], clinician.session.user_id.as_str());
    assert_eq!(replays[0]["resource_type"], "idempotent_answer");

    // Nothing readable of it in the database.
    let (status, options) = app.into_parts_after("TERM");
    assert_eq!(status.code(), Some(0));
    let dump = match backend {
        Backend::Sqlite => {
            let dir = options.data_dir.as_ref().unwrap().path();
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with("confidant.db") {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            bytes
        }
        Backend::Postgres => {
            let url = options.databases.as_ref().unwrap().0.url();
            let output = std::process::Command::new("pg_dump").arg(&url).output().expect("pg_dump must be installed");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            output.stdout
        }
    };
    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains("idempotent_answers"), "the dump holds the table");
    let answer = serde_json::to_string(&granted.body).unwrap();
    let fragment = format!("\"grant_id\":\"{}\"", granted.body["grant_id"].as_str().unwrap());
    assert!(answer.contains(&fragment), "{answer}");
    assert!(!text.contains(&fragment), "a kept answer is sealed like every PHI column");
    assert!(!text.contains("canary-7f3c"));
}
