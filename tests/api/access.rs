//! Every role against every endpoint, checked against the permission matrix in
//! `src/access/matrix.rs` (and so against the table in docs/SECURITY.md); plus the care-team
//! boundary and break-glass. Both backends.

use confidant::access::matrix::{Operation, Resource, Scope, scope};
use confidant_actors::audit::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::signin::{Person, owner, patient, patient_record, staff};

/// What an endpoint acts on, relative to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// No matrix check (every signed-in account).
    Nothing,
    /// A list or a creation.
    Any,
    /// Patient 1: on clinician A's care team; the patient account is theirs.
    CarePatient,
    /// Another account.
    OtherAccount,
    /// An alert sent to the practice's owners (a break-glass grant on patient 1).
    OwnersAlert,
    /// A conversation's attachment: only accounts with a device in the conversation reach it
    /// (404 for anyone else, before the matrix's message cell), as tests/api/attachments.rs
    /// shows; there is no conversation to walk here.
    Membership,
    /// A signature (a note, an addendum, a co-signature): each call takes a fresh TOTP code, so
    /// it is not walked here; tests/api/notes.rs walks every role against it.
    StepUp,
}

/// Method, path, the matrix cell it needs, and what it acts on. `{p1}`, `{p2}`, `{staff}`
/// and `{victim}` are filled in by the test.
pub type Endpoint = (&'static str, &'static str, Option<(Resource, Operation)>, On);

