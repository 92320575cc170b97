//! Staff as the practice sees them: display names with credentials (set by owners, shown in the
//! directory and on every screen), front desk giving a patient a form for a clinician of the
//! care team, and the audit trail's state for owners. Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::signin::{accept, invite, owner, patient, patient_record, staff};

fn named<'a>(directory: &'a Value, user_id: &str) -> &'a Value {
    let member = directory.as_array().unwrap().iter().find(|m| m["user_id"] == user_id);
    &member.unwrap_or_else(|| panic!("{user_id} is not in the directory: {directory}"))["display_name"]
}

async fn staff_are_shown_by_name_and_credentials_and_patients_see_no_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let body = json!({
        "role": "clinician", "email": "ana.ruiz@practice.example",
        "display_name": "  Dr. Ana Ruiz ", "credentials": "PsyD"
    });
    let (status, invited) = owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    let ana = invited["user_id"].as_str().unwrap().to_owned();
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let desk_id = desk.session.user_id.clone();

    // Staff see the name with credentials, and a colleague not named yet by email.
    let (status, directory) = desk.session.get(&app, "/api/v1/staff").await;
    assert_eq!(status, StatusCode::OK, "{directory}");
    let listed = |d: &Value| d.as_array().unwrap().iter().any(|m| m["user_id"] == ana.as_str());
    assert!(!listed(&directory), "an invited account is not in the directory yet: {directory}");
    assert_eq!(accept(&app, invited["invitation_token"].as_str().unwrap()).await, StatusCode::OK);
    let (_, directory) = desk.session.get(&app, "/api/v1/staff").await;
    assert_eq!(named(&directory, &ana), "Dr. Ana Ruiz, PsyD", "trimmed, with credentials");
    let (_, users) = owner.session.get(&app, "/api/v1/users").await;
    let row = users.as_array().unwrap().iter().find(|u| u["user_id"] == ana.as_str()).unwrap().clone();
    assert_eq!((row["display_name"].as_str(), row["credentials"].as_str()), (Some("Dr. Ana Ruiz"), Some("PsyD")));
    assert_eq!(named(&directory, &desk_id), "desk@practice.example");

    // A patient sees names only: a member of staff without one has no email shown.
    let record = patient_record(&app, &desk, "Ada Lovelace").await;
    let ada = patient(&app, &desk, &record, "ada@mail.example").await;
    let (status, seen) = ada.session.get(&app, "/api/v1/staff").await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert!(named(&seen, &desk_id).is_null(), "{seen}");
    assert!(!seen.to_string().contains("@practice.example"), "no staff email reaches a patient: {seen}");

    // The owner names front desk; bad names are refused at the field and change nothing.
    let path = format!("/api/v1/users/{desk_id}/name");
    for (body, field) in [
        (json!({ "display_name": "   " }), "display_name"),
        (json!({ "display_name": "x".repeat(101) }), "display_name"),
        (json!({ "display_name": "Sam Lee", "credentials": "c".repeat(41) }), "credentials"),
        (json!({ "display_name": "Sam\u{7}Lee" }), "display_name"),
    ] {
        let (status, error) = owner.session.call(&app, Method::PUT, &path, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
    let (status, refused) =
        desk.session.call(&app, Method::PUT, &path, Some(json!({ "display_name": "Chief of Everything" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only owners name staff: {refused}");
    let (_, unchanged) = desk.session.get(&app, "/api/v1/staff").await;
    assert_eq!(named(&unchanged, &desk_id), "desk@practice.example");
    let (status, _) = owner.session.call(&app, Method::PUT, &path, Some(json!({ "display_name": "Sam Lee" }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, seen) = ada.session.get(&app, "/api/v1/staff").await;
    assert_eq!(named(&seen, &desk_id), "Sam Lee");
    let (_, me) = desk.session.get(&app, "/api/v1/browser/session").await;
    assert_eq!(me["display_name"], "Sam Lee", "{me}");

    // A patient account is named by its record, never by a display name.
    let body = json!({ "role": "patient", "email": "bo@mail.example", "patient_id": record, "display_name": "Bo" });
    let (status, error) = owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "display_name");

    let body = json!({ "role": "billing", "email": "bill@practice.example", "credentials": "CPA" });
    let (status, error) = owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("credentials")), "{error}");

    let renamed = app.audit_entries().iter().filter(|e| e["reason"] == "staff_name_set").count();
    assert_eq!(renamed, 1, "the one rename is audited, the refusals changed nothing");
}

async fn front_desk_gives_a_form_for_a_clinician_of_the_care_team_and_never_reads_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let ana = staff(&app, &owner, "clinician", "ana@practice.example").await;
    let ben = staff(&app, &owner, "clinician", "ben@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let record = patient_record(&app, &ana, "Ada Lovelace").await;
    let path = format!("/api/v1/patients/{record}/intake-forms");

    let (status, error) = desk.session.call(&app, Method::POST, &path, Some(json!({ "form": "phq9" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "front desk names the clinician: {error}");
    assert_eq!(error["field"], "clinician_id");
    let for_ben = json!({ "form": "phq9", "clinician_id": ben.session.user_id });
    let (status, error) = desk.session.call(&app, Method::POST, &path, Some(for_ben)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "Ben is not on Ada's care team: {error}");
    assert_eq!(error["field"], "clinician_id");
    let for_ana = json!({ "form": "gad7", "clinician_id": ana.session.user_id });
    let (status, assigned) = desk.session.call(&app, Method::POST, &path, Some(for_ana)).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");

    // Ana sees it among Ada's forms; front desk cannot list or read forms.
    let (_, forms) = ana.session.get(&app, &path).await;
    assert!(forms.as_array().unwrap().iter().any(|f| f["assignment_id"] == assigned["assignment_id"]), "{forms}");
    let (status, _) = desk.session.get(&app, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A clinician assigns for themselves only.
    let (status, error) = ana
        .session
        .call(&app, Method::POST, &path, Some(json!({ "form": "phq9", "clinician_id": ben.session.user_id })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (_, forms) = ana.session.get(&app, &path).await;
    assert_eq!(forms.as_array().unwrap().len(), 1, "the refused requests assigned nothing: {forms}");
}

async fn owners_see_the_audit_trails_heads_and_verify_it_on_demand(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let ana = staff(&app, &owner, "clinician", "ana@practice.example").await;
    invite(&app, &owner, "billing", "bill@practice.example", None).await;

    let (status, before) = owner.session.get(&app, "/api/v1/audit/status").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert!(before["last_verification"].is_null(), "nothing verified yet is said so: {before}");
    let (status, verified) = owner.session.call(&app, Method::POST, "/api/v1/audit/verify", None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["entries"].as_u64().unwrap() > 5, "{verified}");
    let (_, after) = owner.session.get(&app, "/api/v1/audit/status").await;
    assert_eq!(after["last_verification"]["intact"], true, "{after}");
    assert!(after["heads"].as_array().is_some_and(|h| !h.is_empty()), "{after}");
    let head = &after["heads"][0];
    assert_eq!(head["hash"].as_str().unwrap().len(), 64, "{head}");
    assert!(head["hash"].as_str().unwrap().chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));

    for path in ["/api/v1/audit/status", "/api/v1/audit/verify"] {
        let method = if path.ends_with("verify") { Method::POST } else { Method::GET };
        let (status, _) = ana.session.call(&app, method, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: owners only");
    }
    let reasons: Vec<String> =
        app.audit_entries().iter().map(|e| e["reason"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(reasons.iter().any(|r| r == "audit_verified"), "the verification is audited");
}

crate::on_both_backends!(
    staff_are_shown_by_name_and_credentials_and_patients_see_no_email,
    front_desk_gives_a_form_for_a_clinician_of_the_care_team_and_never_reads_it,
    owners_see_the_audit_trails_heads_and_verify_it_on_demand,
);
