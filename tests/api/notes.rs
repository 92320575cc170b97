//! Clinical notes (issue 29): every role against every note operation as the matrix says; a
//! signed note refuses every change over HTTP and the socket, and takes signed addenda; a
//! supervised clinician's note is final only once co-signed; a psychotherapy note is its
//! author's alone (not the care team's, not break-glass's, not the patient's); templates are
//! versioned and checked; a note is pre-filled with screenings and the treatment plan; and a
//! canary sentence written in a note reaches no database file, dump, log or error body. Both
//! backends.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::messaging::{contains, stored_bytes};
use crate::signin::{Person, owner, patient, patient_record, staff};
use crate::wsclient::signed_in;

/// A practice: an owner; Dr A (who creates patient 1, so is on the care team) and Dr C (added
/// to it); Dr B (another patient's clinician); front desk; billing; Ada, patient 1's account.
pub(crate) struct Clinic {
    pub(crate) app: TestApp,
    pub(crate) owner: Person,
    pub(crate) dr_a: Person,
    pub(crate) dr_b: Person,
    pub(crate) dr_c: Person,
    pub(crate) desk: Person,
    pub(crate) billing: Person,
    pub(crate) ada: Person,
    pub(crate) p1: String,
}

pub(crate) async fn clinic(backend: Backend, open_notes: bool) -> Clinic {
    let env = vec![("CONFIDANT_NOTES__OPEN_NOTES", open_notes.to_string())];
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await;
    let owner = owner(&app).await;
    let dr_a = staff(&app, &owner, "clinician", "a@practice.example").await;
    let dr_b = staff(&app, &owner, "clinician", "b@practice.example").await;
    let dr_c = staff(&app, &owner, "clinician", "c@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let billing = staff(&app, &owner, "billing", "billing@practice.example").await;
    let p1 = patient_record(&app, &dr_a, "Ada Lovelace").await;
    let team = format!("/api/v1/patients/{p1}/care-team/{}", dr_c.session.user_id);
    let (status, body) = desk.session.call(&app, Method::PUT, &team, None).await;
    assert!(status.is_success(), "{status} {body}");
    let ada = patient(&app, &desk, &p1, "ada@mail.example").await;
    Clinic { app, owner, dr_a, dr_b, dr_c, desk, billing, ada, p1 }
}

/// Begins a note on `template` about `patient`; returns its id.
pub(crate) async fn begin(app: &TestApp, dr: &Person, patient: &str, template: &str) -> String {
    let path = format!("/api/v1/patients/{patient}/notes");
    let (status, note) = dr.session.call(app, Method::POST, &path, Some(json!({ "template_key": template }))).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    note["note_id"].as_str().unwrap().to_owned()
}

/// Saves `fields` as the draft of `note`.
pub(crate) async fn save(app: &TestApp, dr: &Person, note: &str, fields: Value) -> (StatusCode, Value) {
    dr.session.call(app, Method::PUT, &format!("/api/v1/notes/{note}/draft"), Some(json!({ "fields": fields }))).await
}

pub(crate) fn soap(subjective: &str) -> Value {
    json!({ "subjective": subjective, "objective": "Calm, engaged.", "assessment": "Improving.", "plan": "Weekly CBT." })
}

/// Signs `note` with a fresh code from `dr`'s authenticator.
pub(crate) async fn sign(app: &TestApp, dr: &Person, note: &str) -> (StatusCode, Value) {
    let code = dr.totp.as_ref().unwrap().fresh_code().await;
    dr.session.call(app, Method::POST, &format!("/api/v1/notes/{note}/sign"), Some(json!({ "totp_code": code }))).await
}

/// A SOAP note by `dr`, filled in and signed.
pub(crate) async fn signed_soap(app: &TestApp, dr: &Person, patient: &str, subjective: &str) -> String {
    let note = begin(app, dr, patient, "soap").await;
    assert_eq!(save(app, dr, &note, soap(subjective)).await.0, StatusCode::NO_CONTENT);
    let (status, body) = sign(app, dr, &note).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    note
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|n| n["note_id"].as_str().unwrap().to_owned()).collect()
}

