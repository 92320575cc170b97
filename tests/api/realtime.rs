//! WebSocket sessions against the real server over TLS, both backends: the handshake's
//! refusals, authentication, bad frames, revocation, and live schedules with snapshot and
//! catch-up. (Idle and absolute limits with an injected clock: actors/tests/session.rs.)

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::signin::{Person, owner, patient_record, staff};
use crate::wsclient::{Event, open, signed_in};

fn handshake_status(error: tokio_tungstenite::tungstenite::Error) -> u16 {
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

async fn a_burst_faster_than_the_session_reads_is_slowed_down_not_disconnected(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let mut socket = signed_in(&app, &owner.session.access).await;
    // Far more frames at once than the session's queue (2,048) and the socket's outbound queue
    // (1,024) hold: the server stops reading until the session catches up, and answers each.
    const BURST: usize = 5_000;
    socket.send_burst((0..BURST).map(|_| "{not json".to_owned())).await;
    for n in 0..BURST {
        match socket.next(Duration::from_secs(10)).await {
            Event::Frame(frame) => assert_eq!(frame["code"], "malformed_frame", "answer {n}: {frame}"),
            other => panic!("answer {n}: expected an error frame, got {other:?}"),
        }
    }
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "after", "scope": "practice" })).await;
    assert_eq!(socket.frame().await["type"], "schedule.snapshot", "the session lives on");
}

async fn the_handshake_refuses_query_tokens_foreign_origins_and_floods(backend: Backend) {
    let options =
        Options { env: vec![("CONFIDANT_WS__MAX_UNAUTHENTICATED_PER_ADDRESS", "2".into())], ..Default::default() };
    let app = spawn_app_with(backend, options).await;
    let refused = open(&app, "?access_token=cfa_x", &["confidant.v1"], None).await.err().unwrap();
    assert_eq!(handshake_status(refused), 400, "a token in the URL is refused");
    let refused = open(&app, "", &["confidant.v1"], Some("https://evil.example")).await.err().unwrap();
    assert_eq!(handshake_status(refused), 403);
    let own = format!("https://localhost:{}", app.address.port());
    let _first = open(&app, "", &["confidant.v1"], Some(&own)).await.expect("the server's own origin is allowed");
    let _second = open(&app, "", &["confidant.v1"], None).await.unwrap();
    let refused = open(&app, "", &["confidant.v1"], None).await.err().unwrap();
    assert_eq!(handshake_status(refused), 429, "a third unauthenticated socket from one address");
}

async fn a_socket_authenticates_by_frame_or_subprotocol_and_closes_4004_otherwise(backend: Backend) {
    let options = Options { env: vec![("CONFIDANT_WS__AUTH_TIMEOUT_SECS", "1".into())], ..Default::default() };
    let app = spawn_app_with(backend, options).await;
    let owner = owner(&app).await;

    let by_frame = signed_in(&app, &owner.session.access).await;
    assert_eq!(by_frame.protocol.as_deref(), Some("confidant.v1"));

    let bearer = format!("bearer.{}", owner.session.access);
    let mut by_protocol = open(&app, "", &["confidant.v1", &bearer], None).await.unwrap();
    assert_eq!(by_protocol.protocol.as_deref(), Some("confidant.v1"), "the token is never echoed");
    let welcome = by_protocol.frame().await;
    assert_eq!((welcome["type"].as_str(), welcome["role"].as_str()), (Some("welcome"), Some("practice_owner")));
    assert_eq!(welcome["idle_timeout_secs"], 900);

    let mut silent = open(&app, "", &["confidant.v1"], None).await.unwrap();
    let started = Instant::now();
    assert_eq!(silent.closed(Duration::from_secs(5)).await, Some(4004));
    assert!(started.elapsed() < Duration::from_secs(3));

    let mut wrong = open(&app, "", &["confidant.v1"], None).await.unwrap();
    wrong.send(json!({ "v": 1, "type": "auth", "token": "cfa_not_a_token" })).await;
    assert_eq!(wrong.closed(Duration::from_secs(5)).await, Some(4004));
}

async fn bad_frames_get_error_frames_and_the_session_lives_on(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let mut socket = signed_in(&app, &owner.session.access).await;
    socket.send_text("{not json".into()).await;
    assert_eq!(socket.frame().await["code"], "malformed_frame");
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "x", "scope": "mine", "extra": true })).await;
    assert_eq!(socket.frame().await["code"], "malformed_frame");
    socket.send_text(format!(r#"{{"v":1,"type":"activity","pad":"{}"}}"#, "x".repeat(100_000))).await;
    assert_eq!(socket.frame().await["code"], "frame_too_large");
    socket.send_binary(vec![1, 2, 3]).await;
    assert_eq!(socket.frame().await["code"], "binary_not_supported");
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "p", "scope": "practice" })).await;
    let snapshot = socket.frame().await;
    assert_eq!(
        (snapshot["type"].as_str(), snapshot["id"].as_str()),
        (Some("schedule.snapshot"), Some("p")),
        "{snapshot}"
    );
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

