//! Clinical-notes benchmark (issue 29's speed targets), on SQLite and on PostgreSQL: autosave
//! round trips (`note.draft` over the socket, answered `ack` once sealed and stored, its audit
//! record durable first) with many clinicians drafting at once, each autosaving on a typing
//! cadence; and opening a patient's chart (`GET /api/v1/patients/{id}/notes`) holding many
//! notes. Prints its figures; not a test. Run with `cargo bench --bench notes`
//! (`BENCH_CLINICIANS`, `BENCH_ROUNDS`, `BENCH_CADENCE_MS`, `BENCH_CHART_NOTES`,
//! `BENCH_BACKENDS=sqlite,postgres`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a program that prints figures; set-up failures abort it

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async_tls_with_config;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::node::{Node, PASSWORD, connector, create_patient, enroll_totp, owner_and_clinician, sign_in};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // The generator on core 1; the server goes to core 0.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = Command::new("taskset").args(["-a", "-p", "-c", "1", &std::process::id().to_string()]).output();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
        println!("clinical-notes benchmark on {cores} cores: server on core 0, generator on core 1");
        for backend in backends.split(',') {
            run(backend).await;
        }
    });
}

/// The `q` quantile of sorted `samples`.
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[at.min(samples.len() - 1)]
}

async fn run(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (env, databases) = match backend {
        "postgres" => {
            let (env, names) = support::server_databases("bench_notes", None).await;
            (env, Some(names))
        }
        _ => (Vec::new(), None),
    };
    let node = Node::start(dir.path(), &env);
    let (client, owner) = owner_and_clinician(&node).await;
    let clinicians = knob("BENCH_CLINICIANS", 200);
    let rounds = knob("BENCH_ROUNDS", 20);
    let cadence = Duration::from_millis(knob("BENCH_CADENCE_MS", 1000) as u64);

    // Each clinician: an account with TOTP, a patient of their own, a note begun.
    let t = Instant::now();
    let mut drafters = Vec::with_capacity(clinicians);
    for n in 0..clinicians {
        let email = format!("dr{n}@bench.example");
        let invited: Value = client
            .post(node.url("/api/v1/users/invitations"))
            .bearer_auth(&owner)
            .json(&json!({ "role": "clinician", "email": email }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let accept = json!({ "token": invited["invitation_token"], "password": PASSWORD });
        assert!(
            client
                .post(node.url("/api/v1/invitations/accept"))
                .json(&accept)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
        let token = sign_in(&client, &node, &email).await;
        enroll_totp(&client, &node, &token).await;
        let (_, note) = patient_with_note(&client, &node, &token, n).await;
        drafters.push((token, note));
    }
    println!("[{backend}] set-up: {clinicians} clinicians with a patient and a note begun in {:.1?}", t.elapsed());

    // Every clinician drafting at once: a socket each, an autosave every `cadence` (spread over
    // the first interval), `rounds` times; each round trip timed from send to `ack`.
    let url = format!("wss://localhost:{}/ws", node.address.port());
    let connector = connector(&node.cert());
    let mut tasks = Vec::with_capacity(clinicians);
    let started = Instant::now();
    for (n, (token, note)) in drafters.into_iter().enumerate() {
        let (url, connector) = (url.clone(), connector.clone());
        let offset = cadence.mul_f64(n as f64 / clinicians as f64);
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect_async_tls_with_config(url, None, true, Some(connector)).await.expect("connect");
            ws.send(Message::Text(json!({ "v": 1, "type": "auth", "token": token }).to_string().into())).await.unwrap();
            next_text(&mut ws, "welcome").await;
            tokio::time::sleep(offset).await;
            let mut times = Vec::with_capacity(rounds);
            let mut tick = tokio::time::interval(cadence);
            for round in 0..rounds {
                tick.tick().await;
                let text = "Patient describes a calmer week; slept six to seven hours most nights. ".repeat(round + 1);
                let frame = json!({ "v": 1, "type": "note.draft", "id": format!("d{round}"), "note_id": note,
                    "fields": { "subjective": text, "plan": "Continue weekly sessions." } });
                let sent = Instant::now();
                ws.send(Message::Text(frame.to_string().into())).await.unwrap();
                next_text(&mut ws, "ack").await;
                times.push(sent.elapsed());
            }
            let _ = ws.close(None).await;
            times
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    samples.sort();
    println!(
        "[{backend}] autosave: {} note.draft round trips by {clinicians} clinicians drafting at once (one every {:?} \
         each) in {took:.1?}: p50 {:.1?}, p99 {:.1?}, max {:.1?} (target: p99 under 50 ms)",
        samples.len(),
        cadence,
        quantile(&samples, 0.5),
        quantile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );

    // A chart of many notes: one clinician's patient, opened repeatedly.
    let chart_notes = knob("BENCH_CHART_NOTES", 500);
    let dr = sign_in(&client, &node, "dr@bench.example").await;
    enroll_totp(&client, &node, &dr).await;
    let (patient, _) = patient_with_note(&client, &node, &dr, clinicians + 1).await;
    let t = Instant::now();
    for _ in 1..chart_notes {
        let created = client
            .post(node.url(&format!("/api/v1/patients/{patient}/notes")))
            .bearer_auth(&dr)
            .json(&json!({ "template_key": "soap" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
    }
    println!("[{backend}] chart set-up: {chart_notes} notes begun in {:.1?}", t.elapsed());
    let mut opens = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let listed: Value = client
            .get(node.url(&format!("/api/v1/patients/{patient}/notes")))
            .bearer_auth(&dr)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        opens.push(t.elapsed());
        assert_eq!(listed.as_array().map(Vec::len), Some(chart_notes));
    }
    opens.sort();
    println!(
        "[{backend}] open chart: the list of {chart_notes} notes, 50 times: p50 {:.1?}, p99 {:.1?} (target: under 100 ms)",
        quantile(&opens, 0.5),
        quantile(&opens, 0.99)
    );
    drop(node);
    if let Some([main, audit]) = databases {
        for name in [main, audit] {
            support::pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// A patient record made by `token`'s clinician (who joins its care team) and a SOAP note begun
/// about it.
async fn patient_with_note(client: &reqwest::Client, node: &Node, token: &str, n: usize) -> (String, String) {
    let patient = create_patient(client, node, token, &format!("Bench Patient {n}")).await;
    let note: Value = client
        .post(node.url(&format!("/api/v1/patients/{patient}/notes")))
        .bearer_auth(token)
        .json(&json!({ "template_key": "soap" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (patient, note["note_id"].as_str().expect("note").to_owned())
}

/// Reads frames until one of type `kind` (anything else but an error is skipped).
async fn next_text<S>(ws: &mut S, kind: &str)
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if frame["type"] == kind {
                    return;
                }
                assert_ne!(frame["type"], "error", "{frame}");
            }
            Some(Ok(_)) => continue,
            other => panic!("no {kind}: {other:?}"),
        }
    }
}
