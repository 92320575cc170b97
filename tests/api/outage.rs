//! A Redis outage under load on two nodes: bookings stay fast (publishing never waits for the
//! broker), and every subscriber, on either node, ends with every schedule change exactly once
//! and in order, live or caught up from the database after the outage.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::oneshot;

use crate::helpers::{Backend, Options, spawn_app_with};
use crate::signin::{owner, patient_record, staff};
use crate::wsclient::{Event, WsClient, signed_in};

/// A Redis of this test's own on a free port (the machine's shared one must not be killed).
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            assert!(Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap().success());
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Reads a subscriber's frames until told to stop; returns the schedule changes it got, as
/// (event id, appointment id), in arrival order.
fn collect(mut socket: WsClient) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Vec<(u64, String)>>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut changes = Vec::new();
        loop {
            if stopped.try_recv().is_ok() {
                return changes;
            }
            match socket.next(Duration::from_millis(200)).await {
                Event::Frame(frame) if frame["type"] == "schedule.changed" => {
                    let id = frame["appointment"]["id"].as_str().unwrap().to_owned();
                    changes.push((frame["event_id"].as_u64().unwrap(), id));
                }
                Event::Frame(frame) if frame["type"] == "schedule.snapshot" => {
                    let last = frame["last_event_id"].as_u64().unwrap();
                    for appointment in frame["appointments"].as_array().unwrap() {
                        changes.push((last, appointment["id"].as_str().unwrap().to_owned()));
                    }
                }
                Event::Frame(_) | Event::Nothing => {}
                Event::Closed(code) => panic!("the subscriber was closed ({code:?}) with {} changes", changes.len()),
            }
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_neither_slows_bookings_nor_loses_a_schedule_change() {
    let mut redis = PrivateRedis::start();
    let channel = format!("confidant-test:{}", uuid::Uuid::new_v4().simple());
    let env = vec![("CONFIDANT_REDIS_URL", redis.url()), ("CONFIDANT_HUB__REDIS_CHANNEL", channel)];
    let a = spawn_app_with(Backend::Postgres, Options { env: env.clone(), ..Default::default() }).await;
    let shared = (a.main_db.as_ref().unwrap().url(), a.audit_db.as_ref().unwrap().url());
    let b =
        spawn_app_with(Backend::Postgres, Options { env, shared_databases: Some(shared), ..Default::default() }).await;
    let owner = owner(&a).await;
    let desk = staff(&a, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&a, &owner, "clinician", "dr.a@practice.example").await;
    let patient = patient_record(&a, &clinician, "Ada Lovelace").await;

    let mut subscribers = Vec::new();
    for (app, person, scope) in [(&b, &clinician, "mine"), (&a, &desk, "practice"), (&b, &desk, "practice")] {
        let mut socket = signed_in(app, &person.session.access).await;
        socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": scope })).await;
        let snapshot = socket.frame().await;
        assert_eq!(snapshot["type"], "schedule.snapshot", "{snapshot}");
        assert_eq!(snapshot["appointments"].as_array().map(Vec::len), Some(0));
        subscribers.push(collect(socket));
    }

    // Book through both nodes, one every 100 ms: 3 s with Redis, 12 s without (killed -9),
    // 4 s after it is back.
    let mut booked = Vec::new();
    let mut slowest_without_redis = Duration::ZERO;
    let started = Instant::now();
    let mut n: i64 = 0;
    let mut phase = 0;
    while started.elapsed() < Duration::from_secs(19) {
        if phase == 0 && started.elapsed() > Duration::from_secs(3) {
            redis.kill_9();
            phase = 1;
        }
        if phase == 1 && started.elapsed() > Duration::from_secs(15) {
            redis.restart();
            phase = 2;
        }
        let node = if n % 2 == 0 { &a } else { &b };
        let start = 1_900_000_000_000 + n * 3_600_000;
        let body = json!({ "clinician_id": clinician.session.user_id, "patient_id": patient,
            "starts_at_ms": start, "ends_at_ms": start + 3_000_000 });
        let sent = Instant::now();
        let (status, created) =
            desk.session.call(node, reqwest::Method::POST, "/api/v1/appointments", Some(body)).await;
        let took = sent.elapsed();
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        if phase == 1 {
            slowest_without_redis = slowest_without_redis.max(took);
        }
        booked.push(created["id"].as_str().unwrap().to_owned());
        n += 1;
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(took)).await;
    }
    assert!(
        slowest_without_redis < Duration::from_millis(500),
        "a booking took {slowest_without_redis:?} without Redis"
    );

    // Every subscriber ends with every booking, once, in event order.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (i, (stop, task)) in subscribers.into_iter().enumerate() {
        let _ = stop.send(());
        let changes = task.await.unwrap();
        let ids: Vec<&String> = changes.iter().map(|(_, id)| id).collect();
        let missing: Vec<&String> = booked.iter().filter(|id| !ids.contains(id)).collect();
        assert!(missing.is_empty(), "subscriber {i} missed {} of {} changes", missing.len(), booked.len());
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "subscriber {i} got a change twice");
        let events: Vec<u64> = changes.iter().map(|(e, _)| *e).collect();
        assert!(events.windows(2).all(|w| w[0] <= w[1]), "subscriber {i} got changes out of order: {events:?}");
    }
}