async fn sign_out_disable_and_sign_out_everywhere_close_sockets_with_4003(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let other = crate::signin::sign_in(&app, &clinician.email, crate::signin::PASSWORD, clinician.totp.as_ref()).await;
    let mut first = signed_in(&app, &clinician.session.access).await;
    let mut second = signed_in(&app, &other.access).await;

    let started = Instant::now();
    let (status, _) = clinician.session.call(&app, Method::POST, "/api/v1/sign-out", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first.closed(Duration::from_secs(2)).await, Some(4003));
    assert!(started.elapsed() < Duration::from_secs(1), "closed within a second: {:?}", started.elapsed());
    assert_eq!(second.next(Duration::from_millis(300)).await, Event::Nothing, "the other session lives on");

    let path = format!("/api/v1/users/{}/disable", other_user(&other));
    let (status, _) = owner.session.call(&app, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(second.closed(Duration::from_secs(2)).await, Some(4003));

    let mut owners = signed_in(&app, &owner.session.access).await;
    let (status, _) = owner.session.call(&app, Method::POST, "/api/v1/sign-out-everywhere", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owners.closed(Duration::from_secs(2)).await, Some(4003));
}

fn other_user(session: &crate::signin::Session) -> &str {
    &session.user_id
}

async fn book(app: &TestApp, by: &Person, clinician: &str, patient: &str, start: i64) -> (StatusCode, Value) {
    let body = json!({ "clinician_id": clinician, "patient_id": patient, "starts_at_ms": start, "ends_at_ms": start + 3_000_000 });
    by.session.call(app, Method::POST, "/api/v1/appointments", Some(body)).await
}

async fn schedule_changes_are_pushed_live_and_caught_up_after_a_reconnect(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let patient = patient_record(&app, &clinician, "Ada Lovelace").await;
    let start = 1_900_000_000_000;
    let (status, first) = book(&app, &desk, &clinician.session.user_id, &patient, start).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    let mut mine = signed_in(&app, &clinician.session.access).await;
    mine.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s1", "scope": "mine" })).await;
    let snapshot = mine.frame().await;
    assert_eq!(snapshot["type"], "schedule.snapshot");
    assert_eq!(snapshot["appointments"].as_array().unwrap().len(), 1);
    let last = snapshot["last_event_id"].as_u64().unwrap();
    let mut practice = signed_in(&app, &desk.session.access).await;
    practice.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "p1", "scope": "practice" })).await;
    assert_eq!(practice.frame().await["type"], "schedule.snapshot");

    // A change through the API reaches both at once; a double booking is a 409 and pushes nothing.
    let started = Instant::now();
    let (status, second) = book(&app, &desk, &clinician.session.user_id, &patient, start + 3_600_000).await;
    assert_eq!(status, StatusCode::CREATED);
    let pushed = mine.frame().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!((pushed["type"].as_str(), pushed["change"].as_str()), (Some("schedule.changed"), Some("created")));
    assert_eq!(pushed["appointment"]["id"], second["id"]);
    assert_eq!(practice.frame().await["event_id"], pushed["event_id"]);
    let (status, body) = book(&app, &desk, &clinician.session.user_id, &patient, start + 600_000).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
    assert_eq!(mine.next(Duration::from_millis(300)).await, Event::Nothing);

    // Disconnected, the clinician misses a reschedule and a cancellation; reconnecting with the
    // last event id seen gets exactly those, then an ack.
    let seen = pushed["event_id"].as_u64().unwrap();
    assert!(seen > last);
    drop(mine);
    let moved = json!({ "starts_at_ms": start + 7_200_000, "ends_at_ms": start + 9_000_000 });
    let path = format!("/api/v1/appointments/{}", second["id"].as_str().unwrap());
    assert_eq!(desk.session.call(&app, Method::PUT, &path, Some(moved)).await.0, StatusCode::OK);
    let cancel = format!("/api/v1/appointments/{}/cancel", first["id"].as_str().unwrap());
    assert_eq!(desk.session.call(&app, Method::POST, &cancel, None).await.0, StatusCode::OK);

    let mut again = signed_in(&app, &clinician.session.access).await;
    again.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s2", "scope": "mine", "after": seen })).await;
    let changes: Vec<String> =
        [again.frame().await, again.frame().await].iter().map(|f| f["change"].as_str().unwrap().to_owned()).collect();
    assert_eq!(changes, ["rescheduled", "cancelled"]);
    let done = again.frame().await;
    assert_eq!((done["type"].as_str(), done["id"].as_str()), (Some("ack"), Some("s2")));

    // Each subscription's reads are audited per patient.
    let reads = app
        .audit_entries()
        .into_iter()
        .filter(|e| e["resource_type"] == "appointment" && e["reason"] == "schedule_subscription")
        .count();
    assert!(reads >= 3, "{reads}");
}

