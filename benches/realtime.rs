//! Real-time load benchmark and load generator (docs/PERFORMANCE.md). In one run it measures:
//! authenticated idle sessions held by one node, their resident memory per session next to a
//! bare tokio-tungstenite TLS server's per connection, drops and the node's CPU while they
//! idle; token-authenticated connects per second; and schedule change -> push latency with
//! 1,000 subscribed sessions on one node and, through Redis, across two. The server runs pinned
//! to core 0 and this generator to core 1 (taskset). Prints its figures; not a test.
//!
//! `cargo bench --bench realtime` (PostgreSQL and Redis as for the tests). Knobs:
//! BENCH_SESSIONS (19000), BENCH_HOLD_SECS (600), BENCH_CONNECTS (2000), BENCH_SUBSCRIBERS
//! (1000), BENCH_CHANGES (200).
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a program that prints figures

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::connect_async_tls_with_config;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::node::{Node, connector, create_patient, owner_and_clinician, rss_kib, ticks_per_sec};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-server") {
        return bare_server(Path::new(&args[i + 1]), args[i + 2].parse().ok());
    }
    // The generator on core 1; servers go to core 0.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = Command::new("taskset").args(["-a", "-p", "-c", "1", &std::process::id().to_string()]).output();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(cores));
}

async fn run(cores: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sessions = knob("BENCH_SESSIONS", 19_000);
    let hold = Duration::from_secs(knob("BENCH_HOLD_SECS", 600) as u64);
    let connects = knob("BENCH_CONNECTS", 2_000).min(sessions);
    let subscribers = knob("BENCH_SUBSCRIBERS", 1_000).min(sessions);
    let changes = knob("BENCH_CHANGES", 200);
    println!(
        "real-time benchmark on {cores} cores: server on core 0, generator on core 1; {sessions} sessions, hold {}s",
        hold.as_secs()
    );

    // One node, embedded defaults (SQLite).
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    let practice = Practice::set_up(&node).await;
    let baseline_kib = node.rss_kib();

    // Connects per second, then the rest of the sessions, all authenticated and idle.
    let dropped = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Latencies::default());
    let (started, cpu_at_start) = (Instant::now(), node.cpu_ticks());
    let mut open = connect_many(&node, &practice.token, connects, &dropped, &latencies).await;
    let took = started.elapsed();
    let server_cpu = (node.cpu_ticks() - cpu_at_start) as f64 / ticks_per_sec() / took.as_secs_f64();
    println!(
        "[connect] {connects} token-authenticated sessions (TLS 1.3 + upgrade + auth + welcome) in {took:.2?}: {:.0}/s \
         (server core {:.0}% busy)",
        connects as f64 / took.as_secs_f64(),
        server_cpu * 100.0
    );
    open.extend(connect_many(&node, &practice.token, sessions - connects, &dropped, &latencies).await);
    let held = open.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_session_kib = node.rss_kib().saturating_sub(baseline_kib) as f64 / held as f64;
    println!(
        "[memory] {held} sessions: server RSS {} MiB ({per_session_kib:.1} KiB per session)",
        node.rss_kib() / 1024
    );

    // Idle: drops and CPU over the hold.
    let cpu_before = node.cpu_ticks();
    let hold_started = Instant::now();
    while hold_started.elapsed() < hold {
        tokio::time::sleep(Duration::from_secs(10).min(hold)).await;
    }
    let cpu = (node.cpu_ticks() - cpu_before) as f64 / ticks_per_sec() / hold_started.elapsed().as_secs_f64();
    println!(
        "[idle] {held} sessions held {:.0?}: {} dropped; server CPU {:.1}% of a core",
        hold_started.elapsed(),
        dropped.load(Ordering::Relaxed),
        cpu * 100.0
    );

    // Push latency, one node: the first `subscribers` sessions watch the practice schedule.
    subscribe(&open[..subscribers]).await;
    let one = push_latency(&node, &practice, &latencies, changes, subscribers).await;
    println!(
        "[push, 1 node] {} deliveries of {changes} changes to {subscribers} sessions: p50 {:.1?}, p99 {:.1?}",
        one.0, one.1, one.2
    );
    drop(open);
    node.stop();

    // The bare server, same certificate, same number of connections: with tungstenite's
    // default buffers, and with a 4 KiB read buffer (the leaner floor).
    for read_buffer in ["default", "4096"] {
        let bare_dir = tempfile::tempdir().unwrap();
        let mut bare = Bare::start(bare_dir.path(), read_buffer);
        let before = rss_kib(bare.0.child.id());
        let bare_open = bare.connect(held).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let bare_kib = rss_kib(bare.0.child.id()).saturating_sub(before) as f64 / bare_open as f64;
        println!(
            "[memory] bare tokio-tungstenite TLS server (read buffer {read_buffer}): {bare_open} connections, \
             {bare_kib:.1} KiB per connection; Confidant is {:.2}x",
            per_session_kib / bare_kib
        );
    }

    // Two nodes through Redis: bookings on A, subscribers on B; the nodes reach PostgreSQL over
    // loopback TCP, then over its Unix socket (sqlx 0.9.0 leaves Nagle's algorithm on over TCP,
    // which costs ~40 ms on statements larger than a segment: docs/PERFORMANCE.md).
    two_nodes(subscribers, changes, None).await;
    if let Some(dir) = support::postgres_socket_dir() {
        two_nodes(subscribers, changes, Some(&dir)).await;
    }
}

