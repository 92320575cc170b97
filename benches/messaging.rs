//! Messaging relay benchmark (docs/PERFORMANCE.md): the same load generator offers the same
//! rates of MLS application messages, prepared (encrypted) beforehand and replayed, to
//! Confidant and to a bare tokio-tungstenite relay with no storage (this machine's ceiling),
//! for a 1:1 conversation and for groups of 10 and 50 devices. It prints, per offered rate,
//! Confidant's durable, audited ingest (messages acknowledged per second, ack latency) and for
//! both the deliveries per second (counted from the first send to the last arrival) and the
//! end-to-end latency p50/p99 (send -> each member device reads it). Servers on core 0, this
//! generator on core 1 (taskset). Not a test.
//!
//! `cargo bench --bench messaging` (SQLite; BENCH_POSTGRES=1 puts Confidant on PostgreSQL over
//! loopback TCP, as production nodes reach it over the network; BENCH_POSTGRES=socket through
//! its Unix socket). Knobs: BENCH_SECONDS (2) per step; BENCH_SCENARIO (`1:1`,
//! `group of 10`, `group of 50`) runs one scenario; BENCH_RATES (`4000,8000`) replaces its rates;
//! BENCH_SERVER runs another build's server binary (for an A/B; default: the one built with this);
//! BENCH_STALLS=1 prints each step's stalls (when they began, on the wall clock, to set beside
//! the database's log or `/proc/meminfo`); BENCH_PG_SET (`backend_flush_after = '256kB'`) sets a
//! PostgreSQL setting on the run's two databases only, to try one without touching the cluster.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a program that prints figures

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use confidant_client::{Device, Event, Server};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async_tls_with_config;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

mod support;

use support::BareServer;
use support::node::{Node, PASSWORD, connector, create_patient, enroll_totp, owner_and_clinician, sign_in};

