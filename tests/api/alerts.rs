//! Alerts are never lost: stored with the event that raised them, sent to a recipient who was
//! offline when they connect (and again after a reconnect), cleared on every device by one
//! acknowledgement, flagged on the patient's forms and chart until a clinician documents
//! follow-up, and delivered across nodes. Against the real server, both backends; escalation
//! with a manual clock and a real SMTP server is in `escalation.rs`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};
use crate::signin::{Person, owner, patient, patient_record, sign_in, staff};
use crate::wsclient::{Event, WsClient, signed_in};

/// PHQ-9 with every item at 3: a total of 27 (severe) and item 9 above zero.
fn worst_phq9() -> Value {
    let answers: serde_json::Map<String, Value> = (1..=9).map(|n| (format!("item{n}"), json!(3))).collect();
    Value::Object(answers)
}

/// A clinician with a patient who has an account and a PHQ-9 assigned; returns the assignment.
struct Practice {
    owner: Person,
    clinician: Person,
    desk: Person,
    record: String,
    ada: Person,
    assignment: String,
}

async fn practice(app: &TestApp) -> Practice {
    let owner = owner(app).await;
    let clinician = staff(app, &owner, "clinician", "dr.a@practice.example").await;
    let desk = staff(app, &owner, "front_desk", "desk@practice.example").await;
    let record = patient_record(app, &clinician, "Ada Lovelace").await;
    let ada = patient(app, &desk, &record, "ada@mail.example").await;
    let path = format!("/api/v1/patients/{record}/intake-forms");
    let (status, assigned) = clinician.session.call(app, Method::POST, &path, Some(json!({ "form": "phq9" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    let assignment = assigned["assignment_id"].as_str().unwrap().to_owned();
    Practice { owner, clinician, desk, record, ada, assignment }
}

/// The patient submits `answers` over her own socket.
async fn submit(app: &TestApp, p: &Practice, answers: Value) {
    let mut laptop = signed_in(app, &p.ada.session.access).await;
    let frame =
        json!({ "v": 1, "type": "intake.submit", "id": "s1", "assignment_id": p.assignment, "answers": answers });
    laptop.send(frame).await;
    assert_eq!(laptop.frame().await["type"], "ack");
}

/// The alerts a socket receives until it has been quiet for a moment, one per `alert_id` (an
/// alert arrives again when it escalates, or around a reconnect; the latest frame counts).
async fn alerts_received(socket: &mut WsClient) -> Vec<Value> {
    let mut alerts: Vec<Value> = Vec::new();
    loop {
        match socket.next(Duration::from_millis(700)).await {
            Event::Frame(frame) if frame["type"] == "alert" => {
                alerts.retain(|a| a["alert_id"] != frame["alert_id"]);
                alerts.push(frame);
            }
            Event::Frame(_) => {}
            _ => return alerts,
        }
    }
}

fn kinds(alerts: &[Value]) -> Vec<&str> {
    let mut kinds: Vec<&str> = alerts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds
}

fn id_of<'a>(alerts: &'a [Value], kind: &str) -> &'a str {
    alerts.iter().find(|a| a["kind"] == kind).unwrap()["alert_id"].as_str().unwrap()
}

async fn the_urgent_flag(app: &TestApp, p: &Practice) -> (bool, bool) {
    let (status, forms) = p.clinician.session.get(app, &format!("/api/v1/patients/{}/intake-forms", p.record)).await;
    assert_eq!(status, StatusCode::OK, "{forms}");
    let form = forms.as_array().unwrap().iter().find(|f| f["assignment_id"] == p.assignment.as_str()).unwrap();
    let (status, chart) = p.clinician.session.get(app, &format!("/api/v1/patients/{}/alerts", p.record)).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    (form["urgent"].as_bool().unwrap(), chart["urgent"].as_bool().unwrap())
}

async fn an_offline_clinician_receives_the_alert_on_connect_and_one_ack_clears_it_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = practice(&app).await;
    // Nobody is connected when Ada submits.
    submit(&app, &p, worst_phq9()).await;

    // Both of the clinician's devices receive every alert when they connect.
    let mut laptop = signed_in(&app, &p.clinician.session.access).await;
    let replayed = alerts_received(&mut laptop).await;
    assert_eq!(kinds(&replayed), ["intake_submitted", "phq9_item9", "phq9_severe"], "{replayed:?}");
    let urgent = id_of(&replayed, "phq9_item9").to_owned();
    let alert = replayed.iter().find(|a| a["alert_id"] == urgent.as_str()).unwrap();
    assert_eq!(
        (alert["urgent"].as_bool(), alert["patient_id"].as_str(), alert["assignment_id"].as_str()),
        (Some(true), Some(p.record.as_str()), Some(p.assignment.as_str()))
    );
    let phone_session = sign_in(&app, &p.clinician.email, crate::signin::PASSWORD, p.clinician.totp.as_ref()).await;
    let mut phone = signed_in(&app, &phone_session.access).await;
    assert_eq!(alerts_received(&mut phone).await.len(), 3);
    assert_eq!(the_urgent_flag(&app, &p).await, (true, true), "the form and the chart are flagged");

    // Acknowledged on the laptop: cleared on the phone (and the laptop) at once.
    laptop.send(json!({ "v": 1, "type": "alert.ack", "id": "a1", "alert_id": urgent })).await;
    let mut answered = false;
    for _ in 0..2 {
        let frame = laptop.frame().await;
        match frame["type"].as_str() {
            Some("ack") => answered = true,
            Some("alert.updated") => assert_eq!(frame["alert_id"], urgent.as_str()),
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(answered);
    let cleared = phone.frame().await;
    assert_eq!(
        (cleared["type"].as_str(), cleared["alert_id"].as_str(), cleared["state"].as_str()),
        (Some("alert.updated"), Some(urgent.as_str()), Some("acknowledged"))
    );
    assert_eq!(cleared["by"], p.clinician.session.user_id.as_str());

    // A new connection no longer receives it; the flag stays until follow-up is documented.
    drop(phone);
    let mut again = signed_in(&app, &phone_session.access).await;
    let still = alerts_received(&mut again).await;
    assert_eq!(kinds(&still), ["intake_submitted", "phq9_severe"]);
    assert_eq!(the_urgent_flag(&app, &p).await, (true, true));

    // Follow-up: required, a clinician's, refused empty and refused to front desk.
    let follow_up = format!("/api/v1/alerts/{urgent}/follow-up");
    let (status, refused) =
        p.clinician.session.call(&app, Method::POST, &follow_up, Some(json!({ "note": "  " }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["code"], "invalid_field");
    let note = json!({ "note": "Called Ada at 14:05; safe, plan reviewed, session moved to tomorrow." });
    let (status, _) = p.desk.session.call(&app, Method::POST, &follow_up, Some(note.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, done) = p.clinician.session.call(&app, Method::POST, &follow_up, Some(note.clone())).await;
    assert_eq!((status, done["state"].as_str()), (StatusCode::OK, Some("resolved")), "{done}");
    let (status, _) = p.clinician.session.call(&app, Method::POST, &follow_up, Some(note)).await;
    assert_eq!(status, StatusCode::CONFLICT, "documented once");
    assert_eq!(the_urgent_flag(&app, &p).await, (true, true), "the severe total still waits");

    // Acknowledging with the follow-up at once (over the socket) clears the last flag.
    let severe = id_of(&still, "phq9_severe").to_owned();
    let frame = json!({ "v": 1, "type": "alert.ack", "id": "a2", "alert_id": severe, "follow_up": "Reviewed with Ada in session." });
    again.send(frame).await;
    assert_eq!(alerts_or_ack(&mut again).await, "ack");
    assert_eq!(the_urgent_flag(&app, &p).await, (false, false));
    let (_, chart) = p.clinician.session.get(&app, &format!("/api/v1/patients/{}/alerts", p.record)).await;
    let listed: Vec<_> = chart["alerts"].as_array().unwrap().iter().map(|a| a["state"].as_str().unwrap()).collect();
    assert_eq!(listed, ["resolved", "resolved"]);
    assert!(chart["alerts"].as_array().unwrap().iter().all(|a| a["follow_up"].is_string()));

    // The caller's list over REST; front desk and the patient cannot read the chart's alerts.
    let (status, mine) = p.clinician.session.get(&app, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine.as_array().unwrap().len(), 3);
    for who in [&p.desk, &p.ada] {
        let (status, _) = who.session.get(&app, &format!("/api/v1/patients/{}/alerts", p.record)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Ada's own list of forms carries no urgent flag.
    let (_, forms) = p.ada.session.get(&app, &format!("/api/v1/patients/{}/intake-forms", p.record)).await;
    assert!(forms[0].get("urgent").is_none(), "{forms}");

    let entries = app.audit_entries();
    let audited =
        |reason: &str| entries.iter().filter(|e| e["reason"] == reason && e["resource_type"] == "alert").count();
    assert_eq!(audited("alert_raised"), 3);
    assert!(audited("alert_delivered") >= 8, "every replayed alert is an audited read");
    assert_eq!(audited("alert_acknowledged"), 1);
    assert_eq!(audited("alert_followed_up"), 2);
    let _ = &p.owner;
}

/// The next frame's type, skipping `alert.updated` pushes.
async fn alerts_or_ack(socket: &mut WsClient) -> String {
    loop {
        let frame = socket.frame().await;
        if frame["type"] != "alert.updated" {
            return frame["type"].as_str().unwrap().to_owned();
        }
    }
}

async fn owners_receive_a_break_glass_alert_raised_while_they_were_away(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let a = staff(&app, &owner, "clinician", "a@practice.example").await;
    let b = staff(&app, &owner, "clinician", "b@practice.example").await;
    let record = patient_record(&app, &a, "Ada Lovelace").await;
    let reason = json!({ "reason": "covering the crisis line tonight" });
    let (status, _) =
        b.session.call(&app, Method::POST, &format!("/api/v1/patients/{record}/break-glass"), Some(reason)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut owners = signed_in(&app, &owner.session.access).await;
    let alerts = alerts_received(&mut owners).await;
    assert_eq!(kinds(&alerts), ["break_glass"]);
    assert_eq!(
        (alerts[0]["clinician_id"].as_str(), alerts[0]["urgent"].as_bool()),
        (Some(b.session.user_id.as_str()), Some(false))
    );
    // Not a recipient: the clinician cannot acknowledge the owners' alert.
    let ack = format!("/api/v1/alerts/{}/ack", alerts[0]["alert_id"].as_str().unwrap());
    let (status, _) = b.session.call(&app, Method::POST, &ack, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, acked) = owner.session.call(&app, Method::POST, &ack, None).await;
    assert_eq!((status, acked["state"].as_str()), (StatusCode::OK, Some("resolved")), "{acked}");
    let (status, _) = owner.session.call(&app, Method::POST, &ack, Some(json!({ "follow_up": 5 }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed body changes nothing");
}

crate::on_both_backends!(
    an_offline_clinician_receives_the_alert_on_connect_and_one_ack_clears_it_everywhere,
    owners_receive_a_break_glass_alert_raised_while_they_were_away,
);

/// Two nodes on one PostgreSQL and one Redis: an alert raised on node A reaches the clinician
/// connected to node B live, and is replayed from the database to one who connects to B later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_raised_on_one_node_reaches_the_other_live_and_on_connect() {
    let redis = std::env::var("CONFIDANT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let channel = format!("confidant-test:{}", uuid::Uuid::new_v4().simple());
    let env = vec![("CONFIDANT_REDIS_URL", redis), ("CONFIDANT_HUB__REDIS_CHANNEL", channel)];
    let a = spawn_app_with(Backend::Postgres, Options { env: env.clone(), ..Default::default() }).await;
    let shared = (a.main_db.as_ref().unwrap().url(), a.audit_db.as_ref().unwrap().url());
    let b =
        spawn_app_with(Backend::Postgres, Options { env, shared_databases: Some(shared), ..Default::default() }).await;
    let p = practice(&a).await;

    let mut on_b = signed_in(&b, &p.clinician.session.access).await;
    assert!(alerts_received(&mut on_b).await.is_empty());
    submit(&a, &p, worst_phq9()).await;
    let live = alerts_received(&mut on_b).await;
    assert_eq!(kinds(&live), ["intake_submitted", "phq9_item9", "phq9_severe"], "live from node A");

    let later = sign_in(&b, &p.clinician.email, crate::signin::PASSWORD, p.clinician.totp.as_ref()).await;
    let mut later_on_b = signed_in(&b, &later.access).await;
    assert_eq!(alerts_received(&mut later_on_b).await.len(), 3, "replayed from the database");

    // Acknowledged on node B: the socket on node B hears it, and node A no longer replays it.
    let urgent = id_of(&live, "phq9_item9");
    let (status, _) = p.clinician.session.call(&b, Method::POST, &format!("/api/v1/alerts/{urgent}/ack"), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut on_a = signed_in(&a, &later.access).await;
    assert_eq!(kinds(&alerts_received(&mut on_a).await), ["intake_submitted", "phq9_severe"]);
    let _ = (&p.owner, &p.desk);
}
