//! SIGTERM and SIGINT stop the node gracefully: it finishes, records a clean stop and exits 0.
//! A kill is noticed at the next start.

use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(sigterm_stops_cleanly_with_exit_code_0, a_killed_node_is_reported_at_the_next_start);

async fn sigterm_stops_cleanly_with_exit_code_0(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);

    let (status, options) = app.into_parts_after("TERM");
    assert_eq!(status.code(), Some(0));

    let restarted = spawn_app_with(backend, options).await;
    assert!(!restarted.logs().iter().any(|l| l.contains("did not stop cleanly")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_with_exit_code_0() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let status = app.stop_with("INT");
    assert_eq!(status.code(), Some(0));
    assert!(app.logs().iter().any(|l| l.contains("\"stopped\"")), "{:?}", app.logs());
}

async fn a_killed_node_is_reported_at_the_next_start(backend: Backend) {
    let app = spawn_app(backend).await;

    let (status, options) = app.into_parts_after("KILL");
    assert_eq!(status.code(), None, "SIGKILL leaves no exit code");

    let restarted = spawn_app_with(backend, options).await;
    assert!(restarted.logs().iter().any(|l| l.contains("did not stop cleanly")), "{:?}", restarted.logs());
}

/// SIGTERM under load: every open socket is told (1001) before the listener stops accepting,
/// every booking the node committed was answered (none committed behind a client's back, to be
/// refused as a double booking on its retry), and the clean stop is recorded.
async fn a_stop_under_load_tells_every_socket_first_answers_what_it_committed_and_stops_cleanly(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::signin::{owner, patient_record, staff};
    use crate::wsclient::{Event, signed_in};

    let mut app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let clinician = staff(&app, &owner, "clinician", "dr.a@practice.example").await;
    let patient = patient_record(&app, &desk, "Ada Lovelace").await;

    let mut sockets = Vec::new();
    for _ in 0..12 {
        let mut socket = signed_in(&app, &desk.session.access).await;
        socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": "practice" })).await;
        assert_eq!(socket.frame().await["type"], "schedule.snapshot");
        sockets.push(socket);
    }

    // Four clients book as fast as they can; each answered booking is counted.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicI64::new(0));
    let next = Arc::new(AtomicI64::new(0));
    let mut loads = Vec::new();
    for _ in 0..4 {
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/appointments"), desk.session.access.clone());
        let (stop, answered, next) = (stop.clone(), answered.clone(), next.clone());
        let (clinician, patient) = (clinician.session.user_id.clone(), patient.clone());
        loads.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let start = 1_900_000_000_000 + next.fetch_add(1, Ordering::Relaxed) * 3_600_000;
                let body = json!({ "clinician_id": clinician, "patient_id": patient,
                    "starts_at_ms": start, "ends_at_ms": start + 3_000_000 });
                match client.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;

    // SIGTERM; meanwhile, watch when the listener stops accepting and when each socket is told.
    let address = app.address;
    app.signal("TERM");
    let signalled = Instant::now();
    let refused_at = tokio::spawn(async move {
        loop {
            if tokio::net::TcpStream::connect(address).await.is_err() {
                return signalled.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let watchers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                loop {
                    match socket.next(Duration::from_secs(10)).await {
                        Event::Frame(_) => continue, // live bookings
                        Event::Closed(code) => return (code, signalled.elapsed()),
                        Event::Nothing => panic!("a socket was not closed within 10 s of SIGTERM"),
                    }
                }
            })
        })
        .collect();
    let mut told = Vec::new();
    for watcher in watchers {
        told.push(watcher.await.unwrap());
    }
    let refused_at = refused_at.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for load in loads {
        load.await.unwrap();
    }
    assert!(app.wait_for_exit().success());
    for (code, at) in &told {
        assert_eq!(*code, Some(1001));
        assert!(*at <= refused_at, "a socket was told at {at:?}, after the listener closed at {refused_at:?}");
    }
    let logs = app.logs();
    assert!(!logs.iter().any(|l| l.contains("could not record the clean stop")), "{logs:?}");

    // Restarted: a clean stop on record, and exactly the answered bookings in the schedule.
    let answered = answered.load(Ordering::Relaxed);
    assert!(answered > 0);
    let options = app.into_parts();
    let restarted = spawn_app_with(backend, options).await;
    assert!(!restarted.logs().iter().any(|l| l.contains("did not stop cleanly")));
    let session = crate::signin::sign_in(&restarted, &desk.email, crate::signin::PASSWORD, desk.totp.as_ref()).await;
    let mut socket = signed_in(&restarted, &session.access).await;
    socket.send(json!({ "v": 1, "type": "schedule.subscribe", "id": "s", "scope": "practice" })).await;
    let snapshot = socket.frame().await;
    let stored = snapshot["appointments"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(stored as i64, answered, "every committed booking was answered");
}

on_both_backends!(a_stop_under_load_tells_every_socket_first_answers_what_it_committed_and_stops_cleanly);
