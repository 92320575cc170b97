//! End-to-end encrypted messaging against the real server, through the Rust client SDK
//! (openmls on the devices, tokio-tungstenite over TLS), both backends; and two nodes through
//! Redis. The server validates and orders MLS handshakes and stores ciphertext it cannot read.

use std::time::Duration;

use confidant_client::{AckPolicy, Api, ClientError, Connection, ConversationKind, Device, Event, Server};
use confidant_protocol::{ClientFrame, ServerFrame};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::signin::{Person, owner, patient, patient_record, staff};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn server(app: &TestApp) -> Server {
    Server::new(&app.url(""), &std::fs::read(app.dev_cert()).unwrap()).unwrap()
}

pub(crate) fn id(person: &Person) -> Uuid {
    person.session.user_id.parse().unwrap()
}

/// The next event that is not a membership change.
pub(crate) async fn next_message(device: &mut Device, socket: &mut Connection) -> Event {
    loop {
        match device.next_event(socket, WAIT).await.unwrap() {
            Some(Event::Changed { .. }) => continue,
            Some(event) => return event,
            None => panic!("no event within {WAIT:?}"),
        }
    }
}

pub(crate) async fn text_of(device: &mut Device, socket: &mut Connection) -> String {
    match next_message(device, socket).await {
        Event::Message { text, .. } => String::from_utf8(text).unwrap(),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// A clinician's device and a patient's device, each attached over its own socket, in a new
/// conversation about `record` that the clinician started and the patient joined.
pub(crate) async fn converse(
    clinician: &Api,
    patient: &Api,
    record: Uuid,
    patient_user: Uuid,
) -> (Device, Connection, Device, Connection, Uuid) {
    let mut dr = Device::register(clinician).await.unwrap();
    let mut phone = Device::register(patient).await.unwrap();
    let mut dr_socket = dr.connect(clinician).await.unwrap();
    let mut phone_socket = phone.connect(patient).await.unwrap();
    let conversation = dr.create_conversation(clinician, &mut dr_socket, record, &[patient_user]).await.unwrap();
    assert_eq!(next_message(&mut phone, &mut phone_socket).await, Event::Joined { conversation });
    (dr, dr_socket, phone, phone_socket, conversation)
}

/// A clinician and their patient Ada (`record`), each signed in with one device, in one
/// conversation about Ada. Bind `app` (the server) and both sockets for as long as a test needs
/// them: a field left to `..` is dropped at once.
pub(crate) struct Conversing {
    pub(crate) app: TestApp,
    pub(crate) owner: Person,
    pub(crate) clinician: Person,
    pub(crate) ada: Person,
    pub(crate) record: String,
    pub(crate) api_dr: Api,
    pub(crate) api_ada: Api,
    pub(crate) dr: Device,
    pub(crate) dr_socket: Connection,
    pub(crate) phone: Device,
    pub(crate) phone_socket: Connection,
    pub(crate) conversation: Uuid,
}

pub(crate) async fn dr_and_ada_conversing(backend: Backend) -> Conversing {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = patient(&app, &clinician, &record, "ada@mail.example").await;
    let server = server(&app);
    let (api_dr, api_ada) = (server.with_token(&clinician.session.access), server.with_token(&ada.session.access));
    let (dr, dr_socket, phone, phone_socket, conversation) =
        converse(&api_dr, &api_ada, record.parse().unwrap(), id(&ada)).await;
    Conversing { app, owner, clinician, ada, record, api_dr, api_ada, dr, dr_socket, phone, phone_socket, conversation }
}

/// Every byte the databases hold, as text, for searching.
pub(crate) async fn stored_bytes(app: &TestApp, backend: Backend) -> Vec<u8> {
    let mut all = Vec::new();
    match backend {
        Backend::Sqlite => {
            for entry in walk(app.data_dir.path()) {
                all.extend(std::fs::read(entry).unwrap_or_default());
            }
        }
        Backend::Postgres => {
            for db in [app.main_db.as_ref().unwrap(), app.audit_db.as_ref().unwrap()] {
                let output = std::process::Command::new("pg_dump").args(["--data-only", &db.url()]).output().unwrap();
                assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
                all.extend(output.stdout);
            }
        }
    }
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn the_sdk_signs_in_with_a_password_and_a_totp_code_when_the_account_asks(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let record = patient_record(&app, &owner, "Ada Lovelace").await;
    let ada = patient(&app, &owner, &record, "ada@mail.example").await;
    let server = server(&app);

    // A patient without a second factor: the password is enough.
    let api = server.sign_in(&ada.email, crate::signin::PASSWORD, None).await.unwrap();
    assert_eq!(api.user_id().await.unwrap(), id(&ada));
    let wrong = server.sign_in(&ada.email, "not the passphrase at all", None).await;
    assert!(
        matches!(wrong, Err(ClientError::Refused { status: 401, ref code }) if code == "invalid_credentials"),
        "{:?}",
        wrong.err()
    );

    // The owner enrolled TOTP: asked for it, then signed in with it.
    let asked = server.sign_in(&owner.email, crate::signin::PASSWORD, None).await;
    assert!(matches!(asked, Err(ClientError::MfaRequired)), "{:?}", asked.err());
    let code = owner.totp.as_ref().unwrap().next_code();
    let api = server.sign_in(&owner.email, crate::signin::PASSWORD, Some(&code)).await.unwrap();
    assert_eq!(api.user_id().await.unwrap(), id(&owner));
}

async fn patient_and_clinician_converse_end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = patient(&app, &clinician, &record, "ada@mail.example").await;
    let other_record = patient_record(&app, &clinician, "Grace Hopper").await;
    let grace = patient(&app, &clinician, &other_record, "grace@mail.example").await;
    let record: Uuid = record.parse().unwrap();
    let server = server(&app);
    let (api_dr, api_ada, api_grace) = (
        server.with_token(&clinician.session.access),
        server.with_token(&ada.session.access),
        server.with_token(&grace.session.access),
    );

    // Devices register; the clinician starts a conversation about Ada with Ada.
    let (mut dr, mut dr_socket, mut phone, mut phone_socket, conversation) =
        converse(&api_dr, &api_ada, record, id(&ada)).await;

    // Both ways.
    dr.send(&mut dr_socket, conversation, b"secret one: how are you sleeping").await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "secret one: how are you sleeping");
    phone.send(&mut phone_socket, conversation, b"secret two: better this week").await.unwrap();
    assert_eq!(text_of(&mut dr, &mut dr_socket).await, "secret two: better this week");

    // A second device of Ada's joins and reads new messages.
    let mut laptop = Device::register(&api_ada).await.unwrap();
    let mut laptop_socket = laptop.connect(&api_ada).await.unwrap();
    dr.add_users(&api_dr, &mut dr_socket, conversation, record, &[id(&ada)]).await.unwrap();
    assert_eq!(next_message(&mut laptop, &mut laptop_socket).await, Event::Joined { conversation });
    dr.send(&mut dr_socket, conversation, b"secret three: to both devices").await.unwrap();
    assert_eq!(text_of(&mut laptop, &mut laptop_socket).await, "secret three: to both devices");
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "secret three: to both devices");

    // Another patient can neither claim their way in nor send or fetch.
    let claim = json!({ "user_id": id(&ada), "patient_id": record });
    let (status, _) = grace.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let claim = json!({ "user_id": id(&grace), "patient_id": record });
    let (status, _) = clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Grace may not be added to Ada's conversation");
    let intruder = Device::register(&api_grace).await.unwrap();
    let mut intruder_socket = intruder.connect(&api_grace).await.unwrap();
    let forged = dr.encrypt(conversation, b"secret four: forged").unwrap();
    let refused = intruder_socket.request(|id| ClientFrame::mls_send(id, conversation, base64(&forged))).await;
    assert!(matches!(refused, Err(ClientError::Refused { ref code, .. }) if code == "not_found"), "{refused:?}");
    let listed = api_grace_conversations(&app, &grace, intruder.device_id).await;
    assert_eq!(listed, 0);

    // The laptop is removed: it is told, and cannot read what follows.
    dr.remove_device(&mut dr_socket, conversation, id(&ada), laptop.device_id).await.unwrap();
    assert_eq!(next_message(&mut laptop, &mut laptop_socket).await, Event::Removed { conversation });
    let after = dr.encrypt(conversation, b"secret five: after removal").unwrap();
    let sent = dr_socket.request(|id| ClientFrame::mls_send(id, conversation, base64(&after))).await.unwrap();
    assert!(matches!(sent, ServerFrame::MlsAccepted { .. }), "{sent:?}");
    assert!(laptop.decrypt(conversation, &after).is_err(), "a removed device cannot decrypt");
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "secret five: after removal");
    assert!(laptop.next_event(&mut laptop_socket, Duration::from_millis(500)).await.unwrap().is_none());

    // The phone goes offline, misses three messages, and catches up in order (from its state file).
    let state = app.data_dir.path().join("phone.state");
    let key = [7u8; 32];
    phone.save(&state, &key).await.unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the state file is its owner's alone");
        assert!(!state.with_extension("tmp").exists(), "nothing is left beside it");
    }
    phone_socket.close().await;
    drop(phone);
    for n in 6..=8 {
        dr.send(&mut dr_socket, conversation, format!("secret {n}: while offline").as_bytes()).await.unwrap();
    }
    let mut phone = Device::load(&state, &key).unwrap();
    assert!(Device::load(&state, &[8u8; 32]).is_err(), "the state file needs its key");
    let mut phone_socket = phone.connect(&api_ada).await.unwrap();
    for n in 6..=8 {
        assert_eq!(text_of(&mut phone, &mut phone_socket).await, format!("secret {n}: while offline"));
    }

    // Two commits in one epoch: exactly one wins; the other device catches up and retries.
    let first = dr.stage_self_update(conversation).unwrap();
    let second = phone.stage_self_update(conversation).unwrap();
    let won = dr.send_commit(&mut dr_socket, conversation, first).await;
    let lost = phone.send_commit(&mut phone_socket, conversation, second).await;
    assert!(won.is_ok(), "{won:?}");
    assert!(matches!(lost, Err(ClientError::Stale(_))), "{lost:?}");
    let changed = phone.next_event(&mut phone_socket, WAIT).await.unwrap();
    assert!(matches!(changed, Some(Event::Changed { epoch: 4, .. })), "{changed:?}");
    let retry = phone.stage_self_update(conversation).unwrap();
    phone.send_commit(&mut phone_socket, conversation, retry).await.unwrap();
    // The clinician's device is a commit behind: the server refuses what it encrypts until it
    // has processed the phone's commit.
    let behind = dr.send(&mut dr_socket, conversation, b"secret 8.5: one epoch behind").await;
    assert!(matches!(behind, Err(ClientError::Stale(5))), "{behind:?}");
    let changed = dr.next_event(&mut dr_socket, WAIT).await.unwrap();
    assert!(matches!(changed, Some(Event::Changed { epoch: 5, .. })), "{changed:?}");
    // Both were on record as submitted before they lost their epoch; the trail also says that
    // neither took effect.
    let lost_epoch: Vec<(String, String)> = app
        .audit_entries()
        .iter()
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.ends_with("_stale_epoch")))
        .map(|e| (e["reason"].as_str().unwrap().to_owned(), e["outcome"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [("mls_commit_stale_epoch", "error"), ("mls_application_stale_epoch", "error")];
    assert_eq!(lost_epoch, expected.map(|(r, o)| (r.to_owned(), o.to_owned())));
    dr.send(&mut dr_socket, conversation, b"secret nine: after the race").await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "secret nine: after the race");
    phone.send(&mut phone_socket, conversation, b"secret ten: still in sync").await.unwrap();
    assert_eq!(text_of(&mut dr, &mut dr_socket).await, "secret ten: still in sync");

    // Nothing the server keeps or logs holds a word of what was said.
    let stored = stored_bytes(&app, backend).await;
    for phrase in ["how are you sleeping", "better this week", "to both devices", "after removal", "while offline"] {
        assert!(!contains(&stored, phrase), "the database holds {phrase:?}");
        app.assert_logs_free_of(phrase);
    }
}

async fn api_grace_conversations(app: &TestApp, grace: &Person, device: Uuid) -> usize {
    let (status, list) = grace.session.get(app, &format!("/api/v1/devices/{device}/conversations")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().len()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn keypackages_are_bound_to_their_device_and_used_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = patient(&app, &clinician, &record, "ada@mail.example").await;
    let server = server(&app);
    let api_ada = server.with_token(&ada.session.access);
    let phone = Device::register(&api_ada).await.unwrap();

    // The same signature key cannot be registered twice; a malformed key is refused.
    let (status, _) = ada
        .session
        .call(&app, Method::POST, "/api/v1/devices", Some(json!({ "signature_key": base64(&[1u8; 31]) })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Claims hand out each one-time package once, then the last-resort one.
    let claim = json!({ "user_id": id(&ada), "patient_id": record });
    let mut seen = std::collections::HashSet::new();
    for _ in 0..confidant_client::device::KEY_PACKAGE_BATCH {
        let (status, claimed) =
            clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim.clone())).await;
        assert_eq!(status, StatusCode::OK, "{claimed}");
        let package = claimed[0]["key_package"].as_str().unwrap().to_owned();
        assert_eq!(claimed[0]["device_id"], phone.device_id.to_string());
        assert!(seen.insert(package), "a one-time KeyPackage was handed out twice");
    }
    let (_, last) = clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim.clone())).await;
    let (_, again) = clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(claim)).await;
    assert_eq!(last[0]["key_package"], again[0]["key_package"], "the last-resort package stays");

    // Garbage and another device's packages are refused.
    let path = format!("/api/v1/devices/{}/key-packages", phone.device_id);
    let (status, body) = ada.session.call(&app, Method::POST, &path, Some(json!({ "key_packages": ["AAAA"] }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let laptop = Device::register(&api_ada).await.unwrap();
    let foreign = laptop_package(&laptop);
    let (status, _) = ada.session.call(&app, Method::POST, &path, Some(json!({ "key_packages": [foreign] }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a KeyPackage of another device");
}

fn laptop_package(device: &Device) -> String {
    base64(&device.key_package_bytes().unwrap())
}

async fn two_nodes_deliver_through_redis() {
    let redis = std::env::var("CONFIDANT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let channel = format!("confidant-test:{}", Uuid::new_v4().simple());
    let env = vec![("CONFIDANT_REDIS_URL", redis), ("CONFIDANT_HUB__REDIS_CHANNEL", channel)];
    let a = spawn_app_with(Backend::Postgres, Options { env: env.clone(), ..Default::default() }).await;
    let shared = (a.main_db.as_ref().unwrap().url(), a.audit_db.as_ref().unwrap().url());
    let b =
        spawn_app_with(Backend::Postgres, Options { env, shared_databases: Some(shared), ..Default::default() }).await;
    let owner = owner(&a).await;
    let clinician = staff(&a, &owner, "clinician", "dr.a@practice.example").await;
    let record = patient_record(&a, &clinician, "Ada Lovelace").await;
    let ada = patient(&a, &clinician, &record, "ada@mail.example").await;
    let record: Uuid = record.parse().unwrap();

    let (on_a, on_b) = (server(&a), server(&b));
    let (api_dr, api_ada) = (on_a.with_token(&clinician.session.access), on_b.with_token(&ada.session.access));
    let (mut dr, mut dr_socket, mut phone, mut phone_socket, conversation) =
        converse(&api_dr, &api_ada, record, id(&ada)).await;
    dr.send(&mut dr_socket, conversation, b"from node a").await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "from node a");
    phone.send(&mut phone_socket, conversation, b"from node b").await.unwrap();
    assert_eq!(text_of(&mut dr, &mut dr_socket).await, "from node b");
    drop(b);
}

/// The cursor the server keeps for `device` in `conversation` (`None`: not a member), read
/// from the database as an operator would.
pub(crate) async fn stored_cursor(app: &TestApp, backend: Backend, device: Uuid, conversation: Uuid) -> Option<i64> {
    use sqlx::Connection as _;
    let sql = "SELECT acked_seq FROM conversation_devices WHERE device_id = $1 AND conversation_id = $2";
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.data_dir.path().join("confidant.db").display());
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let query = sqlx::query_scalar(sql).bind(device.to_string()).bind(conversation.to_string());
            query.fetch_optional(&mut db).await.unwrap()
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&app.main_db.as_ref().unwrap().url()).await.unwrap();
            let query = sqlx::query_scalar(sql).bind(device.to_string()).bind(conversation.to_string());
            query.fetch_optional(&mut db).await.unwrap()
        }
    }
}

/// Waits until the stored cursor is `expected` (acknowledgements are not answered to the SDK).
pub(crate) async fn await_cursor(app: &TestApp, backend: Backend, device: Uuid, conversation: Uuid, expected: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let expected = Some(i64::try_from(expected).unwrap());
    loop {
        let stored = stored_cursor(app, backend, device, conversation).await;
        if stored == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cursor is {stored:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn staff_members_converse_in_a_staff_conversation_no_patient_can_join(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = patient(&app, &clinician, &record, "ada@mail.example").await;
    let record: Uuid = record.parse().unwrap();
    let server = server(&app);
    let (api_dr, api_desk, api_ada) = (
        server.with_token(&clinician.session.access),
        server.with_token(&desk.session.access),
        server.with_token(&ada.session.access),
    );

    // A clinician starts a staff conversation with the front desk; both ways.
    let mut dr = Device::register(&api_dr).await.unwrap();
    let mut counter = Device::register(&api_desk).await.unwrap();
    let mut dr_socket = dr.connect(&api_dr).await.unwrap();
    let mut counter_socket = counter.connect(&api_desk).await.unwrap();
    let conversation =
        dr.create_conversation(&api_dr, &mut dr_socket, ConversationKind::Staff, &[id(&desk)]).await.unwrap();
    assert_eq!(next_message(&mut counter, &mut counter_socket).await, Event::Joined { conversation });
    dr.send(&mut dr_socket, conversation, b"staff one: can you move my 3pm").await.unwrap();
    assert_eq!(text_of(&mut counter, &mut counter_socket).await, "staff one: can you move my 3pm");
    counter.send(&mut counter_socket, conversation, b"staff two: moved to 4pm").await.unwrap();
    assert_eq!(text_of(&mut dr, &mut dr_socket).await, "staff two: moved to 4pm");
    let (status, listed) =
        desk.session.get(&app, &format!("/api/v1/devices/{}/conversations", counter.device_id)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["kind"], "staff");
    assert_eq!(listed[0]["patient_id"], serde_json::Value::Null);

    // A patient's KeyPackages cannot be claimed for it, nor can a patient claim a staff
    // member's for it; for a conversation they may both be in (about Ada), they can.
    let phone = Device::register(&api_ada).await.unwrap();
    let staff_claim = |user: Uuid| json!({ "user_id": user, "kind": "staff" });
    let (status, _) =
        clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(staff_claim(id(&ada)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a patient may not be in a staff conversation");
    let (status, _) =
        ada.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(staff_claim(id(&clinician)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a patient may not claim for a staff conversation");
    let care_claim = json!({ "user_id": id(&clinician), "patient_id": record });
    let (status, claimed) = ada.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(care_claim)).await;
    assert_eq!(status, StatusCode::OK, "Ada and her clinician may converse about her: {claimed}");

    // A commit adding the patient's device (its KeyPackage claimed for a conversation about
    // her) is refused, and the staff conversation goes on without it.
    let added = dr.add_users(&api_dr, &mut dr_socket, conversation, record, &[id(&ada)]).await;
    assert!(matches!(added, Err(ClientError::Refused { ref code, .. }) if code == "forbidden"), "{added:?}");
    assert_eq!(stored_cursor(&app, backend, phone.device_id, conversation).await, None);
    dr.send(&mut dr_socket, conversation, b"staff three: after the refusal").await.unwrap();
    assert_eq!(text_of(&mut counter, &mut counter_socket).await, "staff three: after the refusal");

    // Bad input: a staff conversation names no patient, a care conversation one.
    for body in [
        json!({ "user_id": id(&desk), "kind": "staff", "patient_id": record }),
        json!({ "user_id": id(&desk) }),
        json!({ "user_id": id(&desk), "kind": "care" }),
    ] {
        let (status, answer) =
            clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(body)).await;
        assert_eq!((status, answer["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")), "{answer}");
    }
    let both = json!({ "device_id": dr.device_id, "kind": "staff", "patient_id": record, "group_info": "", "ratchet_tree": "" });
    let (status, _) = clinician.session.call(&app, Method::POST, "/api/v1/conversations", Some(both)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The audit trail has the staff conversation's messages and the refused commit, about no
    // patient, and no content.
    let entries = app.audit_entries();
    let in_conversation: Vec<_> =
        entries.iter().filter(|e| e["resource_id"] == conversation.to_string().as_str()).collect();
    assert!(in_conversation.iter().all(|e| e["patient_id"].is_null()), "{in_conversation:?}");
    assert!(in_conversation.iter().any(|e| e["resource_type"] == "message" && e["outcome"] == "denied"));
    assert!(entries.iter().any(|e| e["reason"] == "staff_conversation_created" && e["patient_id"].is_null()));

    // Disabling the front desk account takes its device out of the conversation, and no claim
    // for a staff conversation reaches its KeyPackages any more.
    let path = format!("/api/v1/users/{}/disable", id(&desk));
    let (status, _) = owner.session.call(&app, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stored_cursor(&app, backend, counter.device_id, conversation).await, None);
    let (status, _) =
        clinician.session.call(&app, Method::POST, "/api/v1/key-packages/claim", Some(staff_claim(id(&desk)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let stored = stored_bytes(&app, backend).await;
    for phrase in ["can you move my 3pm", "moved to 4pm", "after the refusal"] {
        assert!(!contains(&stored, phrase), "the database holds {phrase:?}");
        app.assert_logs_free_of(phrase);
    }
}

async fn an_acknowledgement_covers_everything_before_it_and_never_moves_back(backend: Backend) {
    let Conversing { app, api_ada, mut dr, mut dr_socket, phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let mut last = 0;
    for n in 1..=4 {
        last = dr.send(&mut dr_socket, conversation, format!("message {n}").as_bytes()).await.unwrap();
    }
    let ack = |seq: u64| move |id: String| ClientFrame::mls_ack(id, conversation, seq);

    // One acknowledgement of the last seq covers the four before it.
    phone_socket.request(ack(last)).await.unwrap();
    assert_eq!(stored_cursor(&app, backend, phone.device_id, conversation).await, Some(last as i64));
    // An older one, or one past the stream, changes nothing.
    phone_socket.request(ack(last - 3)).await.unwrap();
    phone_socket.request(ack(last + 100)).await.unwrap();
    assert_eq!(stored_cursor(&app, backend, phone.device_id, conversation).await, Some(last as i64));

    // Attaching again replays only what follows the cursor.
    let next = dr.send(&mut dr_socket, conversation, b"message 5").await.unwrap();
    let mut again = phone.connect(&api_ada).await.unwrap();
    let first = again.next(WAIT).await.unwrap().unwrap();
    assert!(matches!(first, ServerFrame::MlsMessage { seq, .. } if seq == next), "{first:?}");
}

async fn a_burst_of_messages_is_acknowledged_in_a_few_frames_after_it_is_saved(backend: Backend) {
    let Conversing { app, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let (state, key) = (app.data_dir.path().join("phone.state"), [9u8; 32]);
    phone.use_state_file(&state, &key);
    // Only the end of the burst, or its size, sends an acknowledgement here: not the clock.
    phone.set_ack_policy(AckPolicy { every: 64, within: Duration::from_secs(600) });
    phone.flush_acks(&mut phone_socket).await.unwrap();
    let before = phone.acks_sent();

    // A burst arrives while the phone is busy elsewhere; it then reads all of it.
    const BURST: u64 = 40;
    let mut last = 0;
    for n in 1..=BURST {
        last = dr.send(&mut dr_socket, conversation, format!("burst {n}").as_bytes()).await.unwrap();
    }
    for n in 1..=BURST {
        assert_eq!(text_of(&mut phone, &mut phone_socket).await, format!("burst {n}"));
    }
    assert!(phone.next_event(&mut phone_socket, Duration::from_millis(300)).await.unwrap().is_none());

    // Far fewer acknowledgements than messages, and the server's cursor is at the last one.
    let acks = phone.acks_sent() - before;
    assert!((1..=BURST / 8).contains(&acks), "{acks} acknowledgements for {BURST} messages");
    await_cursor(&app, backend, phone.device_id, conversation, last).await;
    // What was acknowledged had been saved: a restart from the file resumes after it.
    let saved = Device::load(&state, &key).unwrap();
    assert_eq!(saved.cursor(conversation), Some(last));
}

async fn a_sender_that_bursts_gets_every_answer_and_keeps_its_socket(backend: Backend) {
    use base64::Engine;
    let Conversing {
        app: _app, mut dr, mut dr_socket, phone: _phone, phone_socket: _phone_socket, conversation, ..
    } = dr_and_ada_conversing(backend).await;

    // Many sends written without waiting for their answers: the server commits them in a few
    // batches, and each batch's answers arrive at the socket together (more than 64 at once,
    // which used to close it with 4008).
    const BURST: usize = 1_500;
    for n in 0..BURST {
        let message = base64::engine::general_purpose::STANDARD.encode(dr.encrypt(conversation, b"burst").unwrap());
        dr_socket.send(&ClientFrame::mls_send(n.to_string(), conversation, message)).await.unwrap();
    }
    let mut accepted = vec![false; BURST];
    while accepted.iter().any(|a| !a) {
        let frame = dr_socket.next(Duration::from_secs(10)).await.unwrap().expect("an answer, not a close");
        match frame {
            ServerFrame::MlsAccepted { id, .. } => accepted[id.parse::<usize>().unwrap()] = true,
            other => assert!(matches!(other, ServerFrame::MlsMessage { .. }), "{other:?}"),
        }
    }
}

async fn a_message_that_crosses_the_devices_own_is_processed_not_skipped(backend: Backend) {
    let Conversing { app, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;

    // The phone's message is stored first; the clinician sends before reading it, so its own
    // message gets the later seq.
    let crossing = phone.send(&mut phone_socket, conversation, b"crossing: from the phone").await.unwrap();
    let own = dr.send(&mut dr_socket, conversation, b"crossing: from the clinician").await.unwrap();
    assert_eq!(own, crossing + 1);
    assert_eq!(dr.cursor(conversation), Some(crossing - 1), "its own message does not cover the one before it");

    // The earlier message is still processed, and only then acknowledged through both.
    assert_eq!(text_of(&mut dr, &mut dr_socket).await, "crossing: from the phone");
    assert_eq!(dr.cursor(conversation), Some(own));
    dr.flush_acks(&mut dr_socket).await.unwrap();
    await_cursor(&app, backend, dr.device_id, conversation, own).await;
}

/// Makes the running server's audit store refuse every new entry (`refuse`), or take them again.
async fn audit_store_refuses(app: &TestApp, backend: Backend, refuse: bool) {
    use sqlx::Connection as _;
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.data_dir.path().join("audit.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let sql = if refuse {
                "CREATE TRIGGER test_refuses BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'refused'); END"
            } else {
                "DROP TRIGGER test_refuses"
            };
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.audit_db.as_ref().unwrap().url()).await.unwrap();
            let sql = if refuse {
                "ALTER TABLE audit_entries ADD CONSTRAINT test_refuses CHECK (false) NOT VALID"
            } else {
                "ALTER TABLE audit_entries DROP CONSTRAINT test_refuses"
            };
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }
}

async fn a_message_the_audit_trail_cannot_take_is_refused_and_neither_stored_nor_delivered(backend: Backend) {
    let Conversing { app, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let first = dr.send(&mut dr_socket, conversation, b"on record: the first").await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "on record: the first");

    audit_store_refuses(&app, backend, true).await;
    let refused = dr.send(&mut dr_socket, conversation, b"off record: never stored").await;
    assert!(matches!(refused, Err(ClientError::Refused { ref code, .. }) if code == "unavailable"), "{refused:?}");

    // Nothing took a seq or reached the phone: the next message follows the first directly.
    audit_store_refuses(&app, backend, false).await;
    let next = dr.send(&mut dr_socket, conversation, b"on record: the next").await.unwrap();
    assert_eq!(next, first + 1);
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "on record: the next");
}

async fn a_message_refused_before_storage_leaves_no_audit_record(backend: Backend) {
    let Conversing { app, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    dr.send(&mut dr_socket, conversation, b"on record").await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "on record");
    let recorded = || {
        app.audit_entries()
            .into_iter()
            .filter(|e| e["resource_id"] == conversation.to_string().as_str())
            .filter(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("mls_application")))
            .count()
    };
    let before = recorded();
    assert!(before >= 1);

    // Not an MLS message at all: refused, not stored, and not audited as a message sent.
    let refused = dr_socket.request(|id| ClientFrame::mls_send(id, conversation, base64(b"not MLS"))).await;
    assert!(matches!(refused, Err(ClientError::Refused { ref code, .. }) if code == "invalid_mls"), "{refused:?}");
    assert_eq!(recorded(), before);
}

/// A device's list of conversations names their patients, and a device attaching is replayed
/// what it missed: both are reads of the patient's PHI, on record with the reader.
async fn a_devices_conversation_list_and_its_replay_are_reads_on_record(backend: Backend) {
    let Conversing {
        app,
        clinician,
        ada,
        record,
        api_ada,
        mut dr,
        mut dr_socket,
        mut phone,
        phone_socket,
        conversation,
        ..
    } = dr_and_ada_conversing(backend).await;
    let readers = |reason: &str| -> Vec<Value> {
        app.audit_entries()
            .into_iter()
            .filter(|e| e["action"] == "read" && e["reason"] == reason && e["patient_id"] == record.as_str())
            .map(|e| e["actor_user_id"].clone())
            .collect()
    };

    let path = format!("/api/v1/devices/{}/conversations", dr.device_id);
    let (status, list) = clinician.session.get(&app, &path).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{list}");
    assert_eq!(readers("device_conversations"), [json!(clinician.session.user_id)]);

    drop(phone_socket);
    dr.send(&mut dr_socket, conversation, b"while you were away").await.unwrap();
    let mut phone_socket = phone.connect(&api_ada).await.unwrap();
    assert_eq!(text_of(&mut phone, &mut phone_socket).await, "while you were away");
    assert!(readers("device_replay").contains(&json!(ada.session.user_id)), "the replay on attach");
}

/// Whoever starts a conversation about Ada learns who may be in it: her own account and the
/// clinicians on her care team, by name; nobody off the care team may ask.
async fn the_people_of_a_patients_conversation_are_her_account_and_her_care_team(backend: Backend) {
    let Conversing { app, clinician, ada, record, .. } = dr_and_ada_conversing(backend).await;
    let path = format!("/api/v1/patients/{record}/participants");
    for asking in [&clinician, &ada] {
        let (status, people) = asking.session.get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{people}");
        let people = people.as_array().unwrap();
        assert_eq!(people.len(), 2, "{people:?}");
        assert!(people.iter().any(|p| p["user_id"] == ada.session.user_id.as_str() && p["role"] == "patient"));
        assert!(people.iter().any(|p| p["user_id"] == clinician.session.user_id.as_str() && p["role"] == "clinician"));
    }
    let email = "dr.b@practice.example";
    let (code, output) = app
        .cli(&["user", "create", "--role", "clinician", "--email", email], &format!("{}\n", crate::signin::PASSWORD));
    assert_eq!(code, Some(0), "{output}");
    let outsider = crate::signin::sign_in(&app, email, crate::signin::PASSWORD, None).await;
    crate::signin::enroll_totp(&app, &outsider).await;
    let (status, _) = outsider.get(&app, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let asked: Vec<Value> = app
        .audit_entries()
        .into_iter()
        .filter(|e| {
            e["resource_type"] == "conversation" && e["patient_id"] == record.as_str() && e["outcome"] == "success"
        })
        .collect();
    assert!(asked.len() >= 2, "each answer is on record with the patient");
}

/// A device removed at the server (a lost phone) is named to the other members until one of them
/// commits it out; after that commit it is gone from the list, and it reads nothing sent later.
async fn a_removed_device_is_named_until_a_member_commits_it_out(backend: Backend) {
    let Conversing { app, clinician, ada, api_ada, mut dr, mut dr_socket, phone, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let removed = |list: &Value| -> Vec<Value> {
        list.as_array().unwrap().iter().flat_map(|c| c["removed_devices"].as_array().unwrap().clone()).collect()
    };
    let path = format!("/api/v1/devices/{}/conversations", dr.device_id);
    let (_, before) = clinician.session.get(&app, &path).await;
    assert!(removed(&before).is_empty(), "{before}");

    phone.unregister(&api_ada).await.unwrap();
    let (status, listed) = clinician.session.get(&app, &path).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        removed(&listed),
        vec![json!({ "user_id": ada.session.user_id, "device_id": phone.device_id })],
        "the lost phone is named"
    );

    dr.remove_device(&mut dr_socket, conversation, id(&ada), phone.device_id).await.unwrap();
    let (_, after) = clinician.session.get(&app, &path).await;
    assert!(removed(&after).is_empty(), "committed out: {after}");
    assert!(!dr.members(conversation).unwrap().iter().any(|(_, d)| *d == phone.device_id));
}

/// A clinician taken off the patient's care team is named for removal, with every device, to
/// the conversation's other members.
async fn a_clinician_off_the_care_team_is_named_for_removal(backend: Backend) {
    let Conversing { app, owner, clinician, ada, record, phone, .. } = dr_and_ada_conversing(backend).await;
    let path = format!("/api/v1/devices/{}/conversations", phone.device_id);
    let (_, before) = ada.session.get(&app, &path).await;
    assert_eq!(before[0]["removed_devices"], json!([]), "{before}");
    let (status, body) = owner
        .session
        .call(&app, Method::DELETE, &format!("/api/v1/patients/{record}/care-team/{}", clinician.session.user_id), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, after) = ada.session.get(&app, &path).await;
    let named = after[0]["removed_devices"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{after}");
    assert_eq!(named[0]["user_id"], clinician.session.user_id.as_str());
}

/// The next `mls.receipt` on `socket` that `wanted` accepts (earlier receipts, of the group's
/// set-up, are passed over).
async fn receipt_where(socket: &mut Connection, wanted: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match socket.next(left).await.unwrap() {
            Some(frame @ ServerFrame::MlsReceipt { .. }) if wanted(&frame) => return frame,
            Some(_) => continue,
            None => panic!("no such receipt within {WAIT:?}"),
        }
    }
}

async fn a_sender_sees_its_message_delivered_then_read(backend: Backend) {
    let Conversing { app, clinician, ada, mut dr, mut dr_socket, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let seq = dr.send(&mut dr_socket, conversation, b"how was your week?").await.unwrap();
    let receipt = |delivered_seq, read_seq| ServerFrame::MlsReceipt {
        v: 1,
        conversation_id: conversation,
        user_id: id(&ada),
        delivered_seq,
        read_seq,
    };

    // Ada's phone takes the message in: the clinician's device hears it was delivered.
    phone_socket.request(|id| ClientFrame::mls_ack(id, conversation, seq)).await.unwrap();
    let delivered = receipt_where(
        &mut dr_socket,
        |f| matches!(f, ServerFrame::MlsReceipt { delivered_seq: Some(s), .. } if *s == seq),
    )
    .await;
    assert_eq!(delivered, receipt(Some(seq), None));

    // Ada reads it: read.
    phone_socket.request(|id| ClientFrame::mls_read(id, conversation, seq)).await.unwrap();
    let read = receipt_where(&mut dr_socket, |f| matches!(f, ServerFrame::MlsReceipt { read_seq: Some(_), .. })).await;
    assert_eq!(read, receipt(None, Some(seq)));

    // A read past the newest message is refused and changes nothing; an older one changes nothing.
    let refused = phone_socket.request(|id| ClientFrame::mls_read(id, conversation, seq + 5)).await;
    assert!(matches!(refused, Err(ClientError::Refused { .. })), "{refused:?}");
    phone_socket.request(|id| ClientFrame::mls_read(id, conversation, seq - 1)).await.unwrap();
    // Nor may a device read a conversation it is not in.
    let elsewhere = phone_socket.request(|id| ClientFrame::mls_read(id, Uuid::new_v4(), 1)).await;
    assert!(matches!(elsewhere, Err(ClientError::Refused { .. })), "{elsewhere:?}");

    // The list says the same to a device that was away.
    let path = format!("/api/v1/devices/{}/conversations", dr.device_id);
    let (status, list) = clinician.session.get(&app, &path).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let receipts = list[0]["receipts"].as_array().unwrap();
    let of_ada = receipts.iter().find(|r| r["user_id"] == ada.session.user_id.as_str()).unwrap();
    assert_eq!(of_ada, &json!({ "user_id": ada.session.user_id, "delivered_seq": seq, "read_seq": seq }));
    assert_eq!(receipts.len(), 2, "one row per person in the conversation: {list}");
}

crate::on_both_backends!(
    a_sender_sees_its_message_delivered_then_read,
    the_people_of_a_patients_conversation_are_her_account_and_her_care_team,
    a_removed_device_is_named_until_a_member_commits_it_out,
    a_clinician_off_the_care_team_is_named_for_removal,
    a_devices_conversation_list_and_its_replay_are_reads_on_record,
    the_sdk_signs_in_with_a_password_and_a_totp_code_when_the_account_asks,
    patient_and_clinician_converse_end_to_end,
    keypackages_are_bound_to_their_device_and_used_once,
    staff_members_converse_in_a_staff_conversation_no_patient_can_join,
    an_acknowledgement_covers_everything_before_it_and_never_moves_back,
    a_burst_of_messages_is_acknowledged_in_a_few_frames_after_it_is_saved,
    a_message_that_crosses_the_devices_own_is_processed_not_skipped,
    a_sender_that_bursts_gets_every_answer_and_keeps_its_socket,
    a_message_the_audit_trail_cannot_take_is_refused_and_neither_stored_nor_delivered,
    a_message_refused_before_storage_leaves_no_audit_record,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_messages_through_redis() {
    two_nodes_deliver_through_redis().await;
}