/// Deliveries, p50, p99.
async fn push_latency(
    node: &Node,
    practice: &Practice,
    latencies: &Latencies,
    changes: usize,
    subscribers: usize,
) -> (usize, Duration, Duration) {
    latencies.reset();
    let start = 2_000_000_000_000i64 + rand_offset();
    // One change at a time, the next once every subscriber has the last (or after 2 s): the
    // figure is the latency of a change, not of a queue of them.
    for i in 0..changes {
        let starts_at = start + i as i64 * 3_600_000;
        latencies.sent.lock().unwrap().insert(starts_at, Instant::now());
        let body = json!({ "clinician_id": practice.clinician, "patient_id": practice.patient, "starts_at_ms": starts_at, "ends_at_ms": starts_at + 1_800_000 });
        let response = practice
            .client
            .post(node.url("/api/v1/appointments"))
            .bearer_auth(&practice.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let until = Instant::now() + Duration::from_secs(2);
        while latencies.samples.lock().unwrap().len() < (i + 1) * subscribers && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.samples.lock().unwrap().len() < changes * subscribers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut samples = latencies.samples.lock().unwrap().clone();
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (samples.len(), at(0.5), at(0.99))
}

fn rand_offset() -> i64 {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000) as i64
        * 10_000_000
}

#[derive(Default)]
struct Latencies {
    sent: Mutex<HashMap<i64, Instant>>,
    samples: Mutex<Vec<Duration>>,
}

impl Latencies {
    fn reset(&self) {
        self.sent.lock().unwrap().clear();
        self.samples.lock().unwrap().clear();
    }

    fn observe(&self, frame: &Value) {
        let Some(starts_at) = frame["appointment"]["starts_at_ms"].as_i64() else { return };
        let sent = self.sent.lock().unwrap().get(&starts_at).copied();
        if let Some(sent) = sent {
            self.samples.lock().unwrap().push(sent.elapsed());
        }
    }
}

/// An open session: where to send frames.
struct Open {
    outgoing: tokio::sync::mpsc::UnboundedSender<String>,
}

async fn subscribe(sessions: &[Open]) {
    for (i, open) in sessions.iter().enumerate() {
        let frame = json!({ "v": 1, "type": "schedule.subscribe", "id": format!("s{i}"), "scope": "practice" });
        open.outgoing.send(frame.to_string()).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Opens `count` authenticated sessions, 256 at a time; each then runs in its own task that
/// answers pings, reports pushes and counts a close as a drop.
async fn connect_many(
    node: &Node,
    token: &str,
    count: usize,
    dropped: &Arc<AtomicUsize>,
    latencies: &Arc<Latencies>,
) -> Vec<Open> {
    let limit = Arc::new(Semaphore::new(256));
    let connector = connector(&node.cert());
    let url = format!("wss://localhost:{}/ws", node.address.port());
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let permit = limit.clone().acquire_owned().await.unwrap();
        let (url, connector, token) = (url.clone(), connector.clone(), token.to_owned());
        let (dropped, latencies) = (dropped.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect_async_tls_with_config(url, None, true, Some(connector)).await.expect("connect");
            ws.send(Message::Text(json!({ "v": 1, "type": "auth", "token": token }).to_string().into())).await.unwrap();
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"welcome\"") => break,
                    Some(Ok(_)) => continue,
                    other => panic!("no welcome: {other:?}"),
                }
            }
            drop(permit);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        out = rx.recv() => match out {
                            Some(text) => { let _ = ws.send(Message::Text(text.into())).await; }
                            None => return,
                        },
                        incoming = ws.next() => match incoming {
                            Some(Ok(Message::Text(text))) => {
                                if text.contains("schedule.changed") {
                                    latencies.observe(&serde_json::from_str(&text).unwrap_or(Value::Null));
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => { dropped.fetch_add(1, Ordering::Relaxed); return; }
                        },
                    }
                }
            });
            Open { outgoing: tx }
        }));
    }
    let mut open = Vec::with_capacity(count);
    for task in tasks {
        open.push(task.await.expect("session task"));
    }
    open
}

