//! Backup benchmark on a practice of at least 1 GiB that a running server serves, on SQLite and
//! on PostgreSQL: `confidant backup create`'s throughput (the command an operator runs, against
//! the live stores), the restore's time per GiB, and the latency of the server's HTTP answers
//! while the online backup runs compared with none. The answer timed is a clinician reading a
//! patient's record (`GET /api/v1/patients/{id}`: a PHI read, so one audit append each), every
//! 5 ms. The bulk is attachment ciphertext, which dominates a practice's size. Prints its
//! figures; not a test. Run with `cargo bench --bench backup`; knobs: BACKUP_BENCH_BACKENDS
//! ("sqlite,postgres"), BACKUP_BENCH_MIB (1100), BACKUP_BENCH_ROUNDS (3; the last line of each
//! backend gives their medians).
//!
//! The server is pinned to core 0 (as in every load benchmark); the backup command, the
//! benchmark's client and PostgreSQL share both cores with it.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a program that prints figures; set-up failures abort it

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use confidant::backup::Identities;
use confidant::backup::restore::Target;
use confidant::settings::{DatabaseSettings, DatabaseUrl};
use confidant::storage::{Location, Storage, Store};
use serde_json::Value;
use support::node::{Node, create_patient, enroll_totp, owner_and_clinician, sign_in};

const POOL: DatabaseSettings = DatabaseSettings { max_connections: 4, acquire_timeout_secs: 30 };
const ATTACHMENT: usize = 1 << 20;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let backends = std::env::var("BACKUP_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    for backend in backends.split(',') {
        runtime.block_on(run(backend.trim()));
    }
}

