//! Every read of PHI leaves an audit record: the test walks every `GET` route of the OpenAPI
//! document (each is either listed here as returning a patient's PHI, with who reads it, or as
//! carrying none) and the socket frames that carry PHI (a schedule snapshot, a live schedule
//! push to each recipient, the alerts replayed on connect), and finds a `read` naming the
//! patient and the reader for each. A route added later fails this test until it is classified.
//! (A device's conversation list and its replay on attach: `messaging.rs`; an attachment's
//! download, ciphertext recorded as a read all the same: `attachments.rs`.) Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::signin::{Person, owner, patient, patient_record, staff};
use crate::wsclient::signed_in;

/// `GET` routes that carry no patient's PHI (the caller's own account, staff, the API itself).
const NO_PHI: [&str; 11] = [
    "/api/v1/note-templates",
    "/api/v1/supervisions",
    "/api/v1/audit/status",
    "/api/v1/browser/session",
    "/api/v1/devices",
    "/api/v1/me",
    "/api/v1/openapi.json",
    "/api/v1/staff",
    "/api/v1/users",
    "/api/v1/devices/{device_id}/conversations", // its reads: messaging.rs
    "/api/v1/attachments/{attachment_id}",       // ciphertext; its reads: attachments.rs
];

/// The next frame of type `kind`, skipping others (alerts replayed on connect, say).
async fn next_of(socket: &mut crate::wsclient::WsClient, kind: &str) -> Value {
    for _ in 0..20 {
        let frame = socket.frame().await;
        if frame["type"] == kind {
            return frame;
        }
    }
    panic!("no {kind} frame");
}

/// The reads of `patient` by `reader` recorded after the first `skip` entries.
fn reads_after(app: &TestApp, skip: usize, patient: &str, reader: &Person) -> Vec<Value> {
    app.audit_entries()
        .into_iter()
        .skip(skip)
        .filter(|e| e["action"] == "read" && e["patient_id"] == patient && e["actor_user_id"] == reader.session.user_id)
        .collect()
}

