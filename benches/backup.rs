//! Backup benchmark on a practice of at least 1 GiB (SQLite): `confidant backup create`'s
//! throughput (consistent copy, tar, age encryption), `backup restore`'s time per GiB, and the
//! latency of reads from the main store while an online backup runs compared with none. The
//! bulk is attachment ciphertext, which dominates a practice's size. Prints its figures; not a
//! test. Run with `cargo bench --bench backup` (BACKUP_BENCH_MIB overrides the size,
//! BACKUP_BENCH_ROUNDS the rounds of backup and restore on the one practice, 3 by default;
//! the last line gives their medians).
#![allow(clippy::print_stdout, clippy::expect_used)] // a program that prints figures; set-up failures abort it

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use confidant::backup::create::Source;
use confidant::backup::restore::Target;
use confidant::backup::{Identities, Recipients};
use confidant::crypto::{KeyBytes, Keyring, MasterKey};
use confidant::settings::DatabaseSettings;
use confidant::storage::{Location, Storage, Store};

const POOL: DatabaseSettings = DatabaseSettings { max_connections: 4, acquire_timeout_secs: 30 };
const ATTACHMENT: usize = 1 << 20;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let mib: usize = std::env::var("BACKUP_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1100);
        println!(
            "Backup benchmark on {} cores, a {mib} MiB SQLite practice",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let work = tempfile::tempdir().expect("work dir");
        let data = work.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let main =
            Storage::connect(Store::Main, &Location::Sqlite(data.join("confidant.db")), &POOL).await.expect("main");
        let audit =
            Storage::connect(Store::Audit, &Location::Sqlite(data.join("audit.db")), &POOL).await.expect("audit");
        main.migrate().await.expect("migrate");
        audit.migrate().await.expect("migrate");
        let master = MasterKey::from_key(KeyBytes::from_slice(&[7; 32]).expect("key"));
        let fingerprint = master.fingerprint().to_owned();
        let _keyring = Keyring::open(main.clone(), master).await.expect("keyring");
        let t = Instant::now();
        fill(&main, mib).await;
        let size = std::fs::metadata(data.join("confidant.db")).expect("size").len();
        println!("[fill] {:.0} MiB of attachments in {:.1?}", size as f64 / 1048576.0, t.elapsed());

        let identity = age::x25519::Identity::generate();
        let recipients = Recipients::parse(&[identity.to_public().to_string()]).expect("recipient");
        let key_file = work.path().join("identity.txt");
        std::fs::write(&key_file, identity.to_string().expose_secret()).expect("identity");
        let rounds: usize = std::env::var("BACKUP_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
        let (mut backup_mbs, mut restore_s_per_gib) = (Vec::new(), Vec::new());
        let (mut idle_p99, mut busy_p99, mut busy_max) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let idle = read_latencies(&main, mib as u64, Duration::from_secs(8), None).await;
            println!("[round {round}] [reads, no backup] {}", summary(&idle));

            let out = work.path().join("practice.backup");
            let done = Arc::new(AtomicBool::new(false));
            let source = Source {
                main: &main,
                audit: &audit,
                checkpoint_dir: data.join("audit-checkpoints"),
                local_chains: Vec::new(),
                master_key_fingerprint: fingerprint.clone(),
                staging_in: data.clone(),
            };
            let reads = read_latencies(&main, mib as u64, Duration::from_secs(600), Some(done.clone()));
            let backup = async {
                let created = confidant::backup::create(source, &recipients, &out).await.expect("backup");
                done.store(true, Ordering::SeqCst);
                created
            };
            let (busy, created) = tokio::join!(reads, backup);
            let secs = created.elapsed.as_secs_f64();
            println!(
                "[round {round}] [backup] {:.0} MiB of stores -> {:.0} MiB file in {secs:.1} s: {:.0} MB/s (of store data)",
                size as f64 / 1048576.0,
                created.bytes as f64 / 1048576.0,
                size as f64 / 1e6 / secs
            );
            println!("[round {round}] [reads, during the online backup] {}", summary(&busy));

            let restored = work.path().join("restored");
            let target = Target {
                data_dir: restored.clone(),
                main: Location::Sqlite(restored.join("confidant.db")),
                audit: Location::Sqlite(restored.join("audit.db")),
                checkpoint_dir: restored.join("audit-checkpoints"),
            };
            let identities = Identities::from_file(&key_file).expect("identities");
            let t = Instant::now();
            let done = confidant::backup::restore(&out, &identities, &target).await.expect("restore");
            let took = t.elapsed().as_secs_f64();
            println!(
                "[round {round}] [restore] decrypt, unpack, load and check against the manifest in {took:.1} s: {:.1} s per GiB",
                took / (size as f64 / 1073741824.0)
            );
            done.stores.0.close().await;
            done.stores.1.close().await;
            std::fs::remove_dir_all(&restored).expect("remove the restored copy");
            std::fs::remove_file(&out).expect("remove the backup");

            backup_mbs.push(size as f64 / 1e6 / secs);
            restore_s_per_gib.push(took / (size as f64 / 1073741824.0));
            idle_p99.push(quantile(&idle, 0.99).as_secs_f64() * 1e3);
            busy_p99.push(quantile(&busy, 0.99).as_secs_f64() * 1e3);
            busy_max.push(quantile(&busy, 1.0).as_secs_f64() * 1e3);
        }
        println!(
            "[median of {rounds}] backup {:.0} MB/s; restore {:.1} s per GiB; read p99 {:.2} ms without a backup, \
             {:.2} ms during one (max {:.0} ms)",
            median(&mut backup_mbs),
            median(&mut restore_s_per_gib),
            median(&mut idle_p99),
            median(&mut busy_p99),
            median(&mut busy_max)
        );
        main.close().await;
        audit.close().await;
    });
}

/// Adds `mib` attachments of 1 MiB (pseudo-random bytes, as ciphertext is). They name a
/// conversation and uploader that do not exist: foreign keys are off on the one connection that
/// writes them, since only their bytes matter here.
async fn fill(main: &Storage, mib: usize) {
    let mut conn = main.pool_for_tests().acquire().await.expect("connection");
    sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await.expect("pragma");
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
             VALUES ($1, '00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', $2, X'00', $3, 0)",
        )
        .bind(format!("00000000-0000-7000-9000-{n:012}"))
        .bind(ATTACHMENT as i64)
        .bind(blob.clone())
        .execute(&mut *conn)
        .await
        .expect("attachment");
    }
    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await.expect("pragma");
}

/// Reads one of the `rows` attachments' metadata by id, again and again, for `within` or until `stop`; each
/// read's latency.
async fn read_latencies(main: &Storage, rows: u64, within: Duration, stop: Option<Arc<AtomicBool>>) -> Vec<Duration> {
    let pool = main.pool_for_tests();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < within && !stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
        let t = Instant::now();
        let _: i64 = sqlx::query_scalar("SELECT size_bytes FROM attachments WHERE attachment_id = $1")
            .bind(format!("00000000-0000-7000-9000-{:012}", n % rows))
            .fetch_one(pool)
            .await
            .expect("read");
        latencies.push(t.elapsed());
        n += 1;
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
