//! Text people type: invisible and direction-control characters are refused in every name and
//! single-line field with `invalid_field` naming the field (a displayed name cannot be made to
//! read as another patient's), and text is stored in Unicode NFC. Both backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::signin::{owner, patient_record, staff};

/// The characters the review found accepted, each of which can make a name display as another.
const SPOOFING: [char; 12] = [
    '\u{202E}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{FEFF}',
    '\u{2028}', '\u{2029}', '\u{202A}',
];

fn assert_refused(status: StatusCode, error: &Value, field: &str, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {error}");
    assert_eq!(error["code"], "invalid_field", "{what}: {error}");
    assert_eq!(error["field"], field, "{what}: {error}");
    assert!(!error.to_string().contains("ziuR"), "the value is not echoed: {error}");
}

async fn hidden_characters_are_refused_in_every_name_and_single_line_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "ana@practice.example").await;
    let patient_id = patient_record(&app, &desk, "Ada Lovelace").await;
    let record = |field: &str, value: String| {
        let mut body = json!({ "legal_name": "Ana Ruiz", "date_of_birth": "1980-02-29" });
        match field.split_once('.') {
            Some((outer, inner)) => {
                body[outer] = json!({ "name": "Sam Ruiz", "phone": "+1 555 010 0000" });
                body[outer][inner] = json!(value);
            }
            None => body[field] = json!(value),
        }
        body
    };
    let fields = [
        "legal_name",
        "preferred_name",
        "email",
        "address",
        "emergency_contact.name",
        "emergency_contact.relationship",
    ];
    for c in SPOOFING {
        let what = format!("U+{:04X}", c as u32);
        let spoof = |base: &str| format!("{base} {c}ziuR");
        for field in fields {
            let value = if field == "email" { format!("ana{c}@mail.example") } else { spoof("Ana") };
            let (status, error) =
                desk.session.call(&app, Method::POST, "/api/v1/patients", Some(record(field, value.clone()))).await;
            assert_refused(status, &error, field, &format!("{what} in a new patient's {field}"));
            let path = format!("/api/v1/patients/{patient_id}");
            let (status, error) = desk.session.call(&app, Method::PUT, &path, Some(record(field, value))).await;
            assert_refused(status, &error, field, &format!("{what} in an edited patient's {field}"));
        }

        let invitation = json!({ "role": "clinician", "email": format!("x{c}@practice.example") });
        let (status, error) =
            owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(invitation)).await;
        assert_refused(status, &error, "email", &format!("{what} in an invitation's email"));
        for (field, body) in [
            ("display_name", json!({ "display_name": spoof("Dr. Ana") })),
            ("credentials", json!({ "display_name": "Dr. Ana Ruiz", "credentials": spoof("PsyD") })),
        ] {
            let path = format!("/api/v1/users/{}/name", clinician.session.user_id);
            let (status, error) = owner.session.call(&app, Method::PUT, &path, Some(body.clone())).await;
            assert_refused(status, &error, field, &format!("{what} in a staff {field}"));
            let mut invitation = body;
            invitation["role"] = json!("clinician");
            invitation["email"] = json!(format!("{}@practice.example", c as u32));
            let (status, error) =
                owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(invitation)).await;
            assert_refused(status, &error, field, &format!("{what} in an invitation's {field}"));
        }
        let path = format!("/api/v1/patients/{patient_id}/break-glass");
        let reason = json!({ "reason": format!("Patient called in crisis {c}ziuR, on-call clinician away") });
        let (status, error) = clinician.session.call(&app, Method::POST, &path, Some(reason)).await;
        assert_refused(status, &error, "reason", &format!("{what} in a break-glass reason"));
    }

    // Nothing was stored: the record is as created, and no patient was added.
    let (_, listed) = desk.session.get(&app, "/api/v1/patients").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let (_, ada) = desk.session.get(&app, &format!("/api/v1/patients/{patient_id}")).await;
    assert_eq!(ada["legal_name"], "Ada Lovelace");
}

async fn names_are_stored_in_nfc_however_they_were_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "jose@practice.example").await;
    let decomposed = "Jose\u{301} Nun\u{303}ez";
    let composed = "Jos\u{e9} Nu\u{f1}ez";

    let body = json!({ "legal_name": decomposed, "preferred_name": decomposed, "date_of_birth": "1980-02-29",
        "address": format!("{decomposed}\n12 Main St") });
    let (status, created) = desk.session.call(&app, Method::POST, "/api/v1/patients", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, read) = desk.session.get(&app, &format!("/api/v1/patients/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(read["legal_name"], composed, "{read}");
    assert_eq!(read["preferred_name"], composed);
    assert_eq!(read["address"], format!("{composed}\n12 Main St"));

    let path = format!("/api/v1/users/{}/name", clinician.session.user_id);
    let body = json!({ "display_name": format!("Dr. {decomposed}"), "credentials": "Psy\u{301}D" });
    let (status, named) = owner.session.call(&app, Method::PUT, &path, Some(body)).await;
    assert!(status.is_success(), "{named}");
    let (_, directory) = desk.session.get(&app, "/api/v1/staff").await;
    let shown = directory.as_array().unwrap().iter().find(|m| m["user_id"] == clinician.session.user_id.as_str());
    assert_eq!(shown.unwrap()["display_name"], format!("Dr. {composed}, Ps\u{fd}D"), "{directory}");
}

crate::on_both_backends!(
    hidden_characters_are_refused_in_every_name_and_single_line_field,
    names_are_stored_in_nfc_however_they_were_typed,
);