async fn run(backend: &str) {
    let mib = knob("BACKUP_BENCH_MIB", 1100);
    let rounds = knob("BACKUP_BENCH_ROUNDS", 3);
    println!(
        "[{backend}] Backup benchmark on {} cores, a {mib} MiB practice served by a running server",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let work = tempfile::tempdir().expect("work dir");
    let data = work.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let (env, databases) = match backend {
        "postgres" => {
            let (env, names) = support::server_databases("bench_backup", None).await;
            (env, Some(names))
        }
        _ => (Vec::new(), None),
    };
    let mut node = Node::start(&data, &env);
    let (client, _owner) = owner_and_clinician(&node).await;
    let dr = sign_in(&client, &node, "dr@bench.example").await;
    enroll_totp(&client, &node, &dr).await;
    let patient = create_patient(&client, &node, &dr, "Bench Patient").await;
    let patient_url = node.url(&format!("/api/v1/patients/{patient}"));
    let me: Value = client.get(node.url("/api/v1/me")).bearer_auth(&dr).send().await.unwrap().json().await.unwrap();
    let uploader = me["user_id"].as_str().expect("the clinician's id").to_owned();

    // The bulk, written beside the running server into its main store.
    let main_location = match &databases {
        Some([main, _]) => Location::Postgres(DatabaseUrl::try_from(format!("{}/{main}", support::pg_url())).unwrap()),
        None => Location::Sqlite(data.join("confidant.db")),
    };
    let main = Storage::connect(Store::Main, &main_location, &POOL).await.expect("main store");
    let t = Instant::now();
    fill(&main, mib, &uploader).await;
    let size = store_bytes(&main, databases.is_some()).await;
    println!("[{backend}] [fill] a {:.0} MiB main store in {:.1?}", size as f64 / 1048576.0, t.elapsed());

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key_file = work.path().join("identity.txt");
    std::fs::write(&key_file, identity.to_string().expose_secret()).expect("identity");
    let (mut backup_mbs, mut restore_s_per_gib) = (Vec::new(), Vec::new());
    let (mut idle_p99, mut busy_p99, mut busy_max) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let idle = http_latencies(&client, &dr, &patient_url, Duration::from_secs(8), None).await;
        println!("[{backend}] [round {round}] [HTTP reads, no backup] {}", summary(&idle));

        let out = work.path().join("practice.backup");
        let done = Arc::new(AtomicBool::new(false));
        let reads = http_latencies(&client, &dr, &patient_url, Duration::from_secs(600), Some(done.clone()));
        let backup = {
            let (out, done) = (out.clone(), done.clone());
            let cli =
                node.cli_command(&["backup", "create", "--to", &out.display().to_string(), "--recipient", &recipient]);
            tokio::task::spawn_blocking(move || {
                let t = Instant::now();
                let output = { cli }.output().expect("backup command");
                done.store(true, Ordering::SeqCst);
                assert!(output.status.success(), "backup create: {}", String::from_utf8_lossy(&output.stderr));
                (t.elapsed(), std::fs::metadata(&out).expect("backup file").len())
            })
        };
        let (busy, backed) = tokio::join!(reads, backup);
        let (took, bytes) = backed.expect("backup task");
        let secs = took.as_secs_f64();
        println!(
            "[{backend}] [round {round}] [backup create] {:.0} MiB of stores -> {:.0} MiB file in {secs:.1} s: {:.0} MB/s (of store data)",
            size as f64 / 1048576.0,
            bytes as f64 / 1048576.0,
            size as f64 / 1e6 / secs
        );
        println!("[{backend}] [round {round}] [HTTP reads, during the online backup] {}", summary(&busy));

        let restored = work.path().join("restored");
        let scratch = match backend {
            "postgres" => Some(support::server_databases("bench_restore", None).await.1),
            _ => None,
        };
        let store = |name: Option<&String>, file: &str| match name {
            Some(name) => Location::Postgres(DatabaseUrl::try_from(format!("{}/{name}", support::pg_url())).unwrap()),
            None => Location::Sqlite(restored.join(file)),
        };
        let target = Target {
            data_dir: restored.clone(),
            main: store(scratch.as_ref().map(|s| &s[0]), "confidant.db"),
            audit: store(scratch.as_ref().map(|s| &s[1]), "audit.db"),
            checkpoint_dir: restored.join("audit-checkpoints"),
        };
        let identities = Identities::from_file(&key_file).expect("identities");
        let t = Instant::now();
        let done = confidant::backup::restore(&out, &identities, &target).await.expect("restore");
        let took = t.elapsed().as_secs_f64();
        println!(
            "[{backend}] [round {round}] [restore] decrypt, unpack, load and check against the manifest in {took:.1} s: {:.1} s per GiB",
            took / (size as f64 / 1073741824.0)
        );
        done.stores.0.close().await;
        done.stores.1.close().await;
        std::fs::remove_dir_all(&restored).expect("remove the restored copy");
        std::fs::remove_file(&out).expect("remove the backup");
        for name in scratch.into_iter().flatten() {
            support::pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }

        backup_mbs.push(size as f64 / 1e6 / secs);
        restore_s_per_gib.push(took / (size as f64 / 1073741824.0));
        idle_p99.push(quantile(&idle, 0.99).as_secs_f64() * 1e3);
        busy_p99.push(quantile(&busy, 0.99).as_secs_f64() * 1e3);
        busy_max.push(quantile(&busy, 1.0).as_secs_f64() * 1e3);
    }
    println!(
        "[{backend}] [median of {rounds}] backup {:.0} MB/s; restore {:.1} s per GiB; HTTP read p99 {:.2} ms without a \
         backup, {:.2} ms during one (max {:.0} ms)",
        median(&mut backup_mbs),
        median(&mut restore_s_per_gib),
        median(&mut idle_p99),
        median(&mut busy_p99),
        median(&mut busy_max)
    );
    main.close().await;
    node.stop();
    for name in databases.into_iter().flatten() {
        support::pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// Adds `mib` attachments of 1 MiB (pseudo-random bytes, as ciphertext is) to one staff
/// conversation of `uploader`'s, made here with no MLS group behind it: only the bytes matter,
/// but every row keeps the store's constraints, which a restore checks. Dated now, so the
/// server's sweep of unsent uploads spares them.
async fn fill(main: &Storage, mib: usize, uploader: &str) {
    let pool = main.pool_for_tests();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let conversation = "00000000-0000-7000-8000-000000000002";
    sqlx::query(
        "INSERT INTO conversations (conversation_id, patient_id, created_by, created_at_ms, epoch, last_seq, public_group, kind) \
         VALUES ($1, NULL, $2, $3, 0, 0, $4, 'staff')",
    )
    .bind(conversation)
    .bind(uploader)
    .bind(now_ms)
    .bind(Vec::<u8>::new())
    .execute(pool)
    .await
    .expect("conversation");
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut blob = vec![0u8; ATTACHMENT];
    for n in 0..mib {
        for chunk in blob.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        sqlx::query(
            "INSERT INTO attachments (attachment_id, conversation_id, uploaded_by, size_bytes, sha256, ciphertext, uploaded_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(format!("00000000-0000-7000-9000-{n:012}"))
        .bind(conversation)
        .bind(uploader)
        .bind(ATTACHMENT as i64)
        .bind(vec![0u8; 32])
        .bind(blob.clone())
        .bind(now_ms)
        .execute(pool)
        .await
        .expect("attachment");
    }
}

/// The main store's size on disk: SQLite's pages, PostgreSQL's database.
async fn store_bytes(main: &Storage, postgres: bool) -> u64 {
    let sql = if postgres {
        "SELECT pg_database_size(current_database())"
    } else {
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    };
    let bytes: i64 = sqlx::query_scalar(sql).fetch_one(main.pool_for_tests()).await.expect("store size");
    bytes as u64
}

/// The clinician's read of the patient's record, every 5 ms, for `within` or until `stop`; each
/// answer's latency (all must be 200).
async fn http_latencies(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    within: Duration,
    stop: Option<Arc<AtomicBool>>,
) -> Vec<Duration> {
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < within && !stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
        let t = Instant::now();
        let answer = client.get(url).bearer_auth(token).send().await.expect("read");
        assert_eq!(answer.status().as_u16(), 200, "the patient's record");
        answer.bytes().await.expect("body");
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies
}

fn quantile(latencies: &[Duration], q: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn summary(latencies: &[Duration]) -> String {
    let at = |q| quantile(latencies, q);
    format!("{} reads: p50 {:.2?}, p99 {:.2?}, max {:.2?}", latencies.len(), at(0.5), at(0.99), at(1.0))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}