async fn every_role_meets_every_note_operation_as_the_matrix_says(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let signed = signed_soap(app, &c.dr_a, &c.p1, "Slept better this week.").await;
    let draft = begin(app, &c.dr_a, &c.p1, "dap").await;
    let p1 = &c.p1;
    let people: [(&str, &Person); 7] = [
        ("owner", &c.owner),
        ("dr_a (author, care team)", &c.dr_a),
        ("dr_c (care team)", &c.dr_c),
        ("dr_b (not on the care team)", &c.dr_b),
        ("front desk", &c.desk),
        ("billing", &c.billing),
        ("patient", &c.ada),
    ];
    let template = json!({ "key": "brief", "title": "Brief check-in", "kind": "progress",
        "sections": [{ "id": "note", "label": "Note", "type": "text", "required": true }] });
    // Each operation, and which of the seven above it lets through (the matrix, plus the note
    // rules: a draft is its author's; open notes is off here).
    let operations: Vec<(Method, String, Option<Value>, [bool; 7])> = vec![
        (Method::GET, format!("/api/v1/patients/{p1}/notes"), None, [false, true, true, false, true, true, true]),
        (Method::GET, format!("/api/v1/notes/{signed}"), None, [false, true, true, false, false, false, false]),
        (Method::GET, format!("/api/v1/notes/{draft}"), None, [false, true, false, false, false, false, false]),
        (
            Method::POST,
            format!("/api/v1/patients/{p1}/notes"),
            Some(json!({ "template_key": "birp" })),
            [false, true, true, false, false, false, false],
        ),
        (
            Method::PUT,
            format!("/api/v1/notes/{draft}/draft"),
            Some(json!({ "fields": { "data": "Talked about work." } })),
            [false, true, false, false, false, false, false],
        ),
        (Method::GET, "/api/v1/note-templates".to_owned(), None, [true, true, true, true, false, false, false]),
        (
            Method::POST,
            "/api/v1/note-templates".to_owned(),
            Some(template),
            [true, false, false, false, false, false, false],
        ),
        (Method::GET, "/api/v1/cosign-queue".to_owned(), None, [true, true, true, true, false, false, false]),
        (Method::GET, "/api/v1/supervisions".to_owned(), None, [true, true, true, true, false, false, false]),
        (
            Method::PUT,
            format!("/api/v1/users/{}/supervisor", c.dr_b.session.user_id),
            Some(json!({ "supervisor_id": null })),
            [true, false, false, false, false, false, false],
        ),
        (
            Method::GET,
            format!("/api/v1/patients/{p1}/screening-series"),
            None,
            [false, true, true, false, false, false, true],
        ),
    ];
    let mut mismatches = Vec::new();
    for (method, path, body, allowed) in &operations {
        for ((who, person), allowed) in people.iter().zip(allowed) {
            let (status, answer) = person.session.call(app, method.clone(), path, body.clone()).await;
            assert!(!status.is_server_error() && status != StatusCode::UNAUTHORIZED, "{who} {method} {path}: {status}");
            let let_through = status.is_success();
            if let_through != *allowed {
                mismatches.push(format!("{who} {method} {path}: {status} {answer}, expected allowed={allowed}"));
            }
            if !let_through {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} {method} {path}: {answer}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // Signing is the author's: anyone else is refused before a code is even looked at.
    for (who, person) in people.iter().filter(|(who, _)| !who.starts_with("dr_a")) {
        let path = format!("/api/v1/notes/{draft}/sign");
        let (status, _) = person.session.call(app, Method::POST, &path, Some(json!({ "totp_code": "123456" }))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
    }

    // Front desk and billing see that notes exist, their date and status, and nothing of them.
    for person in [&c.desk, &c.billing] {
        let (_, list) = person.session.get(app, &format!("/api/v1/patients/{p1}/notes")).await;
        let listed = ids(&list);
        assert!(listed.contains(&signed) && listed.contains(&draft), "{list}");
        for note in list.as_array().unwrap() {
            assert!(note.get("fields").is_none() && note.get("context").is_none(), "{note}");
            assert!(note["status"].is_string() && note["service_at_ms"].is_i64(), "{note}");
        }
    }
    // Every read of a note is on record, refusals included.
    let entries = app.audit_entries();
    let on_note = |outcome: &str| {
        entries
            .iter()
            .filter(|e| e["resource_type"] == "note" && e["resource_id"] == signed.as_str() && e["outcome"] == outcome)
            .count()
    };
    assert!(on_note("success") >= 3 && on_note("denied") >= 5, "reads and refusals of the signed note are audited");
}

async fn a_signed_note_refuses_every_change_and_takes_signed_addenda(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let note = begin(app, &c.dr_a, &c.p1, "soap").await;

    // Drafted live on the laptop, resumed on the phone.
    let mut laptop = signed_in(app, &c.dr_a.session.access).await;
    let fields = soap("Reports fewer panic attacks.");
    laptop.send(json!({ "v": 1, "type": "note.draft", "id": "d1", "note_id": note, "fields": fields })).await;
    assert_eq!(laptop.frame().await["type"], "ack");
    let bad = json!({ "v": 1, "type": "note.draft", "id": "d2", "note_id": note, "fields": { "mood": "fine" } });
    laptop.send(bad).await;
    let refused = laptop.frame().await;
    assert_eq!(refused["code"], "invalid_note", "{refused}");
    let mut phone = signed_in(app, &c.dr_a.session.access).await;
    phone.send(json!({ "v": 1, "type": "note.open", "id": "o1", "note_id": note })).await;
    let opened = phone.frame().await;
    assert_eq!((opened["type"].as_str(), &opened["fields"]), (Some("note.draft"), &fields), "{opened}");
    assert_eq!((opened["template_key"].as_str(), opened["template_version"].as_u64()), (Some("soap"), Some(1)));

    // A wrong code signs nothing; a fresh one signs and locks.
    let path = format!("/api/v1/notes/{note}/sign");
    let (status, _) = c.dr_a.session.call(app, Method::POST, &path, Some(json!({ "totp_code": "000000" }))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, signed) = sign(app, &c.dr_a, &note).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!((signed["status"].as_str(), signed["late_entry"].as_bool()), (Some("final"), Some(false)));
    let (_, read) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    let digest = read["signed_digest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    assert_eq!(read["is_final"], true);

    // No route changes it now: HTTP draft, socket draft, signing again.
    let (status, body) = save(app, &c.dr_a, &note, soap("Rewritten history.")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
    laptop
        .send(json!({ "v": 1, "type": "note.draft", "id": "d3", "note_id": note, "fields": soap("Rewritten.") }))
        .await;
    assert_eq!(laptop.frame().await["code"], "note_locked");
    phone.send(json!({ "v": 1, "type": "note.open", "id": "o2", "note_id": note })).await;
    assert_eq!(phone.frame().await["code"], "note_locked");
    let (status, _) = sign(app, &c.dr_a, &note).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, after) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!((&after["fields"], after["signed_digest"].as_str()), (&fields, Some(digest.as_str())));

    // The signature, with its digest, is on record.
    let reason = format!("signed_{}", &digest[..52]);
    assert!(
        app.audit_entries().iter().any(|e| e["reason"] == reason.as_str() && e["resource_id"] == note.as_str()),
        "the audit trail holds the signature with the content's digest"
    );

    // Corrections are addenda: signed with a fresh code, appended, shown with the note. A
    // colleague of the care team may add one; a draft takes none.
    let addenda = format!("/api/v1/notes/{note}/addenda");
    let code = c.dr_c.totp.as_ref().unwrap().fresh_code().await;
    let body = json!({ "text": "Correction: the panic attacks were twice, not once.", "totp_code": code });
    let (status, addendum) = c.dr_c.session.call(app, Method::POST, &addenda, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{addendum}");
    let (status, _) =
        c.dr_a.session.call(app, Method::POST, &addenda, Some(json!({ "text": "x", "totp_code": "000000" }))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an addendum needs a fresh code too");
    let (_, shown) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!(shown["addenda"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown["addenda"][0]["text"], "Correction: the panic attacks were twice, not once.");
    assert_eq!(shown["addenda"][0]["author_id"], c.dr_c.session.user_id.as_str());
    assert_eq!(shown["fields"], fields, "the addendum never replaces the note");
    let draft = begin(app, &c.dr_a, &c.p1, "soap").await;
    let code = c.dr_a.totp.as_ref().unwrap().fresh_code().await;
    let body = json!({ "text": "Too early.", "totp_code": code });
    let (status, _) =
        c.dr_a.session.call(app, Method::POST, &format!("/api/v1/notes/{draft}/addenda"), Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A note signed two days after its session is marked a late entry.
    let starts =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 48 * 3_600_000;
    let booking = json!({ "clinician_id": c.dr_a.session.user_id, "patient_id": c.p1, "starts_at_ms": starts, "ends_at_ms": starts + 3_000_000 });
    let (status, booked) = c.desk.session.call(app, Method::POST, "/api/v1/appointments", Some(booking)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let path = format!("/api/v1/patients/{}/notes", c.p1);
    let body = json!({ "template_key": "soap", "appointment_id": booked["id"] });
    let (status, late) = c.dr_a.session.call(app, Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    assert_eq!(late["service_at_ms"], starts);
    let late_id = late["note_id"].as_str().unwrap();
    save(app, &c.dr_a, late_id, soap("Session two days ago.")).await;
    let (status, signed) = sign(app, &c.dr_a, late_id).await;
    assert_eq!((status, signed["late_entry"].as_bool()), (StatusCode::OK, Some(true)), "{signed}");
    // Somebody else's appointment is no session of this note.
    let body = json!({ "template_key": "soap", "appointment_id": booked["id"] });
    let (status, _) = c.dr_c.session.call(app, Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_signature_refused_for_an_empty_required_section_spends_no_code(backend: Backend) {
    let app = spawn_app_with(backend, Options::default()).await;
    let owner = owner(&app).await;
    let dr = staff(&app, &owner, "clinician", "a@practice.example").await;
    let patient = patient_record(&app, &dr, "Ada Lovelace").await;
    let note = begin(&app, &dr, &patient, "soap").await;
    let (status, _) = save(&app, &dr, &note, json!({ "subjective": "Slept better." })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A valid code with the objective still empty: refused at the section, the code unspent.
    let code = dr.totp.as_ref().unwrap().fresh_code().await;
    let path = format!("/api/v1/notes/{note}/sign");
    let (status, refused) = dr.session.call(&app, Method::POST, &path, Some(json!({ "totp_code": code }))).await;
    assert_eq!((status, refused["field"].as_str()), (StatusCode::BAD_REQUEST, Some("objective")), "{refused}");

    // Filled in, the same code signs.
    let (status, _) = save(&app, &dr, &note, soap("Slept better.")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, signed) = dr.session.call(&app, Method::POST, &path, Some(json!({ "totp_code": code }))).await;
    assert_eq!((status, signed["status"].as_str()), (StatusCode::OK, Some("final")), "{signed}");
}

async fn a_supervised_clinicians_note_is_final_only_once_cosigned(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    // Dr B supervises Dr A (pre-licensed). Only a clinician may supervise or be supervised.
    let path = format!("/api/v1/users/{}/supervisor", c.dr_a.session.user_id);
    let (status, body) =
        c.owner.session.call(app, Method::PUT, &path, Some(json!({ "supervisor_id": c.desk.session.user_id }))).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("supervisor_id")));
    let (status, _) =
        c.owner.session.call(app, Method::PUT, &path, Some(json!({ "supervisor_id": c.dr_b.session.user_id }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Who supervises whom: owners see every pair, a clinician the pairs they are part of.
    let (status, pairs) = c.owner.session.get(app, "/api/v1/supervisions").await;
    assert_eq!(status, StatusCode::OK, "{pairs}");
    let pair = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| (p["clinician_id"].as_str().unwrap().to_owned(), p["supervisor_id"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let expected = vec![(c.dr_a.session.user_id.clone(), c.dr_b.session.user_id.clone())];
    assert_eq!(pair(&pairs), expected);
    assert_eq!(pair(&c.dr_b.session.get(app, "/api/v1/supervisions").await.1), expected);
    assert!(pair(&c.dr_c.session.get(app, "/api/v1/supervisions").await.1).is_empty());

    let note = begin(app, &c.dr_a, &c.p1, "girp").await;
    let fields = json!({ "goals": "Sleep 7 hours.", "intervention": "Sleep hygiene.", "response": "Engaged.", "plan": "Review." });
    save(app, &c.dr_a, &note, fields).await;
    let (status, signed) = sign(app, &c.dr_a, &note).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["status"], "awaiting_cosign");
    assert_eq!(signed["cosigner_id"], c.dr_b.session.user_id.as_str());
    let (_, read) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!(read["is_final"], false, "not final until co-signed");
    // Signed is signed: the supervisee cannot change it while it waits.
    assert_eq!(save(app, &c.dr_a, &note, json!({ "plan": "Changed." })).await.0, StatusCode::CONFLICT);

    // In the supervisor's queue, readable by them (not on the care team) for co-signing.
    let (status, queue) = c.dr_b.session.get(app, "/api/v1/cosign-queue").await;
    assert_eq!((status, ids(&queue)), (StatusCode::OK, vec![note.clone()]));
    let (status, _) = c.dr_b.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, others) = c.dr_c.session.get(app, "/api/v1/cosign-queue").await;
    assert!(ids(&others).is_empty());

    // Nobody else co-signs; the supervisor does, with a fresh code.
    let cosign = format!("/api/v1/notes/{note}/cosign");
    for person in [&c.dr_a, &c.dr_c] {
        let code = person.totp.as_ref().unwrap().fresh_code().await;
        let (status, _) = person.session.call(app, Method::POST, &cosign, Some(json!({ "totp_code": code }))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let code = c.dr_b.totp.as_ref().unwrap().fresh_code().await;
    let (status, cosigned) = c.dr_b.session.call(app, Method::POST, &cosign, Some(json!({ "totp_code": code }))).await;
    assert_eq!(status, StatusCode::OK, "{cosigned}");
    assert_eq!(cosigned["status"], "final");
    assert!(cosigned["cosigned_at_ms"].is_i64());
    let (_, read) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!(read["is_final"], true);
    let (_, queue) = c.dr_b.session.get(app, "/api/v1/cosign-queue").await;
    assert!(ids(&queue).is_empty());
    let code = c.dr_b.totp.as_ref().unwrap().fresh_code().await;
    let (status, _) = c.dr_b.session.call(app, Method::POST, &cosign, Some(json!({ "totp_code": code }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "co-signed once");
    assert!(app.audit_entries().iter().any(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("cosigned_"))));
}

async fn a_psychotherapy_note_is_its_authors_alone(backend: Backend) {
    let c = clinic(backend, true).await;
    let app = &c.app;
    let progress = signed_soap(app, &c.dr_a, &c.p1, "Discussed the week.").await;
    let plan = begin(app, &c.dr_a, &c.p1, "treatment_plan").await;
    let plan_fields = json!({ "diagnosis": ["F41.1"], "problems": ["Worry"], "goals": ["GAD-7 under 5"],
        "objectives": ["Daily practice"], "interventions": ["CBT"], "target_date": "2027-03-01", "review_date": "2027-01-15" });
    assert_eq!(save(app, &c.dr_a, &plan, plan_fields).await.0, StatusCode::NO_CONTENT);
    assert_eq!(sign(app, &c.dr_a, &plan).await.0, StatusCode::OK);
    let private = begin(app, &c.dr_a, &c.p1, "psychotherapy").await;
    save(app, &c.dr_a, &private, json!({ "session_content": "Process notes." })).await;
    assert_eq!(sign(app, &c.dr_a, &private).await.0, StatusCode::OK);
    let draft = begin(app, &c.dr_a, &c.p1, "soap").await;

    // The author reads it; the rest of the care team neither reads nor sees it listed.
    assert_eq!(c.dr_a.session.get(app, &format!("/api/v1/notes/{private}")).await.0, StatusCode::OK);
    let notes = format!("/api/v1/patients/{}/notes", c.p1);
    let (_, mine) = c.dr_a.session.get(app, &notes).await;
    assert!(ids(&mine).contains(&private));
    for person in [&c.dr_c, &c.desk, &c.billing] {
        let (_, listed) = person.session.get(app, &notes).await;
        let listed = ids(&listed);
        assert!(listed.contains(&progress) && !listed.contains(&private), "{listed:?}");
    }
    assert_eq!(c.dr_c.session.get(app, &format!("/api/v1/notes/{private}")).await.0, StatusCode::FORBIDDEN);
    let path = format!("/api/v1/notes/{private}/addenda");
    let code = c.dr_c.totp.as_ref().unwrap().fresh_code().await;
    let (status, _) =
        c.dr_c.session.call(app, Method::POST, &path, Some(json!({ "text": "x", "totp_code": code }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Break-glass opens progress notes only, and writes nothing.
    let reason = json!({ "reason": "patient in crisis at the front desk, their clinician is away" });
    let glass = format!("/api/v1/patients/{}/break-glass", c.p1);
    let (status, granted) = c.dr_b.session.call(app, Method::POST, &glass, Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    assert_eq!(c.dr_b.session.get(app, &format!("/api/v1/notes/{progress}")).await.0, StatusCode::OK);
    for hidden in [&private, &plan, &draft] {
        assert_eq!(c.dr_b.session.get(app, &format!("/api/v1/notes/{hidden}")).await.0, StatusCode::FORBIDDEN);
    }
    let (_, listed) = c.dr_b.session.get(app, &notes).await;
    assert!(!ids(&listed).contains(&private));
    let (status, _) = c.dr_b.session.call(app, Method::POST, &notes, Some(json!({ "template_key": "soap" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "break-glass writes no note");

    // Open notes: the patient reads her own signed progress notes, nothing else.
    let (_, hers) = c.ada.session.get(app, &notes).await;
    assert_eq!(ids(&hers), vec![progress.clone()]);
    let (status, read) = c.ada.session.get(app, &format!("/api/v1/notes/{progress}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    for hidden in [&private, &plan, &draft] {
        assert_eq!(c.ada.session.get(app, &format!("/api/v1/notes/{hidden}")).await.0, StatusCode::FORBIDDEN);
    }
    let denied: Vec<Value> = app
        .audit_entries()
        .into_iter()
        .filter(|e| e["resource_id"] == private.as_str() && e["outcome"] == "denied")
        .collect();
    assert!(denied.len() >= 3, "every refused read of the psychotherapy note is on record");
}

async fn templates_are_versioned_data_and_an_invalid_one_is_refused(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let (status, listed) = c.dr_a.session.get(app, "/api/v1/note-templates").await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["definition"]["key"].as_str().unwrap()).collect();
    for key in
        ["soap", "dap", "birp", "girp", "biopsychosocial", "treatment_plan", "discharge_summary", "psychotherapy"]
    {
        assert!(keys.contains(&key), "{key}");
    }
    let before = begin(app, &c.dr_a, &c.p1, "soap").await;

    // Invalid definitions are refused naming the place and the rule, and change nothing.
    let invalid = [
        (json!({ "key": "x", "title": "X", "kind": "progress", "sections": [] }), "sections"),
        (
            json!({ "key": "x", "title": "X", "kind": "progress", "sections": [
                { "id": "mood", "label": "Mood", "type": "choice", "options": ["low"] }] }),
            "sections[0].options",
        ),
        (json!({ "key": "x", "title": "X", "kind": "letter", "sections": [] }), "definition"),
        (json!(["not", "an", "object"]), "definition"),
    ];
    for (definition, place) in invalid {
        let (status, body) = c.owner.session.call(app, Method::POST, "/api/v1/note-templates", Some(definition)).await;
        assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some(place)), "{body}");
        assert_eq!(body["code"], "invalid_field");
    }

    // A practice's own SOAP: version 2 of the key. New notes use it; older ones keep version 1.
    let own = json!({ "key": "soap", "title": "Our SOAP", "kind": "progress", "sections": [
        { "id": "subjective", "label": "Subjective", "type": "text", "required": true },
        { "id": "risk", "label": "Risk today", "type": "choice", "options": ["none", "low", "high"], "required": true }] });
    let (status, added) = c.owner.session.call(app, Method::POST, "/api/v1/note-templates", Some(own)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["definition"]["version"], 2);
    let after = begin(app, &c.dr_a, &c.p1, "soap").await;
    let (_, new) = c.dr_a.session.get(app, &format!("/api/v1/notes/{after}")).await;
    assert_eq!((new["template_version"].as_u64(), new["template"]["title"].as_str()), (Some(2), Some("Our SOAP")));
    let (status, body) = save(app, &c.dr_a, &after, json!({ "risk": "moderate" })).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("risk")), "{body}");
    let (_, old) = c.dr_a.session.get(app, &format!("/api/v1/notes/{before}")).await;
    assert_eq!(
        (old["template_version"].as_u64(), old["template"]["title"].as_str()),
        (Some(1), Some("SOAP progress note"))
    );
    assert_eq!(save(app, &c.dr_a, &before, soap("Still on version 1.")).await.0, StatusCode::NO_CONTENT);
}

async fn a_new_note_is_prefilled_with_screenings_and_the_treatment_plan(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let mut socket = signed_in(app, &c.ada.session.access).await;
    let submit_phq9 = async |socket: &mut crate::wsclient::WsClient, each: u64, n: usize| {
        let path = format!("/api/v1/patients/{}/intake-forms", c.p1);
        let (status, assigned) = c.dr_a.session.call(app, Method::POST, &path, Some(json!({ "form": "phq9" }))).await;
        assert_eq!(status, StatusCode::CREATED, "{assigned}");
        let mut answers = serde_json::Map::new();
        for item in 1..=9 {
            answers.insert(format!("item{item}"), json!(if item == 9 { 0 } else { each }));
        }
        let id = format!("s{n}");
        socket
            .send(json!({ "v": 1, "type": "intake.submit", "id": id, "assignment_id": assigned["assignment_id"], "answers": answers }))
            .await;
        let answer = socket.frame().await;
        assert_eq!(answer["type"], "ack", "{answer}");
    };
    submit_phq9(&mut socket, 1, 1).await;

    // The treatment plan's diagnosis and goals, and the latest PHQ-9 (no earlier note: no change).
    let plan = begin(app, &c.dr_a, &c.p1, "treatment_plan").await;
    let plan_fields = json!({ "diagnosis": ["F32.1 Major depressive disorder"], "problems": ["Low mood"],
        "goals": ["PHQ-9 under 5 by March"], "objectives": ["Walk daily"], "interventions": ["Behavioural activation"],
        "target_date": "2027-03-01", "review_date": "2027-01-15" });
    save(app, &c.dr_a, &plan, plan_fields).await;
    let (_, first) = c.dr_a.session.get(app, &format!("/api/v1/notes/{plan}")).await;
    assert_eq!(first["context"]["phq9"]["total"], 8);
    assert_eq!(first["context"]["phq9"]["severity"], "mild");
    assert!(first["context"]["phq9"]["change_since_last_note"].is_null());
    assert_eq!(sign(app, &c.dr_a, &plan).await.0, StatusCode::OK);

    submit_phq9(&mut socket, 2, 2).await;
    let path = format!("/api/v1/patients/{}/notes", c.p1);
    let (status, note) = c.dr_a.session.call(app, Method::POST, &path, Some(json!({ "template_key": "soap" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let context = &note["context"];
    assert_eq!(
        (context["phq9"]["total"].as_u64(), context["phq9"]["change_since_last_note"].as_i64()),
        (Some(16), Some(8))
    );
    assert!(context["gad7"].is_null());
    assert_eq!(context["diagnosis"], json!(["F32.1 Major depressive disorder"]));
    assert_eq!(context["goals"], json!(["PHQ-9 under 5 by March"]));
    // A discharge summary has no diagnosis list of that id; a new treatment plan starts from the
    // current one.
    let (_, renewed) =
        c.dr_a.session.call(app, Method::POST, &path, Some(json!({ "template_key": "treatment_plan" }))).await;
    assert_eq!(renewed["fields"]["goals"], json!(["PHQ-9 under 5 by March"]));

    // The series, oldest first, with bands.
    let (status, series) = c.dr_a.session.get(app, &format!("/api/v1/patients/{}/screening-series", c.p1)).await;
    assert_eq!(status, StatusCode::OK);
    let totals: Vec<u64> = series["phq9"].as_array().unwrap().iter().map(|p| p["total"].as_u64().unwrap()).collect();
    assert_eq!(totals, vec![8, 16]);
    assert_eq!(series["phq9"][1]["severity"], "moderately_severe");
    assert_eq!(series["gad7"], json!([]));
    let (status, _) = c.desk.session.get(app, &format!("/api/v1/patients/{}/screening-series", c.p1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

const CANARY: &str = "canary: she said the blue heron visits her father's grave on Tuesdays";

async fn a_canary_sentence_in_a_note_is_in_no_file_dump_log_or_error_body(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let note = begin(app, &c.dr_a, &c.p1, "soap").await;
    assert_eq!(save(app, &c.dr_a, &note, soap(CANARY)).await.0, StatusCode::NO_CONTENT);
    let mut socket = signed_in(app, &c.dr_a.session.access).await;
    socket.send(json!({ "v": 1, "type": "note.draft", "id": "c1", "note_id": note, "fields": soap(CANARY) })).await;
    assert_eq!(socket.frame().await["type"], "ack");
    assert_eq!(sign(app, &c.dr_a, &note).await.0, StatusCode::OK);
    let code = c.dr_a.totp.as_ref().unwrap().fresh_code().await;
    let addenda = format!("/api/v1/notes/{note}/addenda");
    let (status, _) =
        c.dr_a.session.call(app, Method::POST, &addenda, Some(json!({ "text": CANARY, "totp_code": code }))).await;
    assert_eq!(status, StatusCode::CREATED);

    // Refusals carrying the sentence never echo it.
    let mut bodies = Vec::new();
    let draft = begin(app, &c.dr_a, &c.p1, "soap").await;
    bodies.push(save(app, &c.dr_a, &draft, json!({ "subjective": format!("{CANARY}\u{202E}") })).await.1);
    bodies.push(save(app, &c.dr_a, &draft, json!({ "subjective": [CANARY] })).await.1);
    let mut unknown = serde_json::Map::new();
    unknown.insert(CANARY.to_owned(), json!("x"));
    bodies.push(save(app, &c.dr_a, &draft, Value::Object(unknown)).await.1);
    bodies.push(save(app, &c.dr_a, &note, soap(CANARY)).await.1);
    bodies.push(
        c.dr_b
            .session
            .call(app, Method::PUT, &format!("/api/v1/notes/{note}/draft"), Some(json!({ "fields": soap(CANARY) })))
            .await
            .1,
    );
    bodies.push(
        c.dr_a
            .session
            .call(app, Method::POST, &addenda, Some(json!({ "text": CANARY, "totp_code": "000000" })))
            .await
            .1,
    );
    let response = app
        .client
        .put(app.url(&format!("/api/v1/notes/{draft}/draft")))
        .bearer_auth(&c.dr_a.session.access)
        .header("content-type", "application/json")
        .body(format!("{{\"fields\": {{\"subjective\": \"{CANARY}\"")) // cut short
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    bodies.push(response.json().await.unwrap());
    socket.send(json!({ "v": 1, "type": "note.draft", "id": "c2", "note_id": note, "fields": soap(CANARY) })).await;
    bodies.push(socket.frame().await);
    for body in &bodies {
        assert!(body["code"].is_string(), "{body}");
        assert!(!body.to_string().contains("heron"), "an error body echoes the note: {body}");
    }

    // It is readable to its author, and nowhere else: not in a file, a dump, a log line.
    let (_, read) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    assert_eq!(read["fields"]["subjective"], CANARY);
    let stored = stored_bytes(app, backend).await;
    let logs = app.logs().join("\n");
    for phrase in [CANARY, "blue heron", "father's grave"] {
        assert!(!contains(&stored, phrase), "the database holds {phrase:?}");
        assert!(!logs.contains(phrase), "the logs hold {phrase:?}");
    }
    let audit = app.audit_entries().iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    assert!(!audit.contains("heron"), "the audit trail holds the note");
}

crate::on_both_backends!(
    every_role_meets_every_note_operation_as_the_matrix_says,
    a_signed_note_refuses_every_change_and_takes_signed_addenda,
    a_signature_refused_for_an_empty_required_section_spends_no_code,
    a_supervised_clinicians_note_is_final_only_once_cosigned,
    a_psychotherapy_note_is_its_authors_alone,
    templates_are_versioned_data_and_an_invalid_one_is_refused,
    a_new_note_is_prefilled_with_screenings_and_the_treatment_plan,
    a_canary_sentence_in_a_note_is_in_no_file_dump_log_or_error_body,
);