/// Conversation sizes (devices) and the offered message rates (per second) tried for each.
const SCENARIOS: [(&str, usize, &[u32]); 3] = [
    ("1:1", 2, &[4000, 8000, 12000, 16000, 20000, 24000, 48000, 64000]),
    ("group of 10", 10, &[1000, 2000, 3000, 5000]),
    ("group of 50", 50, &[200, 400, 600, 1000]),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-relay") {
        return bare_relay(Path::new(&args[i + 1]));
    }
    let _ = Command::new("taskset").args(["-a", "-p", "-c", "1", &std::process::id().to_string()]).output();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2))
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let postgres = std::env::var("BENCH_POSTGRES").ok().filter(|v| v == "1" || v == "socket");
    let socket = postgres
        .as_deref()
        .filter(|v| *v == "socket")
        .map(|_| support::postgres_socket_dir().expect("PostgreSQL's Unix socket"));
    let (env, databases) = if postgres.is_some() {
        let (env, names) = support::server_databases("bench_msg", socket.as_deref()).await;
        (env, names.to_vec())
    } else {
        (Vec::new(), Vec::new())
    };
    let node = Node::start(dir.path(), &env);
    let store = match (&postgres, &socket) {
        (None, _) => "SQLite",
        (Some(_), Some(_)) => "PostgreSQL (Unix socket)",
        (Some(_), None) => "PostgreSQL (loopback TCP)",
    };
    println!("messaging benchmark: Confidant on {store} (server core 0), generator core 1, {:?} per step", seconds());
    let practice = Practice::set_up(&node).await;
    let bare_dir = tempfile::tempdir().unwrap();
    let dir = bare_dir.path().display().to_string();
    let bare = BareServer::start(bare_dir.path(), &["--bare-relay", &dir]);

    let only = std::env::var("BENCH_SCENARIO").ok();
    let rates_override: Option<Vec<u32>> =
        std::env::var("BENCH_RATES").ok().map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect());
    for (label, devices, rates) in SCENARIOS {
        if only.as_deref().is_some_and(|only| only != label) {
            continue;
        }
        let rates = rates_override.as_deref().unwrap_or(rates);
        let room = Room::set_up(&node, &practice, devices, rates.iter().max().copied().unwrap_or(0)).await;
        let (mut peak_ours, mut peak_bare) = ((0.0f64, 0u32), 0.0f64);
        for &rate in rates {
            let (ours, theirs) = step(&room, &node, &bare, label, rate).await;
            if !ours.closed && ours.deliveries > peak_ours.0 {
                peak_ours = (ours.deliveries, rate);
            }
            peak_bare = peak_bare.max(theirs.deliveries);
        }
        // The targets compare peaks (Confidant's deliveries against the relay's, both at the
        // highest rate either sustained here) and latency at half of Confidant's peak.
        println!(
            "[{label}] peak deliveries: Confidant {:.0}/s (offered {} msg/s), bare relay {:.0}/s: Confidant/bare {:.0}%",
            peak_ours.0,
            peak_ours.1,
            peak_bare,
            100.0 * peak_ours.0 / peak_bare.max(1.0)
        );
        let half = (peak_ours.0 / (devices - 1) as f64 / 2.0) as u32;
        if half > 0 {
            let (ours, theirs) = step(&room, &node, &bare, label, half).await;
            let gap = ours.p99.as_secs_f64() * 1e3 - theirs.p99.as_secs_f64() * 1e3;
            println!(
                "[{label}] at half of Confidant's peak ({half} msg/s): delivery p99 Confidant - bare = {gap:+.1} ms"
            );
        }
        room.tear_down(&practice).await;
    }
    drop(bare);
    drop(node);
    for name in databases {
        support::pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// One offered rate through Confidant and then through the bare relay; prints both.
async fn step(room: &Room, node: &Node, bare: &BareServer, label: &str, rate: u32) -> (Figures, Figures) {
    let ours = room.confidant(node, rate).await;
    let theirs = room.bare(bare, rate).await;
    println!(
        "[{label}] offered {rate} msg/s: Confidant ingest {:.0} msg/s (ack p50 {:.1?}, p99 {:.1?}), \
         deliveries {:.0}/s p50 {:.1?} p99 {:.1?} | bare relay deliveries {:.0}/s p50 {:.1?} p99 {:.1?} \
         | Confidant/bare {:.0}%{}",
        ours.ingest,
        ours.ack_p50,
        ours.ack_p99,
        ours.deliveries,
        ours.p50,
        ours.p99,
        theirs.deliveries,
        theirs.p50,
        theirs.p99,
        100.0 * ours.deliveries / theirs.deliveries.max(1.0),
        if ours.closed { " (the sending socket was closed, 4008: a queue to or from it overflowed)" } else { "" }
    );
    (ours, theirs)
}

/// A clinician (TOTP enrolled) and a patient on their care team, both signed in.
struct Practice {
    server: Server,
    clinician: String,
    patient: String,
    patient_id: Uuid,
}

impl Practice {
    async fn set_up(node: &Node) -> Self {
        let (client, _owner) = owner_and_clinician(node).await;
        let clinician = sign_in(&client, node, "dr@bench.example").await;
        enroll_totp(&client, node, &clinician).await;
        let post = |path: &str, token: &str, body: Value| {
            client.post(node.url(path)).bearer_auth(token.to_owned()).json(&body).send()
        };
        let patient_id: Uuid = create_patient(&client, node, &clinician, "Bench Patient").await.parse().unwrap();
        let invitation: Value = post(
            "/api/v1/users/invitations",
            &clinician,
            json!({ "role": "patient", "email": "patient@bench.example", "patient_id": patient_id }),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let accepted = client
            .post(node.url("/api/v1/invitations/accept"))
            .json(&json!({ "token": invitation["invitation_token"], "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success());
        let patient = sign_in(&client, node, "patient@bench.example").await;
        let server = Server::new(&node.url(""), &std::fs::read(node.cert()).unwrap()).unwrap();
        Self { server, clinician, patient, patient_id }
    }
}

/// One conversation: its devices (with the token each attaches with; the first sends) and the
/// ciphertexts the sender replays.
struct Room {
    conversation: Uuid,
    devices: Vec<(Device, String)>,
    ciphertexts: Vec<String>,
}

/// One step's figures.
struct Figures {
    /// The server closed the sending socket (its session's inbound queue overflowed).
    closed: bool,
    ingest: f64,
    ack_p50: Duration,
    ack_p99: Duration,
    deliveries: f64,
    p50: Duration,
    p99: Duration,
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * q) as usize]
}

impl Room {
    /// `size` devices, half the clinician's (the first sends) and half the patient's, in one
    /// conversation, and enough ciphertexts for `max_rate` over one step.
    async fn set_up(node: &Node, practice: &Practice, size: usize, max_rate: u32) -> Self {
        let (dr, patient) =
            (practice.server.with_token(&practice.clinician), practice.server.with_token(&practice.patient));
        let mut devices = Vec::with_capacity(size);
        for i in 0..size {
            let (api, token) = if i < size / 2 { (&dr, &practice.clinician) } else { (&patient, &practice.patient) };
            devices.push((Device::register(api).await.unwrap(), token.clone()));
        }
        let mut sockets = Vec::new();
        for (device, token) in &devices {
            sockets.push(device.connect(&practice.server.with_token(token)).await.unwrap());
        }
        let patient_user = patient.user_id().await.unwrap();
        let conversation = {
            let (first, _) = &mut devices[0];
            first.create_conversation(&dr, &mut sockets[0], practice.patient_id, &[patient_user]).await.unwrap()
        };
        for (i, (device, _)) in devices.iter_mut().enumerate().skip(1) {
            loop {
                match device.next_event(&mut sockets[i], Duration::from_secs(10)).await.unwrap() {
                    Some(Event::Joined { .. }) => break,
                    Some(_) => continue,
                    None => panic!("device {i} did not join"),
                }
            }
        }
        for (i, socket) in sockets.iter_mut().enumerate() {
            devices[i].0.flush_acks(socket).await.unwrap();
        }
        for socket in sockets {
            socket.close().await;
        }
        let count = (f64::from(max_rate) * seconds().as_secs_f64()) as usize + 1;
        let (sender, _) = &mut devices[0];
        let payload = vec![b'x'; 200];
        let ciphertexts = (0..count)
            .map(|_| base64::engine::general_purpose::STANDARD.encode(sender.encrypt(conversation, &payload).unwrap()))
            .collect();
        let _ = node;
        Self { conversation, devices, ciphertexts }
    }

    async fn tear_down(self, practice: &Practice) {
        for (device, token) in &self.devices {
            let _ = device.unregister(&practice.server.with_token(token)).await;
        }
    }

    /// Offers `rate` messages per second to Confidant for one step.
    async fn confidant(&self, node: &Node, rate: u32) -> Figures {
        let url = format!("wss://localhost:{}/ws", node.address.port());
        let mut sockets = Vec::new();
        for (device, token) in &self.devices {
            let (mut ws, _) =
                connect_async_tls_with_config(&url, None, true, Some(connector(&node.cert()))).await.unwrap();
            ws.send(Message::Text(json!({ "v": 1, "type": "auth", "token": token }).to_string().into())).await.unwrap();
            // The protocol: nothing but `auth` until the welcome.
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"welcome\"") => break,
                    Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    other => panic!("not authenticated: {other:?}"),
                }
            }
            let attach = json!({ "v": 1, "type": "mls.attach", "id": "attach", "device_id": device.device_id });
            ws.send(Message::Text(attach.to_string().into())).await.unwrap();
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.contains("\"ack\"") && text.contains("\"attach\"") => break,
                    Some(Ok(Message::Close(frame))) => panic!("closed while attaching: {frame:?}"),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended while attaching: {other:?}"),
                }
            }
            sockets.push(ws);
        }
        // The same settling time the relay's step gives its room joins: both servers start a
        // step idle, with their connections made.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frames: Vec<String> = self
            .ciphertexts
            .iter()
            .enumerate()
            .map(|(n, message)| {
                json!({ "v": 1, "type": "mls.send", "id": n.to_string(), "conversation_id": self.conversation, "message": message })
                    .to_string()
            })
            .collect();
        drive(sockets, frames, &self.ciphertexts, rate).await
    }

    /// Offers `rate` messages per second to the bare relay for one step.
    async fn bare(&self, bare: &BareServer, rate: u32) -> Figures {
        let url = format!("wss://localhost:{}/", bare.port);
        let room = Uuid::new_v4().to_string();
        let mut sockets = Vec::new();
        for _ in &self.devices {
            let (mut ws, _) =
                connect_async_tls_with_config(&url, None, true, Some(connector(&bare.cert))).await.unwrap();
            ws.send(Message::Text(room.clone().into())).await.unwrap();
            sockets.push(ws);
        }
        // The same settling time the relay's step gives its room joins: both servers start a
        // step idle, with their connections made.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frames: Vec<String> = self
            .ciphertexts
            .iter()
            .enumerate()
            .map(|(n, message)| {
                json!({ "v": 1, "type": "mls.message", "id": n.to_string(), "conversation_id": self.conversation, "message": message })
                    .to_string()
            })
            .collect();
        let mut figures = drive(sockets, frames, &self.ciphertexts, rate).await;
        figures.ingest = 0.0;
        figures
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `frames` from the first socket at `rate` per second for one step and measures what
/// the others receive (matched to the send by the ciphertext) and what the first is answered.
async fn drive(sockets: Vec<Socket>, frames: Vec<String>, ciphertexts: &[String], rate: u32) -> Figures {
    let count = ((f64::from(rate) * seconds().as_secs_f64()) as usize).min(frames.len());
    // Frames are matched without parsing them as JSON (which cost this single generator core
    // more than the server spent on them above ~8,000 msg/s): a delivery by the tail of its
    // ciphertext, an answer by its id.
    let index: Arc<HashMap<String, usize>> =
        Arc::new(ciphertexts.iter().take(count).enumerate().map(|(n, c)| (tail(c).to_owned(), n)).collect());
    assert_eq!(index.len(), count, "ciphertext tails are unique");
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; count]));
    let mut sockets = sockets.into_iter();
    let (mut sink, mut answers) = sockets.next().unwrap().split();
    let deadline = Instant::now() + seconds() + Duration::from_secs(5);
    let mut receivers = Vec::new();
    for ws in sockets {
        let (index, sent) = (index.clone(), sent.clone());
        receivers.push(tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            let mut latencies = Vec::new();
            let mut last = None;
            while latencies.len() < index.len() {
                let Some(text) = next_text(&mut stream, deadline).await else { break };
                let Some(n) = string_field(&text, "message").and_then(|m| index.get(tail(m))) else { continue };
                if let Some(at) = sent.lock().unwrap()[*n] {
                    latencies.push((at, at.elapsed()));
                    last = Some(Instant::now());
                }
            }
            (latencies, last)
        }));
    }
    let acks_sent = sent.clone();
    let acks = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut last = None;
        while latencies.len() < count {
            let Some(text) = next_text(&mut answers, deadline).await else { break };
            if string_field(&text, "type") != Some("mls.accepted") {
                continue;
            }
            let Some(n) = string_field(&text, "id").and_then(|id| id.parse::<usize>().ok()) else { continue };
            if let Some(at) = acks_sent.lock().unwrap().get(n).copied().flatten() {
                latencies.push(at.elapsed());
                last = Some(Instant::now());
            }
        }
        (latencies, last)
    });
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut closed = false;
    // Every millisecond, the messages due by then are written together and flushed once (one
    // write, TLS records filled): a send, a record and a syscall per message made this single
    // generator core the limit near 24,000 msg/s, below either server's.
    let mut frames = frames.into_iter().take(count).enumerate().peekable();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while frames.peek().is_some() && !closed {
        tick.tick().await;
        let now = Instant::now();
        while let Some((n, _)) = frames.peek() {
            if started + interval * *n as u32 > now {
                break;
            }
            let Some((n, frame)) = frames.next() else { break };
            sent.lock().unwrap()[n] = Some(Instant::now());
            if !matches!(
                tokio::time::timeout_at(deadline.into(), sink.feed(Message::Text(frame.into()))).await,
                Ok(Ok(()))
            ) {
                closed = true;
                break;
            }
        }
        // An error means the server closed the socket (4008): it took no frame for 10 s, or this
        // generator read its answers too slowly. A write still blocked at the deadline ends the
        // step too: the readers stop there, and a server whose answers are no longer read stops
        // reading (both sides would wait on each other for ever).
        closed |= !matches!(tokio::time::timeout_at(deadline.into(), sink.flush()).await, Ok(Ok(())));
    }
    // Rates are counted over the time from the first send to the last arrival. An overloaded
    // server slows the sender through TCP, so sending then takes longer than the step.
    let mut timed = Vec::new();
    let mut delivered_by = started;
    for receiver in receivers {
        let (latencies, last) = receiver.await.unwrap();
        timed.extend(latencies);
        delivered_by = delivered_by.max(last.unwrap_or(started));
    }
    if std::env::var("BENCH_STALLS").is_ok_and(|v| v == "1") {
        print_stalls(&mut timed, started);
    }
    let mut deliveries: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    let (mut ack_latencies, acked_by) = acks.await.unwrap();
    let acked = ack_latencies.len();
    let ingest_span = acked_by.unwrap_or(started).duration_since(started).max(seconds());
    let span = delivered_by.duration_since(started).max(seconds());
    Figures {
        closed,
        ingest: acked as f64 / ingest_span.as_secs_f64(),
        ack_p50: percentile(&mut ack_latencies, 0.5),
        ack_p99: percentile(&mut ack_latencies, 0.99),
        deliveries: deliveries.len() as f64 / span.as_secs_f64(),
        p50: percentile(&mut deliveries, 0.5),
        p99: percentile(&mut deliveries, 0.99),
    }
}

