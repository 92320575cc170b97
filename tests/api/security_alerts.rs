//! Owners are alerted to sign-in attack patterns: credential stuffing from one address and
//! guessing one account's password from many raise one `sign_in_attack` alert for the owners
//! (live, and over REST), naming the pattern, the source and the counts, never an email tried
//! or a password; one per pattern, source and window however long the attack goes on;
//! clinicians and front desk get none and cannot acknowledge it; an ordinary wrong password
//! raises none. Each source address is a loopback address of its own (127.0.0.x). Both backends.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, Options, TestApp, client_from, spawn_app, spawn_app_with};
use crate::signin::{PASSWORD, Person, authorize_with, owner, staff};
use crate::wsclient::{Event, WsClient, signed_in};

const WRONG: &str = "wrong password 12345";

fn from(app: &TestApp, last: u8) -> reqwest::Client {
    client_from(&app.dev_cert(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

async fn attempt(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> StatusCode {
    authorize_with(app, client, email, password).await.1
}

/// How long a run of failures is remembered without a new one, in the stuffing test: long
/// enough that a run's attempts on a loaded machine stay one run, short enough to wait out.
const MEMORY_SECS: u64 = 3;

/// A node whose limits are small enough for a test: three free failures per address, a lock of
/// one second that forgets a run after `memory_secs` without a failure (so a paused stuffing run
/// is noticed again), an account cap of eight, and a week's alert window (a test never straddles
/// two).
async fn practice(backend: Backend, memory_secs: u64) -> TestApp {
    let env = vec![
        ("CONFIDANT_IDENTITY__ADDRESS_FREE_FAILURES", "3".to_owned()),
        ("CONFIDANT_IDENTITY__ACCOUNT_CAP_FAILURES", "8".to_owned()),
        ("CONFIDANT_IDENTITY__LOCK_BASE_SECS", "1".to_owned()),
        ("CONFIDANT_IDENTITY__LOCK_MAX_SECS", "1".to_owned()),
        ("CONFIDANT_IDENTITY__FAILURE_MEMORY_SECS", memory_secs.to_string()),
        ("CONFIDANT_ALERTS__SIGN_IN_ATTACK_WINDOW_SECS", "604800".to_owned()),
    ];
    spawn_app_with(backend, Options { env, ..Default::default() }).await
}

/// The sign-in attack alerts a socket receives: waits (at most 15 s, a loaded machine is slow)
/// for `expected` of them, then until nothing more came for a second and a half.
async fn attack_alerts(socket: &mut WsClient, expected: usize) -> Vec<Value> {
    let mut alerts: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let wait = if alerts.len() < expected {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(1_500)
        };
        match socket.next(wait).await {
            Event::Frame(frame) if frame["type"] == "alert" && frame["kind"] == "sign_in_attack" => {
                alerts.retain(|a| a["alert_id"] != frame["alert_id"]);
                alerts.push(frame);
            }
            Event::Frame(_) => {}
            _ => return alerts,
        }
    }
}

/// `who`'s sign-in attack alerts over REST.
async fn listed(app: &TestApp, who: &Person) -> Vec<Value> {
    let (status, alerts) = who.session.get(app, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    alerts.as_array().unwrap().iter().filter(|a| a["kind"] == "sign_in_attack").cloned().collect()
}

/// One address tries `emails`, a wrong password each, and then waits out its lock: retries
/// refused with 429 (not counted) until the attempt is answered 401.
async fn stuff(app: &TestApp, stuffer: &reqwest::Client, emails: impl IntoIterator<Item = String>) {
    for email in emails {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match attempt(app, stuffer, &email, WRONG).await {
                StatusCode::UNAUTHORIZED => break,
                StatusCode::TOO_MANY_REQUESTS if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
}

fn audited(app: &TestApp, reason: &str) -> Vec<Value> {
    app.audit_entries().into_iter().filter(|e| e["reason"] == reason).collect()
}

async fn credential_stuffing_alerts_every_owner_once_and_nobody_else(backend: Backend) {
    let app = practice(backend, MEMORY_SECS).await;
    let owner = owner(&app).await;
    let co_owner = staff(&app, &owner, "practice_owner", "co-owner@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let mut owners_socket = signed_in(&app, &owner.session.access).await;
    let mut co_owners_socket = signed_in(&app, &co_owner.session.access).await;
    let mut clinicians_socket = signed_in(&app, &clinician.session.access).await;
    let mut desks_socket = signed_in(&app, &desk.session.access).await;

    // A stuffing run from 127.0.0.5: four accounts that do not exist, the fourth failure past
    // the address's three free ones; then, its lock over and its failures forgotten, the run
    // goes on and trips the lock again: the same pattern, source and window.
    let stuffer = from(&app, 5);
    stuff(&app, &stuffer, (0..4).map(|n| format!("person{n}@elsewhere.example"))).await;
    let live = attack_alerts(&mut owners_socket, 1).await;
    // The failure memory runs out: the run is forgotten, and the next one counts from one.
    tokio::time::sleep(Duration::from_millis(MEMORY_SECS * 1000 + 500)).await;
    stuff(&app, &stuffer, (4..8).map(|n| format!("person{n}@elsewhere.example"))).await;
    // Many more attempts while the address is locked change nothing either.
    for n in 8..40 {
        let status = attempt(&app, &stuffer, &format!("person{n}@elsewhere.example"), WRONG).await;
        assert!(matches!(status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{status}");
    }

    assert_eq!(live.len(), 1, "one alert, live: {live:?}");
    let alert = &live[0];
    assert_eq!(alert["urgent"], false, "never escalated to the on-call list");
    assert!(alert.get("patient_id").is_none(), "about no patient: {alert}");
    let attack = &alert["sign_in_attack"];
    assert_eq!(attack["pattern"], "credential_stuffing");
    assert_eq!(attack["source_ip"], "127.0.0.5");
    assert_eq!((attack["failures"].as_u64(), attack["threshold"].as_u64()), (Some(4), Some(3)));
    let (starts, ends) =
        (attack["window_starts_at_ms"].as_i64().unwrap(), attack["window_ends_at_ms"].as_i64().unwrap());
    assert_eq!(ends - starts, 604_800_000, "the configured window");
    assert!((starts..ends).contains(&alert["at_ms"].as_i64().unwrap()), "{alert}");
    assert!(attack.get("account_id").is_none());
    let text = alert.to_string();
    assert!(!text.contains("elsewhere.example") && !text.contains(WRONG), "no email tried, no password: {text}");

    assert_eq!(attack_alerts(&mut owners_socket, 0).await.len(), 0, "the second run raised no second alert");
    assert_eq!(attack_alerts(&mut co_owners_socket, 1).await.len(), 1, "every owner is told");
    assert!(attack_alerts(&mut clinicians_socket, 0).await.is_empty(), "a clinician is not told");
    assert!(attack_alerts(&mut desks_socket, 0).await.is_empty(), "front desk is not told");
    assert_eq!(listed(&app, &owner).await.len(), 1);
    assert!(listed(&app, &clinician).await.is_empty() && listed(&app, &desk).await.is_empty());
    assert!(audited(&app, "credential_stuffing").len() >= 2, "each run's lock is audited");
    let raised: Vec<Value> = audited(&app, "alert_raised");
    assert_eq!(raised.len(), 1, "one alert raised");
    assert!(raised[0]["patient_id"].is_null(), "a security alert is no access to a patient's PHI");

    // Acknowledged by the co-owner: cleared for the owner too. A clinician may not; nobody
    // documents a follow-up on it (it is about no patient).
    let id = alert["alert_id"].as_str().unwrap();
    let ack = format!("/api/v1/alerts/{id}/ack");
    let (status, _) = clinician.session.call(&app, Method::POST, &ack, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, acked) = co_owner.session.call(&app, Method::POST, &ack, None).await;
    assert_eq!((status, acked["state"].as_str()), (StatusCode::OK, Some("resolved")), "{acked}");
    let cleared = owners_socket.frame().await;
    assert_eq!((cleared["type"].as_str(), cleared["alert_id"].as_str()), (Some("alert.updated"), Some(id)));
    let note = serde_json::json!({ "note": "Blocked the address at the firewall." });
    let (status, refused) =
        owner.session.call(&app, Method::POST, &format!("/api/v1/alerts/{id}/follow-up"), Some(note)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let mut again = signed_in(&app, &owner.session.access).await;
    assert!(attack_alerts(&mut again, 0).await.is_empty(), "acknowledged: not replayed");
}

async fn guessing_one_account_from_many_addresses_alerts_the_owners_naming_the_account(backend: Backend) {
    let app = practice(backend, 3600).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.b@practice.example").await;
    let mut clinicians_socket = signed_in(&app, &clinician.session.access).await;
    // Nine addresses, one wrong password each: past the cap of eight.
    for last in 10..19 {
        assert_eq!(attempt(&app, &from(&app, last), &clinician.email, WRONG).await, StatusCode::UNAUTHORIZED);
    }
    let alerts = listed(&app, &owner).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let attack = &alerts[0]["sign_in_attack"];
    assert_eq!(attack["pattern"], "account_guessing");
    assert_eq!(attack["account_id"], clinician.session.user_id.as_str(), "the account, by its id");
    assert!(attack.get("source_ip").is_none(), "many addresses: none is named");
    assert_eq!(attack["failures"], 9);
    assert!(!alerts[0].to_string().contains(&clinician.email), "no email: {}", alerts[0]);
    assert!(attack_alerts(&mut clinicians_socket, 0).await.is_empty(), "the account's own clinician is not told");
    assert!(listed(&app, &clinician).await.is_empty());
}

async fn an_ordinary_wrong_password_raises_no_alert(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "dr.c@practice.example").await;
    let mut owners_socket = signed_in(&app, &owner.session.access).await;
    // Mistyped twice, then right; and a guesser at one address who locks themselves out of
    // this account (the account-from-address lock is no attack pattern).
    assert_eq!(attempt(&app, &app.client, &clinician.email, WRONG).await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&app, &app.client, &clinician.email, WRONG).await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(&app, &app.client, &clinician.email, PASSWORD).await, StatusCode::OK);
    let guesser = from(&app, 7);
    let mut answers = Vec::new();
    for _ in 0..7 {
        answers.push(attempt(&app, &guesser, &owner.email, WRONG).await);
    }
    assert_eq!(answers[..6], [StatusCode::UNAUTHORIZED; 6], "five free failures, the sixth locks");
    assert_eq!(answers[6], StatusCode::TOO_MANY_REQUESTS);
    assert!(attack_alerts(&mut owners_socket, 0).await.is_empty());
    assert!(listed(&app, &owner).await.is_empty());
    assert!(audited(&app, "alert_raised").is_empty());
}

crate::on_both_backends!(
    credential_stuffing_alerts_every_owner_once_and_nobody_else,
    guessing_one_account_from_many_addresses_alerts_the_owners_naming_the_account,
    an_ordinary_wrong_password_raises_no_alert,
);