/// An owner (TOTP enrolled) whose token opens the sessions and books, a clinician and a patient.
struct Practice {
    client: reqwest::Client,
    token: String,
    clinician: String,
    patient: String,
}

impl Practice {
    async fn set_up(node: &Node) -> Self {
        let (client, token) = owner_and_clinician(node).await;
        let users: Value =
            client.get(node.url("/api/v1/users")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let clinician = users.as_array().unwrap().iter().find(|u| u["role"] == "clinician").unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let patient = create_patient(&client, node, &token, "Bench Patient").await;
        Self { client, token, clinician, patient }
    }
}

/// Two nodes on one PostgreSQL and Redis: sessions on B, bookings through A. The nodes connect
/// to PostgreSQL through the Unix socket in `socket_dir` when given, else over TCP.
async fn two_nodes(subscribers: usize, changes: usize, socket_dir: Option<&str>) {
    let redis = std::env::var("CONFIDANT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (mut env, [main_db, audit_db]) = support::server_databases("bench_rt", socket_dir).await;
    let channel = format!("bench:{}", uuid::Uuid::new_v4().simple());
    env.extend([("CONFIDANT_REDIS_URL", redis), ("CONFIDANT_HUB__REDIS_CHANNEL", channel)]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Node::start(dir_a.path(), &env);
    let b = Node::start(dir_b.path(), &env);
    let practice = Practice::set_up(&a).await;
    let (dropped, latencies) = (Arc::new(AtomicUsize::new(0)), Arc::new(Latencies::default()));
    let open = connect_many(&b, &practice.token, subscribers, &dropped, &latencies).await;
    subscribe(&open).await;
    let (n, p50, p99) = push_latency(&a, &practice, &latencies, changes, subscribers).await;
    println!(
        "[push, 2 nodes via Redis, PostgreSQL over {}] {n} deliveries of {changes} changes (booked on A) to {subscribers} sessions on B: p50 {p50:.1?}, p99 {p99:.1?}",
        if socket_dir.is_some() { "its Unix socket" } else { "TCP" }
    );
    drop(open);
    drop((a, b));
    for name in [main_db, audit_db] {
        support::pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// The bare comparison server, as a child process of this program.
struct Bare(support::BareServer);

impl Bare {
    fn start(dir: &Path, read_buffer: &str) -> Self {
        let dir_arg = dir.display().to_string();
        Self(support::BareServer::start(dir, &["--bare-server", &dir_arg, read_buffer]))
    }

    async fn connect(&mut self, count: usize) -> usize {
        let connector = connector(&self.0.cert);
        let url = format!("wss://localhost:{}/", self.0.port);
        let limit = Arc::new(Semaphore::new(256));
        let mut tasks = Vec::new();
        for _ in 0..count {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (url, connector) = (url.clone(), connector.clone());
            tasks.push(tokio::spawn(async move {
                let (ws, _) =
                    connect_async_tls_with_config(url, None, true, Some(connector)).await.expect("bare connect");
                drop(permit);
                tokio::spawn(async move {
                    let (_sink, mut stream) = ws.split();
                    while let Some(Ok(_)) = stream.next().await {}
                });
            }));
        }
        let mut n = 0;
        for task in tasks {
            if task.await.is_ok() {
                n += 1;
            }
        }
        n
    }
}

/// A minimal tokio-tungstenite WebSocket server over TLS 1.3 (the same rustls and certificate
/// as Confidant), echoing frames: the floor a connection costs.
fn bare_server(dir: &Path, read_buffer: Option<usize>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = confidant::tls::ensure_dev_certificate(dir).unwrap();
    let chain = vec![CertificateDer::from_pem_file(&cert.cert_path).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&cert.key_path).unwrap();
    let config = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        std::fs::write(dir.join("port"), listener.local_addr().unwrap().port().to_string()).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let config = read_buffer.map(|size| {
                    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(size)
                });
                let Ok(ws) = tokio_tungstenite::accept_async_with_config(tls, config).await else { return };
                let (mut sink, mut stream) = ws.split();
                while let Some(Ok(message)) = stream.next().await {
                    if message.is_text() && sink.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}