/// Diagnosis (BENCH_STALLS=1): the step's stalls, i.e. runs of deliveries slower than 5 ms whose
/// sends lie within 20 ms of each other, with the wall-clock time of their first send (to set
/// beside the database's and the server's logs), how many messages each held up and how long.
fn print_stalls(timed: &mut [(Instant, Duration)], started: Instant) {
    let wall = std::time::SystemTime::now() - started.elapsed();
    timed.sort_by_key(|(at, _)| *at);
    let slow: Vec<&(Instant, Duration)> = timed.iter().filter(|(_, l)| *l > Duration::from_millis(5)).collect();
    let mut runs: Vec<(Instant, Instant, usize, Duration)> = Vec::new();
    for &&(at, latency) in &slow {
        match runs.last_mut() {
            Some(run) if at.duration_since(run.1) <= Duration::from_millis(20) => {
                run.1 = at;
                run.2 += 1;
                run.3 = run.3.max(latency);
            }
            _ => runs.push((at, at, 1, latency)),
        }
    }
    for (first, last, count, worst) in runs.iter().filter(|run| run.2 >= 20) {
        let at = wall + first.duration_since(started);
        let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        println!(
            "  stall: sends from {:02}:{:02}:{:02}.{:03} UTC (+{:.3} s into the step) for {:.1?}: {count} deliveries over 5 ms, worst {worst:.1?}",
            secs.as_secs() / 3600 % 24,
            secs.as_secs() / 60 % 60,
            secs.as_secs() % 60,
            secs.subsec_millis(),
            first.duration_since(started).as_secs_f64(),
            last.duration_since(*first),
        );
    }
}

