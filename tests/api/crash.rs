//! Durability of acknowledged audit events across `kill -9`. A child process (this test binary,
//! re-run as the `load_generator` helper) writes audit events as fast as it can and prints each
//! event id once its acknowledgement arrives; the test kills it with SIGKILL mid-stream, then
//! checks that the chain verifies, that every acknowledged event is stored, and that a new
//! writer continues the chain.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use confidant::audit::{AuditStore, verify_chains};
use confidant::settings::{self, DatabaseUrl};
use confidant::storage::{Location, Storage, Store};
use confidant_actors::audit::{
    Action, AuditActor, AuditEvent, AuditWriter, Outcome, ResourceType, WriterLimits, record,
};
use confidant_actors::ids::NodeId;
use sqlx::Row;

use crate::helpers::{Backend, TestDatabase};

/// Environment of the helper: where to write (a SQLite file or a PostgreSQL URL).
const LOAD_TARGET: &str = "CONFIDANT_TEST_LOAD_TARGET";
const ACKED_BEFORE_KILL: usize = 3_000;

async fn open(target: &str) -> Storage {
    let settings = settings::load_from(None, []).unwrap();
    let location = if target.starts_with("postgres") {
        Location::Postgres(DatabaseUrl::try_from(target.to_owned()).unwrap())
    } else {
        Location::Sqlite(target.into())
    };
    let storage = Storage::connect(Store::Audit, &location, &settings.database).await.unwrap();
    storage.migrate().await.unwrap();
    storage
}

fn writer_for(storage: &Storage, node: NodeId) -> actix::Addr<AuditWriter> {
    AuditWriter::new(node, Arc::new(AuditStore::new(storage.clone(), node)), WriterLimits::default()).start()
}

fn event(node: NodeId) -> AuditEvent {
    AuditEvent::new(node, AuditActor::System, Action::Read, Outcome::Success)
        .on(ResourceType::Patient, Some(uuid::Uuid::new_v4()))
}

/// The helper process: not a test by itself (ignored, and a no-op without its environment).
#[actix::test]
#[ignore = "run by audit_events_acknowledged_before_kill_9_survive it"]
#[allow(clippy::print_stdout)]
async fn load_generator() {
    let Ok(target) = std::env::var(LOAD_TARGET) else { return };
    let storage = open(&target).await;
    let node = NodeId::generate();
    let writer = writer_for(&storage, node);
    let mut senders = Vec::new();
    for _ in 0..64 {
        let writer = writer.clone();
        senders.push(actix::spawn(async move {
            loop {
                let event = event(node);
                let id = event.event_id;
                if record(&writer, event, Duration::from_secs(30)).await.is_ok() {
                    println!("acked {id}");
                }
            }
        }));
    }
    for sender in senders {
        let _ = sender.await;
    }
}

crate::on_both_backends_actix!(audit_events_acknowledged_before_kill_9_survive);

async fn audit_events_acknowledged_before_kill_9_survive(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::create("crash").await),
    };
    let target = db.as_ref().map_or_else(|| dir.path().join("audit.db").display().to_string(), TestDatabase::url);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::load_generator", "--ignored", "--nocapture", "--test-threads=1"])
        .env(LOAD_TARGET, &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = HashSet::new();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("acked ") {
            acked.insert(id.to_owned());
            if acked.len() == ACKED_BEFORE_KILL {
                break;
            }
        }
    }
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    assert_eq!(acked.len(), ACKED_BEFORE_KILL, "the generator stopped early");

    let storage = open(&target).await;
    let chains = verify_chains(&storage).await.unwrap().expect("the chain verifies after kill -9");
    let stored: HashSet<String> = sqlx::query("SELECT event_id FROM audit_entries")
        .fetch_all(storage.pool_for_tests())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events were lost, e.g. {:?}", lost.len(), lost.first());

    // A restarted writer for the same node continues the chain where the crash left it.
    let node: NodeId = chains[0].node_id.parse().unwrap();
    let writer = writer_for(&storage, node);
    record(&writer, event(node), Duration::from_secs(10)).await.unwrap();
    let after = verify_chains(&storage).await.unwrap().expect("the continued chain verifies");
    assert_eq!(after[0].last_seq, chains[0].last_seq + 1);
}
