//! Audit writer benchmark: sustained durable events/s and ack latency for the group-committing
//! `AuditWriter`, next to a naive one-INSERT-per-event writer, on SQLite and PostgreSQL; and
//! chain verification speed. Prints its figures; not a test. Run with `cargo bench --bench audit`
//! (PostgreSQL at CONFIDANT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432).
#![allow(clippy::print_stdout, clippy::expect_used)] // a program that prints figures; set-up failures abort it

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use confidant::audit::chain::{AuditRow, ChainHead};
use confidant::audit::{AuditStore, verify_chains};
use confidant::storage::Store;
use confidant_actors::audit::{
    Action, AuditActor, AuditEvent, AuditWriter, Outcome, ResourceType, Role, WriterLimits, record,
};
use confidant_actors::ids::{NodeId, PatientId, RequestId, SessionId, UserId};

mod support;

const SUSTAINED_EVENTS: usize = 200_000;
const CONCURRENT_SENDERS: usize = 4_096;
const NAIVE_EVENTS: usize = 2_000;

fn main() {
    let system = actix::System::new();
    system.block_on(async {
        println!(
            "audit benchmark on {} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            machine()
        );
        // PostgreSQL twice: over loopback TCP (sqlx 0.9.1 sets TCP_NODELAY again; 0.9.0 left
        // Nagle's algorithm on, docs/PERFORMANCE.md) and over its Unix socket.
        let socket = support::postgres_socket_dir().map(|_| "postgres-socket");
        for backend in ["sqlite", "postgres"].into_iter().chain(socket) {
            run(backend).await;
        }
    });
}

async fn run(backend: &str) {
    let (storage, _guard) = support::open(backend, Store::Audit).await;
    let node = NodeId::generate();
    let writer =
        AuditWriter::new(node, Arc::new(AuditStore::new(storage.clone(), node)), WriterLimits::default()).start();

    // Sustained throughput: many senders each awaiting its own durable acknowledgement.
    let started = Instant::now();
    let mut in_flight = Vec::with_capacity(CONCURRENT_SENDERS);
    let per_sender = SUSTAINED_EVENTS / CONCURRENT_SENDERS;
    for _ in 0..CONCURRENT_SENDERS {
        let writer = writer.clone();
        in_flight.push(actix::spawn(async move {
            for _ in 0..per_sender {
                record(&writer, event(node), Duration::from_secs(60)).await.expect("durable");
            }
        }));
    }
    for task in in_flight {
        task.await.expect("sender");
    }
    let sent = per_sender * CONCURRENT_SENDERS;
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    println!("[{backend}] group commit: {sent} events in {:.2?} = {rate:.0} durable events/s", started.elapsed());

    // Latency at half the sustained rate: paced senders, each ack timed. It starts after a
    // second's pause: the burst above leaves a large write-ahead log that SQLite's background
    // checkpoint flushes meanwhile (measured without the pause, the first ~150 ms of paced load
    // wait up to ~50 ms behind that flush; steady half load is what this figure is for).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let target = rate / 2.0;
    let duration = Duration::from_secs(5);
    let total = (target * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / target);
    let mut tasks = Vec::with_capacity(total);
    // The first event is due once every sender is spawned (spawning them takes ~100 ms), so
    // the offered load is paced from its first event on rather than opening with a burst.
    let begin = Instant::now() + Duration::from_millis(500);
    for i in 0..total {
        let due = begin + interval * i as u32;
        let writer = writer.clone();
        tasks.push(actix::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            let t = Instant::now();
            record(&writer, event(node), Duration::from_secs(60)).await.expect("durable");
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.push(task.await.expect("sender"));
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "[{backend}] ack latency at {target:.0} events/s ({total} events): p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        p(0.5),
        p(0.9),
        p(0.99),
        p(1.0)
    );

    // Naive writer: one INSERT, one transaction per event, through the same store code.
    let naive_store = AuditStore::new(storage.clone(), NodeId::generate());
    let t = Instant::now();
    for _ in 0..NAIVE_EVENTS {
        confidant_actors::audit::AuditSink::append(&naive_store, vec![event(naive_node(&naive_store))])
            .await
            .expect("naive");
    }
    let naive = NAIVE_EVENTS as f64 / t.elapsed().as_secs_f64();
    println!("[{backend}] naive one-insert-per-event: {naive:.0} events/s; group commit is {:.1}x", rate / naive);

    // Verification speed over everything written above.
    let t = Instant::now();
    let chains = verify_chains(&storage).await.expect("query").expect("intact");
    let entries: u64 = chains.iter().map(|c| c.entries).sum();
    println!(
        "[{backend}] verify: {entries} entries in {:.2?} = {:.0} entries/s",
        t.elapsed(),
        entries as f64 / t.elapsed().as_secs_f64()
    );

    // Hashing alone, for reference.
    let e = event(node);
    let t = Instant::now();
    let mut head = ChainHead::EMPTY;
    for _ in 0..200_000 {
        head = AuditRow::chained(&e, head).as_head();
    }
    println!("[{backend}] chain hashing alone: {:.0} entries/s", 200_000.0 / t.elapsed().as_secs_f64());
    storage.close().await;
}

fn naive_node(store: &AuditStore) -> NodeId {
    store.node_id()
}

fn event(node: NodeId) -> AuditEvent {
    let actor = AuditActor::User { id: UserId::from_uuid(uuid::Uuid::new_v4()), role: Role::Clinician };
    AuditEvent::new(node, actor, Action::Read, Outcome::Success)
        .on(ResourceType::Patient, Some(uuid::Uuid::new_v4()))
        .for_patient(PatientId::from_uuid(uuid::Uuid::new_v4()))
        .in_session(SessionId::from_uuid(uuid::Uuid::new_v4()))
        .from_request(RequestId::generate(), Some("203.0.113.7".parse().expect("ip")))
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