/// Every `/api/v1` and `/oauth` route (the OpenAPI test compares this list with the document).
pub const ENDPOINTS: &[Endpoint] = &[
    ("POST", "/oauth/authorize", None, On::Nothing),
    ("POST", "/oauth/authorize/mfa", None, On::Nothing),
    ("POST", "/oauth/token", None, On::Nothing),
    ("POST", "/oauth/revoke", None, On::Nothing),
    ("POST", "/api/v1/invitations/accept", None, On::Nothing),
    ("GET", "/api/v1/me", None, On::Nothing),
    ("POST", "/api/v1/me/totp", None, On::Nothing),
    ("POST", "/api/v1/me/totp/confirm", None, On::Nothing),
    ("POST", "/api/v1/me/totp/verify", None, On::Nothing),
    ("POST", "/api/v1/sign-out", None, On::Nothing),
    ("POST", "/api/v1/sign-out-everywhere", None, On::Nothing),
    // Every role reads at least its own account (staff_account or patient_account R own).
    ("GET", "/api/v1/users", None, On::Nothing),
    ("POST", "/api/v1/users/invitations", Some((Resource::StaffAccount, Operation::Create)), On::Any),
    ("POST", "/api/v1/users/{user_id}/disable", Some((Resource::StaffAccount, Operation::Update)), On::OtherAccount),
    ("PUT", "/api/v1/users/{user_id}/name", Some((Resource::StaffAccount, Operation::Update)), On::OtherAccount),
    ("GET", "/api/v1/staff", Some((Resource::StaffDirectory, Operation::Read)), On::Any),
    ("GET", "/api/v1/audit/status", Some((Resource::AuditLog, Operation::Read)), On::Any),
    ("POST", "/api/v1/audit/verify", Some((Resource::AuditLog, Operation::Read)), On::Any),
    // The portal's sign-in (a cookie instead of a token) and the session behind a cookie or token.
    ("POST", "/api/v1/browser/sign-in", None, On::Nothing),
    ("POST", "/api/v1/browser/sign-in/mfa", None, On::Nothing),
    ("GET", "/api/v1/browser/session", None, On::Nothing),
    ("POST", "/api/v1/patients", Some((Resource::PatientDemographics, Operation::Create)), On::Any),
    ("GET", "/api/v1/patients", Some((Resource::PatientDemographics, Operation::Read)), On::Any),
    ("GET", "/api/v1/patients/{patient_id}", Some((Resource::PatientDemographics, Operation::Read)), On::CarePatient),
    ("PUT", "/api/v1/patients/{patient_id}", Some((Resource::PatientDemographics, Operation::Update)), On::CarePatient),
    ("GET", "/api/v1/patients/{patient_id}/care-team", Some((Resource::CareTeam, Operation::Read)), On::CarePatient),
    (
        "GET",
        "/api/v1/patients/{patient_id}/participants",
        Some((Resource::Message, Operation::Create)),
        On::CarePatient,
    ),
    (
        "PUT",
        "/api/v1/patients/{patient_id}/care-team/{clinician_id}",
        Some((Resource::CareTeam, Operation::Create)),
        On::CarePatient,
    ),
    (
        "DELETE",
        "/api/v1/patients/{patient_id}/care-team/{clinician_id}",
        Some((Resource::CareTeam, Operation::Delete)),
        On::CarePatient,
    ),
    ("POST", "/api/v1/appointments", Some((Resource::Appointment, Operation::Create)), On::CarePatient),
    ("PUT", "/api/v1/appointments/{appointment_id}", Some((Resource::Appointment, Operation::Update)), On::CarePatient),
    (
        "POST",
        "/api/v1/appointments/{appointment_id}/cancel",
        Some((Resource::Appointment, Operation::Delete)),
        On::CarePatient,
    ),
    (
        "POST",
        "/api/v1/patients/{patient_id}/intake-forms",
        Some((Resource::IntakeAssignment, Operation::Create)),
        On::CarePatient,
    ),
    (
        "GET",
        "/api/v1/patients/{patient_id}/intake-forms",
        Some((Resource::IntakeResponse, Operation::Read)),
        On::CarePatient,
    ),
    ("GET", "/api/v1/intake-forms/{assignment_id}", Some((Resource::IntakeResponse, Operation::Read)), On::CarePatient),
    (
        "GET",
        "/api/v1/patients/{patient_id}/reminder-preferences",
        Some((Resource::Reminder, Operation::Read)),
        On::CarePatient,
    ),
    (
        "PUT",
        "/api/v1/patients/{patient_id}/reminder-preferences",
        Some((Resource::Reminder, Operation::Update)),
        On::CarePatient,
    ),
    (
        "GET",
        "/api/v1/appointments/{appointment_id}/reminders",
        Some((Resource::Reminder, Operation::Read)),
        On::CarePatient,
    ),
    (
        "POST",
        "/api/v1/appointments/{appointment_id}/reminders",
        Some((Resource::Reminder, Operation::Create)),
        On::CarePatient,
    ),
    ("GET", "/api/v1/break-glass", Some((Resource::BreakGlassGrant, Operation::Read)), On::Any),
    (
        "POST",
        "/api/v1/patients/{patient_id}/break-glass",
        Some((Resource::BreakGlassGrant, Operation::Create)),
        On::Any,
    ),
    ("POST", "/api/v1/devices", Some((Resource::Device, Operation::Create)), On::Any),
    ("GET", "/api/v1/devices", Some((Resource::Device, Operation::Read)), On::Any),
    ("DELETE", "/api/v1/devices/{device_id}", Some((Resource::Device, Operation::Delete)), On::Any),
    ("POST", "/api/v1/devices/{device_id}/key-packages", Some((Resource::Device, Operation::Create)), On::Any),
    ("GET", "/api/v1/devices/{device_id}/conversations", Some((Resource::Device, Operation::Read)), On::Any),
    ("POST", "/api/v1/key-packages/claim", Some((Resource::Message, Operation::Create)), On::CarePatient),
    ("POST", "/api/v1/conversations", Some((Resource::Message, Operation::Create)), On::CarePatient),
    ("GET", "/api/v1/alerts", Some((Resource::Alert, Operation::Read)), On::Any),
    ("POST", "/api/v1/alerts/{alert_id}/ack", Some((Resource::Alert, Operation::Update)), On::OwnersAlert),
    ("POST", "/api/v1/alerts/{alert_id}/follow-up", Some((Resource::ClinicalNote, Operation::Create)), On::CarePatient),
    ("GET", "/api/v1/patients/{patient_id}/alerts", Some((Resource::ClinicalNote, Operation::Read)), On::CarePatient),
    ("POST", "/api/v1/conversations/{conversation_id}/attachments", None, On::Membership),
    ("GET", "/api/v1/attachments/{attachment_id}", None, On::Membership),
    (
        "GET",
        "/api/v1/patients/{patient_id}/screening-series",
        Some((Resource::IntakeResponse, Operation::Read)),
        On::CarePatient,
    ),
    ("GET", "/api/v1/note-templates", Some((Resource::NoteTemplate, Operation::Read)), On::Any),
    ("POST", "/api/v1/note-templates", Some((Resource::NoteTemplate, Operation::Create)), On::Any),
    ("GET", "/api/v1/patients/{patient_id}/notes", Some((Resource::NoteSummary, Operation::Read)), On::CarePatient),
    ("POST", "/api/v1/patients/{patient_id}/notes", Some((Resource::ClinicalNote, Operation::Create)), On::CarePatient),
    // Clinician A's own draft: the author reads and saves it.
    ("GET", "/api/v1/notes/{note_id}", Some((Resource::ClinicalNote, Operation::Read)), On::CarePatient),
    // Its PDF: a draft is refused (409) after the read check, as the matrix decides the caller.
    ("GET", "/api/v1/notes/{note_id}/pdf", Some((Resource::ClinicalNote, Operation::Read)), On::CarePatient),
    ("PUT", "/api/v1/notes/{note_id}/draft", Some((Resource::ClinicalNote, Operation::Update)), On::CarePatient),
    ("POST", "/api/v1/notes/{note_id}/sign", None, On::StepUp),
    ("POST", "/api/v1/notes/{note_id}/addenda", None, On::StepUp),
    ("POST", "/api/v1/notes/{note_id}/cosign", None, On::StepUp),
    ("GET", "/api/v1/cosign-queue", Some((Resource::Supervision, Operation::Read)), On::Any),
    ("PUT", "/api/v1/users/{user_id}/supervisor", Some((Resource::Supervision, Operation::Update)), On::OtherAccount),
    ("GET", "/api/v1/supervisions", Some((Resource::Supervision, Operation::Read)), On::Any),
];