async fn every_route_and_frame_that_returns_phi_leaves_a_read_on_record(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let other = staff(&app, &owner, "clinician", "dr.b@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = patient(&app, &desk, &record, "ada@mail.example").await;
    let body = json!({ "clinician_id": clinician.session.user_id, "patient_id": record,
        "starts_at_ms": 1_900_000_000_000i64, "ends_at_ms": 1_900_003_000_000i64 });
    let (status, appointment) = desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{appointment}");
    let appointment = appointment["id"].as_str().unwrap().to_owned();
    let forms = format!("/api/v1/patients/{record}/intake-forms");
    let (status, assigned) = clinician.session.call(&app, Method::POST, &forms, Some(json!({ "form": "phq9" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    let assignment = assigned["assignment_id"].as_str().unwrap().to_owned();
    let answers: serde_json::Map<String, Value> = (1..=9).map(|n| (format!("item{n}"), json!(1))).collect();
    let mut laptop = signed_in(&app, &ada.session.access).await;
    let submit =
        json!({ "v": 1, "type": "intake.submit", "id": "s1", "assignment_id": assignment, "answers": answers });
    laptop.send(submit).await;
    assert_eq!(laptop.frame().await["type"], "ack");
    let reason = json!({ "reason": "Patient called in crisis; the treating clinician is away today" });
    let path = format!("/api/v1/patients/{record}/break-glass");
    let (status, grant) = other.session.call(&app, Method::POST, &path, Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");

    // A note by the clinician, who is supervised by the other: signed, it waits in the other's
    // co-sign queue.
    let path = format!("/api/v1/users/{}/supervisor", clinician.session.user_id);
    let supervisor = json!({ "supervisor_id": other.session.user_id });
    let (status, body) = owner.session.call(&app, Method::PUT, &path, Some(supervisor)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let notes = format!("/api/v1/patients/{record}/notes");
    let (status, note) =
        clinician.session.call(&app, Method::POST, &notes, Some(json!({ "template_key": "soap" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let note = note["note_id"].as_str().unwrap().to_owned();
    let fields = json!({ "subjective": "Sleeping better.", "objective": "Calm.", "assessment": "Improving.", "plan": "Weekly." });
    let draft = format!("/api/v1/notes/{note}/draft");
    let (status, body) = clinician.session.call(&app, Method::PUT, &draft, Some(json!({ "fields": fields }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let code = clinician.totp.as_ref().unwrap().fresh_code().await;
    let sign = format!("/api/v1/notes/{note}/sign");
    let (status, body) = clinician.session.call(&app, Method::POST, &sign, Some(json!({ "totp_code": code }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each route that returns PHI, with a reader allowed to call it.
    let phi: Vec<(&str, String, &Person)> = vec![
        ("/api/v1/patients/{patient_id}/notes", notes.clone(), &clinician),
        ("/api/v1/notes/{note_id}", format!("/api/v1/notes/{note}"), &clinician),
        ("/api/v1/notes/{note_id}/pdf", format!("/api/v1/notes/{note}/pdf"), &clinician),
        ("/api/v1/cosign-queue", "/api/v1/cosign-queue".into(), &other),
        (
            "/api/v1/patients/{patient_id}/screening-series",
            format!("/api/v1/patients/{record}/screening-series"),
            &clinician,
        ),
        ("/api/v1/patients/{patient_id}/participants", format!("/api/v1/patients/{record}/participants"), &clinician),
        ("/api/v1/patients", "/api/v1/patients".into(), &desk),
        ("/api/v1/patients/{patient_id}", format!("/api/v1/patients/{record}"), &clinician),
        ("/api/v1/patients/{patient_id}/care-team", format!("/api/v1/patients/{record}/care-team"), &desk),
        ("/api/v1/patients/{patient_id}/intake-forms", forms.clone(), &clinician),
        ("/api/v1/intake-forms/{assignment_id}", format!("/api/v1/intake-forms/{assignment}"), &clinician),
        ("/api/v1/patients/{patient_id}/alerts", format!("/api/v1/patients/{record}/alerts"), &clinician),
        ("/api/v1/alerts", "/api/v1/alerts".into(), &owner),
        ("/api/v1/break-glass", "/api/v1/break-glass".into(), &owner),
        (
            "/api/v1/appointments/{appointment_id}/reminders",
            format!("/api/v1/appointments/{appointment}/reminders"),
            &desk,
        ),
        (
            "/api/v1/patients/{patient_id}/reminder-preferences",
            format!("/api/v1/patients/{record}/reminder-preferences"),
            &ada,
        ),
    ];

    // Every GET route is classified.
    let (status, document) = owner.session.get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for (route, operations) in document["paths"].as_object().unwrap() {
        if operations.get("get").is_none() || NO_PHI.contains(&route.as_str()) {
            continue;
        }
        assert!(phi.iter().any(|(r, _, _)| r == route), "{route} is not classified: does it return PHI?");
    }

    for (route, path, reader) in &phi {
        let before = app.audit_entries().len();
        let (status, answer) = reader.session.get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{route}: {answer}");
        assert!(
            !reads_after(&app, before, &record, reader).is_empty(),
            "{route} left no read of the patient on record"
        );
    }

    // Socket frames: a schedule snapshot, a live push to each recipient, the alerts replayed.
    let before = app.audit_entries().len();
    let mut watching = signed_in(&app, &clinician.session.access).await;
    watching.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": "mine" })).await;
    next_of(&mut watching, "schedule.snapshot").await;
    assert!(!reads_after(&app, before, &record, &clinician).is_empty(), "a schedule snapshot");

    let before = app.audit_entries().len();
    let moved = json!({ "starts_at_ms": 1_900_010_000_000i64, "ends_at_ms": 1_900_013_000_000i64 });
    let path = format!("/api/v1/appointments/{appointment}");
    assert_eq!(desk.session.call(&app, Method::PUT, &path, Some(moved)).await.0, StatusCode::OK);
    next_of(&mut watching, "schedule.changed").await;
    let pushed = reads_after(&app, before, &record, &clinician);
    assert!(pushed.iter().any(|e| e["reason"] == "live_push"), "a live push to its recipient: {pushed:?}");

    let before = app.audit_entries().len();
    let mut alerted = signed_in(&app, &owner.session.access).await;
    next_of(&mut alerted, "alert").await; // the break-glass alert, replayed on connect
    assert!(!reads_after(&app, before, &record, &owner).is_empty(), "alerts replayed on connect");
}

crate::on_both_backends!(every_route_and_frame_that_returns_phi_leaves_a_read_on_record);