/// The next text frame before `deadline`, past the server's heartbeat pings (tungstenite answers
/// them while reading); `None` once the socket ends or the deadline passes. Stopping at a ping
/// made every step longer than the heartbeat interval (10 s) stop reading mid-step.
async fn next_text(
    stream: &mut (impl futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    deadline: Instant,
) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes> {
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            _ => return None,
        }
    }
}

/// The value of a string field `"name":"..."` of a JSON frame written without spaces (as both
/// servers write them), without parsing the frame; values here hold no escapes.
fn string_field<'a>(frame: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":\"");
    let start = frame.find(&key)? + key.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The last 24 characters of a base64 ciphertext: its AEAD tag, different for every message
/// (the leading bytes are the MLS header, the same for a whole epoch).
fn tail(ciphertext: &str) -> &str {
    &ciphertext[ciphertext.len().saturating_sub(24)..]
}

/// Rooms of connections by name.
type Rooms = Arc<Mutex<HashMap<String, Vec<(usize, tokio::sync::mpsc::UnboundedSender<Message>)>>>>;

/// A bare relay over TLS 1.3 (same rustls and certificate as Confidant): a connection's first
/// frame names its room; every later text frame goes to the room's other connections. No
/// storage, no checks: the ceiling of relaying on this machine.
fn bare_relay(dir: &Path) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = confidant::tls::ensure_dev_certificate(dir).unwrap();
    let chain = vec![CertificateDer::from_pem_file(&cert.cert_path).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&cert.key_path).unwrap();
    let config = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rooms: Rooms = Arc::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        std::fs::write(dir.join("port"), listener.local_addr().unwrap().port().to_string()).unwrap();
        let mut next_id = 0usize;
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            // As Confidant does: small frames go out at once rather than behind a delayed ACK.
            let _ = tcp.set_nodelay(true);
            next_id += 1;
            let (acceptor, rooms, me) = (acceptor.clone(), rooms.clone(), next_id);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let Ok(ws) = tokio_tungstenite::accept_async(tls).await else { return };
                let (mut sink, mut stream) = ws.split();
                let Some(Ok(Message::Text(room))) = stream.next().await else { return };
                let room = room.to_string();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                rooms.lock().unwrap().entry(room.clone()).or_default().push((me, tx));
                tokio::spawn(async move {
                    while let Some(message) = rx.recv().await {
                        if sink.send(message).await.is_err() {
                            return;
                        }
                    }
                });
                while let Some(Ok(message)) = stream.next().await {
                    if !message.is_text() {
                        continue;
                    }
                    let rooms = rooms.lock().unwrap();
                    for (id, peer) in rooms.get(&room).into_iter().flatten() {
                        if *id != me {
                            let _ = peer.send(message.clone());
                        }
                    }
                }
                rooms.lock().unwrap().entry(room).or_default().retain(|(id, _)| *id != me);
            });
        }
    });
}