/// Routes that also serve a staff conversation (`"kind": "staff"`, no patient), with the
/// matrix cell that decides them then; the body is the staff variant of [`ENDPOINTS`]' one.
pub const STAFF_ENDPOINTS: &[(&str, &str, Resource, Operation)] = &[
    ("POST", "/api/v1/key-packages/claim", Resource::StaffMessage, Operation::Create),
    ("POST", "/api/v1/conversations", Resource::StaffMessage, Operation::Create),
];

fn staff_body_for(practice: &Practice, path: &str) -> Value {
    match path {
        "/api/v1/key-packages/claim" => json!({ "user_id": practice.clinician_a, "kind": "staff" }),
        _ => json!({ "device_id": uuid::Uuid::new_v4(), "kind": "staff", "group_info": "", "ratchet_tree": "" }),
    }
}

/// Whether the matrix lets `role` through for `on` (every caller here proved TOTP).
fn allowed(role: Role, resource: Resource, operation: Operation, on: On) -> bool {
    match (scope(role, resource, operation), on) {
        (Scope::None, _) => false,
        (Scope::Practice, _) | (_, On::Any | On::Nothing) => true,
        (Scope::Own, On::CarePatient) => role == Role::Patient,
        (Scope::CareTeam, On::CarePatient) => role == Role::Clinician,
        (_, On::OtherAccount) => false,
        (Scope::Own, On::OwnersAlert) => role == Role::PracticeOwner,
        (Scope::CareTeam, On::OwnersAlert) => false,
        // Never walked: decided by the conversation's membership, or needing a fresh code.
        (_, On::Membership | On::StepUp) => false,
    }
}

struct Practice {
    people: Vec<(Role, Person)>,
    clinician_a: String,
    appointment: String,
    assignment: String,
    p1: String,
    p2: String,
    clinician_b: String,
    victim: String,
    alert: String,
    note: String,
}

