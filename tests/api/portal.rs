//! The web portal: its files as the binary serves them, the browser session (a cookie script
//! cannot read, refused to other sites), and the portal in a real browser (Debian's Chromium
//! driven by Playwright, `tests/browser/`) against the real server on the embedded default.

use std::path::PathBuf;

use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::browser_script::BrowserScript;
use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};

const STAFF_PASSWORD: &str = "Tidal-Orchid-Lantern-42";
/// The portal's first load (compressed, wasm included) must stay within this (issue 26).
const FIRST_LOAD_BUDGET: usize = 800 * 1024;

fn create_staff(app: &TestApp, role: &str, email: &str) {
    let (code, output) = app.cli(&["user", "create", "--role", role, "--email", email], &format!("{STAFF_PASSWORD}\n"));
    assert_eq!(code, Some(0), "{output}");
}

/// The asset URLs the entry page names.
fn asset_urls(index: &str) -> Vec<String> {
    index.split('"').filter(|part| part.starts_with("/assets/")).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_is_served_by_content_hash_compressed_and_cached_and_fits_its_budget() {
    let app = spawn_app(Backend::Sqlite).await;
    for entry in ["/", "/portal/"] {
        let page = app.client.get(app.url(entry)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"), "{csp}");
        assert!(csp.contains("require-trusted-types-for 'script'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    let index = app.client.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(!index.contains("<script>") && !index.contains("style="), "no inline script or style:\n{index}");
    let urls = asset_urls(&index);
    assert!(urls.iter().any(|u| u.ends_with(".wasm")) && urls.iter().any(|u| u.ends_with(".css")), "{urls:?}");

    let mut first_load = index.len();
    for url in &urls {
        let br = app.client.get(app.url(url)).header(ACCEPT_ENCODING, "gzip, br").send().await.unwrap();
        assert_eq!(br.status(), StatusCode::OK, "{url}");
        assert_eq!(br.headers()[CONTENT_ENCODING], "br", "{url}");
        assert_eq!(br.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable", "{url}");
        let kind = br.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        let expected = match url.rsplit('.').next() {
            Some("wasm") => "application/wasm",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset {other:?}"),
        };
        assert_eq!(kind, expected, "{url}");
        first_load += br.bytes().await.unwrap().len();
        let gzip = app.client.get(app.url(url)).header(ACCEPT_ENCODING, "gzip").send().await.unwrap();
        assert_eq!(gzip.headers()[CONTENT_ENCODING], "gzip", "{url}");
    }
    assert!(first_load <= FIRST_LOAD_BUDGET, "first load {first_load} bytes compressed");
    let missing = app.client.get(app.url("/assets/portal_bg-0000000000000000.wasm")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// The `name=value` of a response's `Set-Cookie` for `name`, and its attributes.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_is_a_cookie_script_cannot_read_and_other_sites_cannot_use() {
    let app = spawn_app(Backend::Sqlite).await;
    create_staff(&app, "billing", "bill@practice.example");
    let origin = format!("https://{}", app.address);
    let credentials = json!({ "email": "bill@practice.example", "password": STAFF_PASSWORD });
    let sign_in = app.url("/api/v1/browser/sign-in");

    let without_header = app.client.post(&sign_in).header("Origin", &origin).json(&credentials).send().await.unwrap();
    assert_eq!(without_header.status(), StatusCode::FORBIDDEN, "login CSRF: no anti-CSRF header");
    let body: serde_json::Value = without_header.json().await.unwrap();
    assert_eq!(body["code"], "csrf");
    let other_site = app
        .client
        .post(&sign_in)
        .header("Origin", "https://evil.example")
        .header("X-Confidant-Csrf", "1")
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(other_site.status(), StatusCode::FORBIDDEN, "another origin");

    let signed_in = app
        .client
        .post(&sign_in)
        .header("Origin", &origin)
        .header("X-Confidant-Csrf", "1")
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = set_cookie(&signed_in, "__Host-confidant-session").expect("a session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Domain="), "a __Host- cookie is host-only: {cookie}");
    let body: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(body["status"], "signed_in");
    assert!(!body.to_string().contains("cfa_"), "no token in the body: {body}");
    assert_eq!(body["session"]["idle_timeout_secs"], 900);
    let pair = cookie.split(';').next().unwrap().to_owned();

    // A reload: the cookie alone says who is signed in.
    let session = app.client.get(app.url("/api/v1/browser/session")).header("Cookie", &pair).send().await.unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    assert_eq!(session.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(session.json::<serde_json::Value>().await.unwrap()["role"], "billing");

    // A state change with the cookie needs the header, from this origin.
    let forged = app.client.post(app.url("/api/v1/sign-out")).header("Cookie", &pair).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let still = app.client.get(app.url("/api/v1/browser/session")).header("Cookie", &pair).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK, "the refused request changed nothing");

    let out = app
        .client
        .post(app.url("/api/v1/sign-out"))
        .header("Cookie", &pair)
        .header("Origin", &origin)
        .header("X-Confidant-Csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let cleared = set_cookie(&out, "__Host-confidant-session").expect("the cookie is deleted");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(out.headers()["clear-site-data"], "\"cache\", \"storage\"");
    let after = app.client.get(app.url("/api/v1/browser/session")).header("Cookie", &pair).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

/// Starts `tests/browser/{script}` against `app`, beside the test (`STAFF_PASSWORD` set unless
/// `env` sets it).
fn start_browser_script(app: &TestApp, script: &str, env: &[(&str, String)]) -> BrowserScript {
    let mut all = vec![("STAFF_PASSWORD", STAFF_PASSWORD.to_owned())];
    all.extend(env.iter().cloned());
    BrowserScript::start(app, script, &all)
}

/// Runs `tests/browser/{script}` against `app`; panics with its output unless it passes.
fn run_browser_script(app: &TestApp, script: &str, env: &[(&str, String)]) {
    start_browser_script(app, script, env).finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_front_desk_a_clinician_and_a_patient_use_the_portal_in_a_real_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    create_staff(&app, "practice_owner", "owner@practice.example");
    create_staff(&app, "front_desk", "desk@practice.example");
    let env = [
        ("OWNER_EMAIL", "owner@practice.example".to_owned()),
        ("DESK_EMAIL", "desk@practice.example".to_owned()),
        ("CLINICIAN_EMAIL", "ana.ruiz@practice.example".to_owned()),
    ];
    run_browser_script(&app, "portal_flow.py", &env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_warns_then_says_it_ended_in_the_browser() {
    let env = vec![("CONFIDANT_IDENTITY__SESSION_IDLE_SECS", "20".to_owned())];
    let app = spawn_app_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    create_staff(&app, "billing", "bill@practice.example");
    run_browser_script(&app, "idle.py", &[("STAFF_EMAIL", "bill@practice.example".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_sees_a_sign_in_attack_and_a_failed_backup_live_and_acknowledges_them_in_a_real_browser() {
    // Backups every 2 s into a directory the script later replaces with a file.
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let key = crate::backup::age_key(work.path());
    let mut env = crate::backup_schedule::schedule_env(&backups, &key.recipient, 2);
    env.push(("CONFIDANT_IDENTITY__ADDRESS_FREE_FAILURES", "3".to_owned()));
    let app = spawn_app_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    create_staff(&app, "practice_owner", "owner@practice.example");
    let script_env =
        [("OWNER_EMAIL", "owner@practice.example".to_owned()), ("BACKUP_DIRECTORY", backups.display().to_string())];
    run_browser_script(&app, "security_alert.py", &script_env);
}

/// Reads `path` as `who` and decodes it as the portal does.
async fn read_as<T: serde::de::DeserializeOwned>(app: &TestApp, who: &crate::signin::Person, path: &str) -> T {
    let (status, body) = who.session.get(app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("the portal cannot read {path}: {e}\n{body}"))
}

/// One definition per answer would be better still (the portal's REST types live in
/// `portal/src/api.rs`); until then this test keeps the two from drifting: every answer a
/// screen reads comes from the real server and is decoded with the portal's own type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_reads_every_answer_the_server_gives() {
    use confidant_portal::api::{
        AlertView, Assignment, AuditStatus, AuditVerification, BreakGlassGrant, CareTeamMember, ChartAlerts,
        Invitation, Me, PatientRecord, Preferences, Reminder, SignIn, StaffMember, Submitted, UserRow,
    };
    use reqwest::Method;

    use crate::signin::{owner, patient, patient_record, staff};
    use crate::wsclient::signed_in;

    let app = spawn_app(Backend::Sqlite).await;
    let owner = owner(&app).await;
    let ana = staff(&app, &owner, "clinician", "ana@practice.example").await;
    let ben = staff(&app, &owner, "clinician", "ben@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let record = patient_record(&app, &ana, "Ada Lovelace").await;
    let ada = patient(&app, &desk, &record, "ada@mail.example").await;

    let body = json!({ "role": "billing", "email": "bill@practice.example", "display_name": "Bo Reed" });
    let (status, made) = owner.session.call(&app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let _: Invitation = serde_json::from_value(made).unwrap();
    let start = 1_900_000_000_000i64;
    let body = json!({ "clinician_id": ana.session.user_id, "patient_id": record, "starts_at_ms": start, "ends_at_ms": start + 3_000_000 });
    let (status, booked) = desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let appointment = booked["id"].as_str().unwrap().to_owned();
    let (status, _) =
        desk.session.call(&app, Method::POST, &format!("/api/v1/appointments/{appointment}/reminders"), None).await;
    assert!(status.is_success(), "{status}");
    let forms = format!("/api/v1/patients/{record}/intake-forms");
    let (_, assigned) = ana.session.call(&app, Method::POST, &forms, Some(json!({ "form": "phq9" }))).await;
    let assignment = assigned["assignment_id"].as_str().unwrap().to_owned();
    let mut phone = signed_in(&app, &ada.session.access).await;
    let answers = json!({ "item1": 2, "item2": 1, "item3": 1, "item4": 2, "item5": 0, "item6": 1, "item7": 0, "item8": 0, "item9": 1, "difficulty": 1 });
    phone
        .send(json!({ "v": 1, "type": "intake.submit", "id": "s1", "assignment_id": assignment, "answers": answers }))
        .await;
    assert_eq!(phone.frame().await["type"], "ack");
    let reason = json!({ "reason": "patient in crisis at the front desk, their clinician is away" });
    let (status, _) =
        ben.session.call(&app, Method::POST, &format!("/api/v1/patients/{record}/break-glass"), Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = owner.session.call(&app, Method::POST, "/api/v1/audit/verify", None).await;
    assert_eq!(status, StatusCode::OK);

    let me: Me = read_as(&app, &ana, "/api/v1/browser/session").await;
    assert_eq!((me.role.as_str(), me.open_notes), ("clinician", false));
    let records: Vec<PatientRecord> = read_as(&app, &desk, "/api/v1/patients").await;
    assert!(records.iter().any(|r| r.id.is_some_and(|id| id.to_string() == record)));
    let _: PatientRecord = read_as(&app, &ana, &format!("/api/v1/patients/{record}")).await;
    let users: Vec<UserRow> = read_as(&app, &owner, "/api/v1/users").await;
    assert!(users.iter().any(|u| u.label() == "Bo Reed"));
    let directory: Vec<StaffMember> = read_as(&app, &ada, "/api/v1/staff").await;
    assert!(directory.iter().all(|m| m.label() != "ana@practice.example"), "no staff email for a patient");
    let team: Vec<CareTeamMember> = read_as(&app, &desk, &format!("/api/v1/patients/{record}/care-team")).await;
    assert_eq!(team.len(), 1);
    let listed: Vec<Assignment> = read_as(&app, &ana, &forms).await;
    assert!(listed[0].urgent && listed[0].submitted_at_ms.is_some());
    let submitted: Submitted = read_as(&app, &ana, &format!("/api/v1/intake-forms/{assignment}")).await;
    assert!(submitted.score.is_some_and(|s| s.urgent && s.total == 8));
    let chart: ChartAlerts = read_as(&app, &ana, &format!("/api/v1/patients/{record}/alerts")).await;
    assert!(chart.urgent);
    let alerts: Vec<AlertView> = read_as(&app, &ana, "/api/v1/alerts").await;
    assert!(!alerts.is_empty());
    let reminders: Vec<Reminder> = read_as(&app, &desk, &format!("/api/v1/appointments/{appointment}/reminders")).await;
    assert!(!reminders.is_empty());
    let _: Preferences = read_as(&app, &ada, &format!("/api/v1/patients/{record}/reminder-preferences")).await;
    let grants: Vec<BreakGlassGrant> = read_as(&app, &owner, "/api/v1/break-glass").await;
    assert!(grants.iter().all(|g| g.reason.is_some()), "owners see the reasons");
    let audit: AuditStatus = read_as(&app, &owner, "/api/v1/audit/status").await;
    assert!(audit.last_verification.is_some_and(|v: AuditVerification| v.intact));

    // Clinical notes: the templates, a note whole, a chart's list, the co-sign queue, the
    // screening series.
    use confidant_portal::api::{ListedTemplate, Note, NoteSummary, ScreeningSeries};
    let templates: Vec<ListedTemplate> = read_as(&app, &ana, "/api/v1/note-templates").await;
    assert!(templates.iter().any(|t| t.definition.key == "biopsychosocial" && t.built_in));
    let notes = format!("/api/v1/patients/{record}/notes");
    let (status, begun) = ana.session.call(&app, Method::POST, &notes, Some(json!({ "template_key": "soap" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{begun}");
    let note: Note = read_as(&app, &ana, &format!("/api/v1/notes/{}", begun["note_id"].as_str().unwrap())).await;
    assert!(note.context.phq9.is_some() && note.template.sections.len() == 4);
    let listed: Vec<NoteSummary> = read_as(&app, &desk, &notes).await;
    assert_eq!(listed.len(), 1);
    let _: Vec<NoteSummary> = read_as(&app, &ana, "/api/v1/cosign-queue").await;
    let definition = json!({ "key": "brief", "title": "Brief", "kind": "progress",
        "sections": [{ "id": "risk", "label": "Risk", "type": "choice", "options": ["low", "high"] }] });
    let (status, added) = owner.session.call(&app, Method::POST, "/api/v1/note-templates", Some(definition)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let added: ListedTemplate = serde_json::from_value(added).unwrap();
    assert_eq!((added.definition.version, added.definition.sections[0].options.len()), (1, 2));
    let body = json!({ "supervisor_id": ana.session.user_id });
    let path = format!("/api/v1/users/{}/supervisor", ben.session.user_id);
    assert_eq!(owner.session.call(&app, Method::PUT, &path, Some(body)).await.0, StatusCode::NO_CONTENT);
    let pairs: Vec<confidant_portal::api::Supervision> = read_as(&app, &owner, "/api/v1/supervisions").await;
    assert_eq!(pairs.len(), 1);
    let series: ScreeningSeries = read_as(&app, &ana, &format!("/api/v1/patients/{record}/screening-series")).await;
    assert_eq!(series.phq9.len(), 1);

    // The sign-in answers, as the browser session gives them.
    let origin = format!("https://{}", app.address);
    let signed = app
        .client
        .post(app.url("/api/v1/browser/sign-in"))
        .header("Origin", &origin)
        .header("X-Confidant-Csrf", "1")
        .json(&json!({ "email": "ana@practice.example", "password": crate::signin::PASSWORD }))
        .send()
        .await
        .unwrap();
    let answer: SignIn = signed.json().await.unwrap();
    assert!(matches!(answer, SignIn::MfaRequired), "{answer:?}");
}

/// `canary` (typed in a browser) is in neither PostgreSQL database (pg_dump), nor any file of
/// the data directory, nor the server's logs.
async fn assert_canary_nowhere(app: &TestApp, canary: &str) {
    let stored = crate::messaging::stored_bytes(app, Backend::Postgres).await;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            files.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    for (what, bytes) in [("a database", &stored), ("the data directory", &files)] {
        assert!(!crate::messaging::contains(bytes, canary), "{what} holds the canary");
    }
    app.assert_logs_free_of(canary);
}

/// A sentence typed in the browser that the server must never hold in a readable form.
const MESSAGING_CANARY: &str = "canary: I have been skipping the lithium since June";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_on_two_browsers_and_a_clinician_message_end_to_end_on_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let owner = crate::signin::owner(&app).await;
    create_staff(&app, "clinician", "dr.ruiz@practice.example");
    let (status, users) = owner.session.get(&app, "/api/v1/users").await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let clinician = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "dr.ruiz@practice.example")
        .map(|u| u["user_id"].as_str().unwrap().to_owned())
        .unwrap();
    let record = crate::signin::patient_record(&app, &owner, "Ada Lovelace").await;
    let (status, body) = owner
        .session
        .call(&app, reqwest::Method::PUT, &format!("/api/v1/patients/{record}/care-team/{clinician}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let token = crate::signin::invite(&app, &owner, "patient", "ada@mail.example", Some(&record)).await;
    assert_eq!(crate::signin::accept(&app, &token).await, StatusCode::OK);

    let env = [
        ("CLINICIAN_EMAIL", "dr.ruiz@practice.example".to_owned()),
        ("PATIENT_EMAIL", "ada@mail.example".to_owned()),
        ("PATIENT_PASSWORD", crate::signin::PASSWORD.to_owned()),
        ("CANARY", MESSAGING_CANARY.to_owned()),
    ];
    run_browser_script(&app, "messaging.py", &env);

    // The server carried the sentence without ever holding it readable: not in the main or
    // audit database (pg_dump), the data directory's files, or the logs.
    assert_canary_nowhere(&app, MESSAGING_CANARY).await;
}

/// The terminal client, built with the workspace (`cargo test --workspace` builds every binary).
fn chat_binary() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| PathBuf::from(root).join("target"), PathBuf::from);
    let binary = target.join("debug/confidant-chat");
    assert!(
        binary.exists(),
        "{} is missing: scripts/test builds it (cargo build -p confidant-client --bin confidant-chat)",
        binary.display()
    );
    binary
}

/// Interoperability (`interop.py`), then bad input toward the same browser from a second
/// clinician's misbehaving devices (`bad_input.rs`), in turns with the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_patient_and_a_terminal_clinician_converse_and_bad_input_breaks_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let owner = crate::signin::owner(&app).await;
    let email = "dr.ruiz@practice.example";
    create_staff(&app, "clinician", email);
    // The clinician's TOTP, enrolled here; the terminal client is given a later code.
    let session = crate::signin::sign_in(&app, email, STAFF_PASSWORD, None).await;
    let (status, enrollment) = session.call(&app, reqwest::Method::POST, "/api/v1/me/totp", None).await;
    assert_eq!(status, StatusCode::OK, "{enrollment}");
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    let code = crate::signin::Authenticator::from_base32(&secret).next_code();
    let (status, body) =
        session.call(&app, reqwest::Method::POST, "/api/v1/me/totp/confirm", Some(json!({ "code": code }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let record = crate::signin::patient_record(&app, &owner, "Ada Lovelace").await;
    let path = format!("/api/v1/patients/{record}/care-team/{}", session.user_id);
    let (status, body) = owner.session.call(&app, reqwest::Method::PUT, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ada = crate::signin::patient(&app, &owner, &record, "ada@mail.example").await;
    // A second clinician of Ada's care team, whose devices misbehave toward her browser.
    let mallory = crate::signin::staff(&app, &owner, "clinician", "dr.mallory@practice.example").await;
    let path = format!("/api/v1/patients/{record}/care-team/{}", mallory.session.user_id);
    let (status, body) = owner.session.call(&app, reqwest::Method::PUT, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let mallory = crate::messaging::server(&app).with_token(&mallory.session.access);
    let (record_id, ada_id) = (record.parse().unwrap(), ada.session.user_id.parse().unwrap());

    let env = [
        ("CHAT_BIN", chat_binary().display().to_string()),
        ("CA_PEM", app.dev_cert().display().to_string()),
        ("CLINICIAN_EMAIL", email.to_owned()),
        ("CLINICIAN_TOTP_SECRET", secret),
        ("PATIENT_ID", record),
        ("PATIENT_USER_ID", ada.session.user_id.clone()),
        ("PATIENT_EMAIL", ada.email.clone()),
        ("PATIENT_PASSWORD", crate::signin::PASSWORD.to_owned()),
        ("CANARY", MESSAGING_CANARY.to_owned()),
    ];
    let mut script = start_browser_script(&app, "interop.py", &env);
    crate::bad_input::misbehave(&mut script, &mallory, record_id, ada_id).await;
    script.finish();
    let stored = crate::messaging::stored_bytes(&app, Backend::Sqlite).await;
    assert!(!crate::messaging::contains(&stored, MESSAGING_CANARY), "the data directory holds the canary");
    app.assert_logs_free_of(MESSAGING_CANARY);
}

/// A sentence typed into a clinical note in the browser: sealed at rest, never logged.
const NOTE_CANARY: &str = "canary: she told me about the second overdose in March";

/// A member of staff invited by `owner` under `name`, TOTP enrolled over REST: their session, the
/// authenticator's secret and two recovery codes (the browser signs in with either).
async fn named_staff(
    app: &TestApp,
    owner: &crate::signin::Person,
    role: &str,
    email: &str,
    name: &str,
) -> (crate::signin::Session, String, Vec<String>) {
    use reqwest::Method;
    let body = json!({ "role": role, "email": email, "display_name": name });
    let (status, made) = owner.session.call(app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["invitation_token"].as_str().unwrap().to_owned();
    assert_eq!(crate::signin::accept(app, &token).await, StatusCode::OK);
    let session = crate::signin::sign_in(app, email, crate::signin::PASSWORD, None).await;
    let (status, enrollment) = session.call(app, Method::POST, "/api/v1/me/totp", None).await;
    assert_eq!(status, StatusCode::OK, "{enrollment}");
    let secret = enrollment["secret"].as_str().unwrap().to_owned();
    let code = crate::signin::Authenticator::from_base32(&secret).next_code();
    let (status, codes) =
        session.call(app, Method::POST, "/api/v1/me/totp/confirm", Some(json!({ "code": code }))).await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let recovery = codes["recovery_codes"].as_array().unwrap().iter().take(2).map(|c| c.as_str().unwrap().to_owned());
    (session, secret, recovery.collect())
}

/// One server, one script: an owner adds a template and marks a supervision in the browser;
/// clinicians write, sign, amend and co-sign; front desk sees no content; the patient reads
/// their signed notes under open notes. On PostgreSQL (the portal's other scripts run on
/// SQLite), so the notes screens run on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinicians_write_sign_amend_and_cosign_notes_in_a_real_browser_and_front_desk_sees_no_content() {
    use reqwest::Method;

    let env = vec![("CONFIDANT_NOTES__OPEN_NOTES", "true".to_owned())];
    let app = spawn_app_with(Backend::Postgres, Options { env, ..Options::default() }).await;
    let owner = crate::signin::owner(&app).await;
    let (_, _, olive_recovery) =
        named_staff(&app, &owner, "practice_owner", "olive@practice.example", "Olive Park").await;
    let (ana_session, ana_secret, ana_recovery) =
        named_staff(&app, &owner, "clinician", "ana@practice.example", "Dr. Ana Ruiz").await;
    let (ben_session, ben_secret, _) = named_staff(&app, &owner, "clinician", "ben@practice.example", "Ben Ode").await;
    let (ana, ben) = (ana_session.user_id.clone(), ben_session.user_id.clone());
    let (_, desk_secret, _) = named_staff(&app, &owner, "front_desk", "desk@practice.example", "Sam Lee").await;
    let record = crate::signin::patient_record(&app, &owner, "Ada Lovelace").await;
    for clinician in [&ana, &ben] {
        let path = format!("/api/v1/patients/{record}/care-team/{clinician}");
        let (status, body) = owner.session.call(&app, Method::PUT, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    // Two PHQ-9 results (20, then 14) and a GAD-7 (9) for the chart, given by Ana.
    let ada = crate::signin::patient(&app, &owner, &record, "ada@mail.example").await;
    let mut phone = crate::wsclient::signed_in(&app, &ada.session.access).await;
    for (n, (form, items)) in [
        ("phq9", vec![3, 3, 3, 3, 2, 2, 2, 2, 0]),
        ("phq9", vec![2, 2, 2, 2, 2, 2, 1, 1, 0]),
        ("gad7", vec![2, 2, 1, 1, 1, 1, 1]),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/api/v1/patients/{record}/intake-forms");
        let (status, assigned) = ana_session.call(&app, Method::POST, &path, Some(json!({ "form": form }))).await;
        assert_eq!(status, StatusCode::CREATED, "{assigned}");
        let answers: serde_json::Map<String, serde_json::Value> =
            items.iter().enumerate().map(|(i, v)| (format!("item{}", i + 1), json!(v))).collect();
        let frame = json!({ "v": 1, "type": "intake.submit", "id": format!("s{n}"), "assignment_id": assigned["assignment_id"], "answers": answers });
        phone.send(frame).await;
        assert_eq!(phone.frame().await["type"], "ack");
    }

    let env = [
        ("STAFF_PASSWORD", crate::signin::PASSWORD.to_owned()),
        ("OWNER_EMAIL", "olive@practice.example".to_owned()),
        ("OWNER_RECOVERY", olive_recovery[0].clone()),
        ("ANA_EMAIL", "ana@practice.example".to_owned()),
        ("ANA_ID", ana),
        ("ANA_SECRET", ana_secret),
        ("ANA_RECOVERY", ana_recovery.join(" ")),
        ("BEN_EMAIL", "ben@practice.example".to_owned()),
        ("BEN_ID", ben),
        ("BEN_SECRET", ben_secret),
        ("DESK_EMAIL", "desk@practice.example".to_owned()),
        ("DESK_SECRET", desk_secret),
        ("PATIENT_ID", record),
        ("PATIENT_EMAIL", ada.email.clone()),
        ("PATIENT_PASSWORD", crate::signin::PASSWORD.to_owned()),
        ("CANARY", NOTE_CANARY.to_owned()),
    ];
    run_browser_script(&app, "notes.py", &env);

    // The note was typed, autosaved, resumed, signed and shown (to the patient too) without the
    // server ever keeping the sentence readable: not in the main or audit database (pg_dump),
    // the data directory's files, or the logs.
    assert_canary_nowhere(&app, NOTE_CANARY).await;
}