async fn a_clinician_cannot_book_or_watch_another_clinicians_schedule(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let a = staff(&app, &owner, "clinician", "a@practice.example").await;
    let b = staff(&app, &owner, "clinician", "b@practice.example").await;
    let patient = patient_record(&app, &a, "Ada Lovelace").await;
    let (status, _) = book(&app, &a, &b.session.user_id, &patient, 1_900_000_000_000).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not on their own schedule");
    let (status, _) = book(&app, &b, &b.session.user_id, &patient, 1_900_000_000_000).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not their patient");
    let mut socket = signed_in(&app, &a.session.access).await;
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "p", "scope": "practice" })).await;
    let refused = socket.frame().await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("forbidden")));
}

async fn sigterm_closes_sockets_with_going_away_and_exits_promptly(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let mut socket = signed_in(&app, &owner.session.access).await;
    let started = Instant::now();
    let status = app.stop_with("TERM");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "open sockets do not hold shutdown up: {:?}",
        started.elapsed()
    );
    assert_eq!(socket.closed(Duration::from_secs(2)).await, Some(1001));
}

/// Two nodes on one PostgreSQL and one Redis (a channel of this test's own): a schedule change
/// made through node A reaches a clinician connected to node B, and a sign-out on node A
/// closes that clinician's socket on node B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fan_out_through_redis() {
    let redis = std::env::var("CONFIDANT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let channel = format!("confidant-test:{}", uuid::Uuid::new_v4().simple());
    let env = vec![("CONFIDANT_REDIS_URL", redis.clone()), ("CONFIDANT_HUB__REDIS_CHANNEL", channel.clone())];
    let a = spawn_app_with(Backend::Postgres, Options { env: env.clone(), ..Default::default() }).await;
    let shared = (a.main_db.as_ref().unwrap().url(), a.audit_db.as_ref().unwrap().url());
    let b =
        spawn_app_with(Backend::Postgres, Options { env, shared_databases: Some(shared), ..Default::default() }).await;

    let owner = owner(&a).await;
    let desk = staff(&a, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&a, &owner, "clinician", "dr.a@practice.example").await;
    let patient = patient_record(&a, &clinician, "Ada Lovelace").await;

    let mut on_b = signed_in(&b, &clinician.session.access).await;
    on_b.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": "mine" })).await;
    assert_eq!(on_b.frame().await["type"], "schedule.snapshot");

    let started = Instant::now();
    let (status, booked) = book(&a, &desk, &clinician.session.user_id, &patient, 1_900_000_000_000).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let pushed = on_b.frame().await;
    assert_eq!(
        (pushed["type"].as_str(), pushed["appointment"]["id"].as_str()),
        (Some("schedule.changed"), booked["id"].as_str())
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let started = Instant::now();
    let (status, _) = clinician.session.call(&a, Method::POST, "/api/v1/sign-out", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(on_b.closed(Duration::from_secs(2)).await, Some(4003));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    drop(b);
}

async fn a_patient_fills_a_phq9_live_and_the_clinician_is_alerted_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let record = patient_record(&app, &clinician, "Ada Lovelace").await;
    let ada = crate::signin::patient(&app, &desk, &record, "ada@mail.example").await;
    let path = format!("/api/v1/patients/{record}/intake-forms");
    let (status, assigned) = clinician.session.call(&app, Method::POST, &path, Some(json!({ "form": "phq9" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    let assignment = assigned["assignment_id"].as_str().unwrap().to_owned();
    // Front desk may give a form (for a clinician of the care team) but never reads one.
    let (status, _) = desk.session.get(&app, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front desk never reads clinical forms");
    let (status, _) = desk.session.get(&app, &format!("/api/v1/intake-forms/{assignment}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "front desk never reads clinical forms");

    let mut watching = signed_in(&app, &clinician.session.access).await;
    let mut laptop = signed_in(&app, &ada.session.access).await;
    laptop.send(json!({ "v": 1, "type": "intake.open", "id": "o1", "assignment_id": assignment })).await;
    let form = laptop.frame().await;
    assert_eq!((form["type"].as_str(), form["form"]["title"].as_str()), (Some("intake.form"), Some("PHQ-9")), "{form}");
    assert_eq!(form["form"]["items"].as_array().unwrap().len(), 10);
    assert_eq!(form["answers"], json!({}));

    // Autosave as she types; a bad answer is refused by name, the rest is kept.
    laptop.send(json!({ "v": 1, "type": "intake.draft", "id": "d1", "assignment_id": assignment, "answers": { "item1": 2, "item2": 1 } })).await;
    assert_eq!(laptop.frame().await["type"], "ack");
    laptop.send(json!({ "v": 1, "type": "intake.draft", "id": "d2", "assignment_id": assignment, "answers": { "item1": 7 } })).await;
    let refused = laptop.frame().await;
    assert_eq!(
        (refused["code"].as_str(), refused["message"].as_str()),
        (Some("invalid_answer"), Some("`item1` is not one of the options"))
    );

    // Resumed on another device: the draft is there.
    let phone_session = crate::signin::sign_in(&app, &ada.email, crate::signin::PASSWORD, None).await;
    let mut phone = signed_in(&app, &phone_session.access).await;
    phone.send(json!({ "v": 1, "type": "intake.open", "id": "o2", "assignment_id": assignment })).await;
    assert_eq!(phone.frame().await["answers"], json!({ "item1": 2, "item2": 1 }));
    let incomplete =
        json!({ "v": 1, "type": "intake.submit", "id": "s0", "assignment_id": assignment, "answers": { "item1": 2 } });
    phone.send(incomplete).await;
    assert_eq!(phone.frame().await["code"], "invalid_answer");
    let answers = json!({ "item1": 2, "item2": 1, "item3": 1, "item4": 2, "item5": 0, "item6": 1, "item7": 0, "item8": 0, "item9": 1 });
    let started = Instant::now();
    phone
        .send(json!({ "v": 1, "type": "intake.submit", "id": "s1", "assignment_id": assignment, "answers": answers }))
        .await;
    assert_eq!(phone.frame().await["type"], "ack");

    let submitted = watching.frame().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(submitted["type"], "intake.submitted", "{submitted}");
    assert_eq!((submitted["score"].as_u64(), submitted["severity"].as_str()), (Some(8), Some("mild")));
    let (first, second) = (watching.frame().await, watching.frame().await);
    assert!(started.elapsed() < Duration::from_secs(2));
    let kinds = [first["kind"].as_str(), second["kind"].as_str()];
    assert_eq!(kinds, [Some("intake_submitted"), Some("phq9_item9")], "{first} {second}");
    assert_eq!((second["type"].as_str(), second["urgent"].as_bool()), (Some("alert"), Some(true)));
    assert_eq!(second["patient_id"], record.as_str());

    phone
        .send(json!({ "v": 1, "type": "intake.submit", "id": "s2", "assignment_id": assignment, "answers": answers }))
        .await;
    assert_eq!(phone.frame().await["code"], "already_submitted");
    let (status, response) = clinician.session.get(&app, &format!("/api/v1/intake-forms/{assignment}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((response["answers"]["item9"].as_u64(), response["score"]["urgent"].as_bool()), (Some(1), Some(true)));
    let (status, _) = desk.session.get(&app, &format!("/api/v1/intake-forms/{assignment}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let entries = app.audit_entries();
    let audited = |reason: &str| entries.iter().any(|e| e["reason"] == reason && e["patient_id"] == record.as_str());
    for reason in ["intake_opened", "intake_draft_saved", "intake_submitted", "urgent_alert_phq9_item9"] {
        assert!(audited(reason), "{reason} is audited");
    }
}

async fn owners_are_alerted_live_when_the_glass_is_broken(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let a = staff(&app, &owner, "clinician", "a@practice.example").await;
    let b = staff(&app, &owner, "clinician", "b@practice.example").await;
    let record = patient_record(&app, &a, "Ada Lovelace").await;
    let mut owners = signed_in(&app, &owner.session.access).await;
    let reason = json!({ "reason": "covering the crisis line tonight" });
    let (status, _) =
        b.session.call(&app, Method::POST, &format!("/api/v1/patients/{record}/break-glass"), Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED);
    let alert = owners.frame().await;
    assert_eq!(
        (alert["kind"].as_str(), alert["clinician_id"].as_str()),
        (Some("break_glass"), Some(b.session.user_id.as_str()))
    );
}

crate::on_both_backends!(
    a_patient_fills_a_phq9_live_and_the_clinician_is_alerted_at_once,
    owners_are_alerted_live_when_the_glass_is_broken,
    sigterm_closes_sockets_with_going_away_and_exits_promptly,
    the_handshake_refuses_query_tokens_foreign_origins_and_floods,
    a_burst_faster_than_the_session_reads_is_slowed_down_not_disconnected,
    a_socket_authenticates_by_frame_or_subprotocol_and_closes_4004_otherwise,
    bad_frames_get_error_frames_and_the_session_lives_on,
    sign_out_disable_and_sign_out_everywhere_close_sockets_with_4003,
    schedule_changes_are_pushed_live_and_caught_up_after_a_reconnect,
    a_clinician_cannot_book_or_watch_another_clinicians_schedule,
);