/// An owner, two clinicians, front desk, billing; patient 1 (clinician A's, with an account),
/// patient 2 (clinician B's); and an invited account to disable.
async fn practice(app: &TestApp) -> Practice {
    let owner = owner(app).await;
    let clinician_a = staff(app, &owner, "clinician", "a@practice.example").await;
    let clinician_b = staff(app, &owner, "clinician", "b@practice.example").await;
    let desk = staff(app, &owner, "front_desk", "desk@practice.example").await;
    let billing = staff(app, &owner, "billing", "billing@practice.example").await;
    let p1 = patient_record(app, &clinician_a, "Ada Lovelace").await;
    let p2 = patient_record(app, &clinician_b, "Bob Hope").await;
    let patient_one = patient(app, &desk, &p1, "ada@mail.example").await;
    crate::signin::invite(app, &owner, "billing", "leaving@practice.example", None).await;
    let (_, users) = owner.session.get(app, "/api/v1/users").await;
    let victim_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "leaving@practice.example")
        .map(|u| u["user_id"].as_str().unwrap().to_owned())
        .unwrap();
    let clinician_b_id = clinician_b.session.user_id.clone();
    let clinician_a_id = clinician_a.session.user_id.clone();
    let body = json!({ "clinician_id": clinician_a_id, "patient_id": p1, "starts_at_ms": 1_900_000_000_000i64, "ends_at_ms": 1_900_003_000_000i64 });
    let (status, booked) = desk.session.call(app, Method::POST, "/api/v1/appointments", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let form = json!({ "form": "gad7" });
    let path = format!("/api/v1/patients/{p1}/intake-forms");
    let (status, assigned) = clinician_a.session.call(app, Method::POST, &path, Some(form)).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    // Clinician B breaks the glass on patient 1: an alert to the owners.
    let reason = json!({ "reason": "patient in crisis at the front desk, their clinician is away" });
    let glass = format!("/api/v1/patients/{p1}/break-glass");
    let (status, granted) = clinician_b.session.call(app, Method::POST, &glass, Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    let (_, alerts) = owner.session.get(app, "/api/v1/alerts").await;
    let alert = alerts[0]["alert_id"].as_str().unwrap().to_owned();
    let notes = format!("/api/v1/patients/{p1}/notes");
    let (status, note) =
        clinician_a.session.call(app, Method::POST, &notes, Some(json!({ "template_key": "soap" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    Practice {
        note: note["note_id"].as_str().unwrap().to_owned(),
        alert,
        assignment: assigned["assignment_id"].as_str().unwrap().to_owned(),
        clinician_a: clinician_a_id,
        appointment: booked["id"].as_str().unwrap().to_owned(),
        people: vec![
            (Role::PracticeOwner, owner),
            (Role::Clinician, clinician_a),
            (Role::FrontDesk, desk),
            (Role::Billing, billing),
            (Role::Patient, patient_one),
        ],
        p1,
        p2,
        clinician_b: clinician_b_id,
        victim: victim_id,
    }
}

fn body_for(practice: &Practice, path: &str, method: &str, n: usize) -> Option<Value> {
    let start = 1_800_000_000_000i64 + n as i64 * 10_000_000;
    match (method, path) {
        ("POST", "/api/v1/appointments") => Some(
            json!({ "clinician_id": practice.clinician_a, "patient_id": practice.p1, "starts_at_ms": start, "ends_at_ms": start + 3_000_000 }),
        ),
        ("POST", "/api/v1/patients/{patient_id}/intake-forms") => {
            Some(json!({ "form": "phq9", "clinician_id": practice.clinician_a }))
        }
        ("PUT", "/api/v1/users/{user_id}/name") => {
            Some(json!({ "display_name": "Dr. Lee Park", "credentials": "LCSW" }))
        }
        ("PUT", "/api/v1/patients/{patient_id}/reminder-preferences") => Some(json!({ "email_enabled": true })),
        ("PUT", "/api/v1/appointments/{appointment_id}") => {
            Some(json!({ "starts_at_ms": start, "ends_at_ms": start + 3_000_000 }))
        }
        ("POST", "/api/v1/users/invitations") => {
            Some(json!({ "role": "front_desk", "email": format!("new{n}@practice.example") }))
        }
        ("POST", "/api/v1/patients") | ("PUT", "/api/v1/patients/{patient_id}") => {
            Some(json!({ "legal_name": format!("Person {n}"), "date_of_birth": "1990-01-01" }))
        }
        ("POST", "/api/v1/patients/{patient_id}/break-glass") => {
            Some(json!({ "reason": "patient in crisis at the front desk, their clinician is away" }))
        }
        ("POST", "/api/v1/devices") => {
            use base64::Engine;
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(n as u64).to_be_bytes());
            Some(json!({ "signature_key": base64::engine::general_purpose::STANDARD.encode(key) }))
        }
        ("POST", "/api/v1/devices/{device_id}/key-packages") => Some(json!({ "key_packages": ["AAAA"] })),
        ("POST", "/api/v1/note-templates") => {
            Some(json!({ "key": format!("walked_{n}"), "title": "Walked", "kind": "progress",
            "sections": [{ "id": "note", "label": "Note", "type": "text" }] }))
        }
        ("POST", "/api/v1/patients/{patient_id}/notes") => Some(json!({ "template_key": "soap" })),
        ("PUT", "/api/v1/notes/{note_id}/draft") => Some(json!({ "fields": { "plan": format!("Plan {n}.") } })),
        ("PUT", "/api/v1/users/{user_id}/supervisor") => Some(json!({ "supervisor_id": practice.clinician_a })),
        ("POST", "/api/v1/alerts/{alert_id}/follow-up") => Some(json!({ "note": format!("Follow-up {n}.") })),
        ("POST", "/api/v1/key-packages/claim") => {
            Some(json!({ "user_id": practice.clinician_a, "patient_id": practice.p1 }))
        }
        ("POST", "/api/v1/conversations") => Some(json!({
            "device_id": uuid::Uuid::new_v4(), "patient_id": practice.p1, "group_info": "", "ratchet_tree": ""
        })),
        _ => None,
    }
}

async fn every_role_meets_every_endpoint_as_the_matrix_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let practice = practice(&app).await;
    let mut mismatches = Vec::new();
    let mut n = 0;
    for &(method, template, cell, on) in ENDPOINTS {
        // Routes outside the matrix: sign-in and one's own session, which every account reaches
        // (exercised in identity.rs); the signed-in GETs are checked here too.
        if cell.is_none() {
            if method == "GET" && template.starts_with("/api/v1/") && on != On::Membership {
                for (role, person) in &practice.people {
                    let (status, body) = person.session.get(&app, template).await;
                    assert_eq!(status, StatusCode::OK, "{role:?} GET {template}: {body}");
                }
            }
            continue;
        }
        let Some((resource, operation)) = cell else { continue };
        for (role, person) in &practice.people {
            n += 1;
            let target = if template.contains("break-glass") { &practice.p2 } else { &practice.p1 };
            let path = template
                .replace("{patient_id}", target)
                .replace("{clinician_id}", &practice.clinician_b)
                .replace("{user_id}", &practice.victim)
                .replace("{appointment_id}", &practice.appointment)
                .replace("{assignment_id}", &practice.assignment)
                .replace("{alert_id}", &practice.alert)
                .replace("{note_id}", &practice.note)
                .replace("{device_id}", &uuid::Uuid::new_v4().to_string());
            let (status, body) = person
                .session
                .call(&app, method.parse::<Method>().unwrap(), &path, body_for(&practice, template, method, n))
                .await;
            assert!(
                status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
                "{role:?} {method} {path}: {status} {body}"
            );
            let expected = allowed(*role, resource, operation, on);
            if (status != StatusCode::FORBIDDEN) != expected {
                mismatches
                    .push(format!("{role:?} {method} {template}: got {status} {body}, matrix says allowed={expected}"));
            }
        }
    }
    for &(method, path, resource, operation) in STAFF_ENDPOINTS {
        for (role, person) in &practice.people {
            let body = staff_body_for(&practice, path);
            let (status, body) = person.session.call(&app, method.parse::<Method>().unwrap(), path, Some(body)).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
                "{role:?} {method} {path} (staff): {status} {body}"
            );
            let expected = allowed(*role, resource, operation, On::Any);
            if (status != StatusCode::FORBIDDEN) != expected {
                mismatches.push(format!(
                    "{role:?} {method} {path} (staff): got {status} {body}, matrix says allowed={expected}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

async fn a_clinician_reaches_another_clinicians_patient_only_through_break_glass(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let a = staff(&app, &owner, "clinician", "a@practice.example").await;
    let b = staff(&app, &owner, "clinician", "b@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let p1 = patient_record(&app, &a, "Ada Lovelace").await;
    let path = format!("/api/v1/patients/{p1}");

    let (status, body) = b.session.get(&app, &path).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let (_, listed) = b.session.get(&app, "/api/v1/patients").await;
    assert_eq!(listed.as_array().unwrap().len(), 0, "not in B's list either");
    let (status, _) = desk.session.get(&app, &path).await;
    assert_eq!(status, StatusCode::OK, "front desk sees demographics");

    let glass = format!("/api/v1/patients/{p1}/break-glass");
    let (status, body) = b.session.call(&app, Method::POST, &glass, Some(json!({ "reason": "urgent" }))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field")),
        "a reason is required"
    );
    let reason = json!({ "reason": "on call tonight, patient called the crisis line" });
    let (status, grant) = b.session.call(&app, Method::POST, &glass, Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let (status, record) = b.session.get(&app, &path).await;
    assert_eq!((status, record["legal_name"].as_str()), (StatusCode::OK, Some("Ada Lovelace")));
    // The grant opens the record, not Ada's conversations: no KeyPackages claimed for one, none
    // started.
    let claim = json!({ "user_id": a.session.user_id, "patient_id": p1 });
    let (status, _) = b.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let start = json!({ "device_id": Uuid::new_v4(), "patient_id": p1, "group_info": "", "ratchet_tree": "" });
    let (status, _) = b.session.call(&app, Method::POST, "/api/v1/conversations", Some(start)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, grants) = owner.session.get(&app, "/api/v1/break-glass").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grants[0]["reason"], "on call tonight, patient called the crisis line");
    assert_eq!(grants[0]["clinician_id"], b.session.user_id.as_str());

    let entries = app.audit_entries();
    let by_b = |action: &str, reason: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["reason"] == reason
                && e["actor_user_id"] == b.session.user_id.as_str()
                && e["patient_id"] == p1.as_str()
        })
    };
    assert!(by_b("read", "not_on_care_team"), "the refusal is audited");
    assert!(by_b("break_glass", "emergency_access"), "the grant is audited as break_glass");
    assert!(by_b("read", "break_glass"), "the access through it says so");
}

async fn patients_see_only_themselves_and_lists_are_audited_per_record(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let p1 = patient_record(&app, &desk, "Ada Lovelace").await;
    let p2 = patient_record(&app, &desk, "Bob Hope").await;
    let ada = patient(&app, &desk, &p1, "ada@mail.example").await;

    let (_, listed) = ada.session.get(&app, "/api/v1/patients").await;
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [p1.as_str()]);
    let (status, _) = ada.session.get(&app, &format!("/api/v1/patients/{p2}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, all) = desk.session.get(&app, "/api/v1/patients").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let reads = app.audit_entries().into_iter().filter(|e| e["action"] == "read" && e["resource_type"] == "patient");
    let patients: std::collections::BTreeSet<String> =
        reads.filter_map(|e| e["patient_id"].as_str().map(str::to_owned)).collect();
    assert!(patients.contains(&p1) && patients.contains(&p2), "each listed record is audited");
}

crate::on_both_backends!(
    every_role_meets_every_endpoint_as_the_matrix_says,
    a_clinician_reaches_another_clinicians_patient_only_through_break_glass,
    patients_see_only_themselves_and_lists_are_audited_per_record,
);
