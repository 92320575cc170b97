//! The audit trail: events round-trip through the writer and the store, acknowledgements mean
//! durable, the store refuses changes, and verification catches every kind of tampering on both
//! backends.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use confidant::audit::chain::AuditRow;
use confidant::audit::checkpoint::CheckpointLog;
use confidant::audit::purge::purge_before;
use confidant::audit::{AuditStore, Broken, Problem, Trust, verify_chains, verify_checkpoints};
use confidant::settings::{self, DatabaseUrl};
use confidant::storage::{Location, Storage, Store};
use confidant_actors::audit::{
    Action, AuditActor, AuditEvent, AuditWriter, Outcome, ReasonCode, ResourceType, Role, WriterLimits, record,
};
use confidant_actors::ids::{NodeId, PatientId, RequestId, SessionId, UserId};
use ed25519_dalek::SigningKey;
use sqlx::Connection;

use crate::helpers::{
    Backend, Options, TEST_MASTER_KEY, TestDatabase, run_to_exit, server_command, spawn_app, spawn_app_with,
};

/// The fixture signs a checkpoint after this many entries.
const CHECKPOINT_EVERY: u64 = 5;

/// An audit store on `backend` with a writer for one node.
pub(crate) struct AuditFixture {
    pub(crate) storage: Storage,
    pub(crate) store: Arc<AuditStore>,
    pub(crate) writer: Addr<AuditWriter>,
    pub(crate) node: NodeId,
    /// A connection that bypasses the application: SQLite file access or the PostgreSQL superuser.
    pub(crate) privileged_url: String,
    pub(crate) backend: Backend,
    pub(crate) _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

pub(crate) async fn fixture(backend: Backend) -> AuditFixture {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        settings::load_from(None, [("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string())]).unwrap();
    let (location, db, privileged_url) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("audit.db");
            (Location::Sqlite(path.clone()), None, format!("sqlite://{}", path.display()))
        }
        Backend::Postgres => {
            let db = TestDatabase::create("audit").await;
            let url = db.url();
            (Location::Postgres(DatabaseUrl::try_from(url.clone()).unwrap()), Some(db), url)
        }
    };
    let storage = Storage::connect(Store::Audit, &location, &settings.database).await.unwrap();
    storage.migrate().await.unwrap();
    let node = NodeId::generate();
    let key = SigningKey::from_bytes(&[42; 32]);
    let log = CheckpointLog::new(dir.path().join("checkpoints"));
    let witness = confidant::audit::Witnesses::new([dir.path().join("witness")], None);
    let store = Arc::new(
        AuditStore::new(storage.clone(), node).with_checkpoints(key, log, CHECKPOINT_EVERY).witnessed_by(witness),
    );
    let writer = AuditWriter::new(node, store.clone(), WriterLimits::default()).start();
    AuditFixture { storage, store, writer, node, privileged_url, backend, _dir: dir, _db: db }
}

impl AuditFixture {
    /// Records `count` varied events, each acknowledged, and waits for the checkpoints they are
    /// due (sealed in the background, after the acknowledgement).
    pub(crate) async fn record_events(&self, count: usize) -> Vec<AuditEvent> {
        let mut events = Vec::new();
        for i in 0..count {
            let event = sample_event(self.node, i);
            record(&self.writer, event.clone(), Duration::from_secs(10)).await.unwrap();
            self.store.settled().await;
            events.push(event);
        }
        events
    }

    async fn verify(&self) -> Result<Vec<confidant::audit::ChainSummary>, Broken> {
        let chains = verify_chains(&self.storage).await.unwrap()?;
        let checkpoints = CheckpointLog::new(self._dir.path().join("checkpoints")).read_all().unwrap();
        let trust = Trust::pinned([SigningKey::from_bytes(&[42; 32]).verifying_key()]);
        verify_checkpoints(&self.storage, &chains, &checkpoints, &trust).await.unwrap()?;
        Ok(chains)
    }

    /// Runs statements with the append-only protection switched off, as an attacker with
    /// database access would.
    pub(crate) async fn tamper(&self, statements: &str) {
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "DROP TRIGGER IF EXISTS audit_entries_refuse_update; DROP TRIGGER IF EXISTS audit_entries_refuse_delete; {statements}"
            ),
            Backend::Postgres => format!("ALTER TABLE audit_entries DISABLE TRIGGER USER; {statements}"),
        };
        self.raw(&sql).await;
    }

    /// Like [`Self::tamper`], for the checkpoint table.
    pub(crate) async fn tamper_checkpoints(&self, statements: &str) {
        let sql = match self.backend {
            Backend::Sqlite => format!("DROP TRIGGER audit_checkpoints_refuse_delete; {statements}"),
            Backend::Postgres => format!("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; {statements}"),
        };
        self.raw(&sql).await;
    }

    pub(crate) async fn raw(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.privileged_url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.privileged_url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// A blob literal in this backend's syntax.
    pub(crate) fn blob(&self, bytes: &[u8]) -> String {
        let hex = confidant::audit::checkpoint::to_hex(bytes);
        match self.backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        }
    }

    /// Runs one statement as the application could, protections in place; returns the error text.
    async fn try_as_application(&self, statement: &'static str) -> String {
        let result = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.privileged_url).await.unwrap();
                sqlx::raw_sql(statement).execute(&mut c).await.map(|_| ())
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.privileged_url).await.unwrap();
                sqlx::raw_sql(statement).execute(&mut c).await.map(|_| ())
            }
        };
        result.expect_err("the audit store accepted a change").to_string()
    }
}

pub(crate) fn sample_event(node: NodeId, i: usize) -> AuditEvent {
    let actor = AuditActor::User { id: UserId::from_uuid(uuid::Uuid::new_v4()), role: Role::Clinician };
    let outcome = if i.is_multiple_of(3) { Outcome::Denied } else { Outcome::Success };
    let mut event = AuditEvent::new(node, actor, Action::Read, outcome)
        .on(ResourceType::Patient, Some(uuid::Uuid::new_v4()))
        .for_patient(PatientId::from_uuid(uuid::Uuid::new_v4()))
        .in_session(SessionId::from_uuid(uuid::Uuid::new_v4()))
        .from_request(RequestId::generate(), Some("203.0.113.7".parse().unwrap()));
    if outcome == Outcome::Denied {
        event = event.because(ReasonCode::new("not_on_care_team").unwrap());
    }
    event
}

crate::on_both_backends_actix!(
    events_round_trip_through_writer_and_store,
    an_acknowledged_event_is_already_in_the_store,
    the_store_refuses_updates_and_deletes,
    verify_catches_a_changed_field,
    verify_catches_a_deleted_entry,
    verify_catches_two_swapped_entries,
    verify_catches_an_entry_moved_far_past_the_end,
    verify_catches_a_deleted_first_entry,
    verify_catches_a_truncated_tail_against_the_checkpoint_file,
    verify_catches_a_consistently_rewritten_chain,
    purge_removes_old_entries_and_the_rest_still_verifies,
    events_are_acknowledged_while_a_checkpoint_is_being_sealed,
);

async fn events_round_trip_through_writer_and_store(backend: Backend) {
    let f = fixture(backend).await;

    let events = f.record_events(20).await;

    let rows = stored_rows(&f).await;
    assert_eq!(rows.len(), 20);
    for (i, (event, row)) in events.iter().zip(&rows).enumerate() {
        let expected = AuditRow::chained(event, if i == 0 { Default::default() } else { rows[i - 1].as_head() });
        assert_eq!(row, &expected, "entry {i} differs from what was sent");
    }
    assert_eq!(f.verify().await.unwrap()[0].entries, 20);
}

async fn an_acknowledged_event_is_already_in_the_store(backend: Backend) {
    let f = fixture(backend).await;
    let event = sample_event(f.node, 1);

    record(&f.writer, event.clone(), Duration::from_secs(10)).await.unwrap();

    // Read through a separate connection: the commit is visible to anyone, not just the writer.
    let count: i64 = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&f.privileged_url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE event_id = $1")
                .bind(event.event_id.to_string())
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&f.privileged_url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE event_id = $1")
                .bind(event.event_id.to_string())
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(count, 1);
}

async fn the_store_refuses_updates_and_deletes(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(3).await;

    let update = f.try_as_application("UPDATE audit_entries SET outcome = 'success'").await;
    let delete = f.try_as_application("DELETE FROM audit_entries").await;
    assert!(update.contains("append-only"), "{update}");
    assert!(delete.contains("append-only") || delete.contains("purge"), "{delete}");
    if backend == Backend::Postgres {
        let truncate = f.try_as_application("TRUNCATE audit_entries").await;
        assert!(truncate.contains("append-only"), "{truncate}");
    }
    assert_eq!(f.verify().await.unwrap()[0].entries, 3);
}

async fn verify_catches_a_changed_field(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(10).await;

    f.tamper("UPDATE audit_entries SET outcome = 'success' WHERE seq = 4").await;

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 4, Problem::Altered));
}

async fn verify_catches_a_deleted_entry(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(10).await;

    f.tamper("DELETE FROM audit_entries WHERE seq = 5").await;

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 6, Problem::Missing));
}

async fn verify_catches_two_swapped_entries(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(10).await;

    f.tamper(
        "UPDATE audit_entries SET seq = -1 WHERE seq = 3; UPDATE audit_entries SET seq = 3 WHERE seq = 4; \
         UPDATE audit_entries SET seq = 4 WHERE seq = -1;",
    )
    .await;

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 3, Problem::BrokenLink));
}

async fn verify_catches_an_entry_moved_far_past_the_end(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(4).await; // no checkpoint yet, so only the chain itself can tell

    f.tamper("UPDATE audit_entries SET seq = 1000000000000 WHERE seq = 4").await;

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 1_000_000_000_000, Problem::Missing));
}

async fn verify_catches_a_deleted_first_entry(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(3).await;

    f.tamper("DELETE FROM audit_entries WHERE seq = 1").await;

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 2, Problem::Missing));
}

async fn verify_catches_a_truncated_tail_against_the_checkpoint_file(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(12).await; // checkpoints at seq 5 and 10

    // Cut the tail and the database's own checkpoints: the chain that is left is consistent.
    f.tamper("DELETE FROM audit_entries WHERE seq >= 8;").await;
    f.tamper_checkpoints("DELETE FROM audit_checkpoints WHERE seq >= 8;").await;
    assert!(verify_chains(&f.storage).await.unwrap().is_ok(), "the remaining chain is internally intact");

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 8, Problem::Truncated));
}

async fn verify_catches_a_consistently_rewritten_chain(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(6).await; // checkpoint at seq 5

    // Rewrite entry 5 and recompute every hash from there, as an attacker without the key can.
    let rows = stored_rows(&f).await;
    let mut forged = rows[4].clone();
    forged.outcome = "denied".into();
    forged.hash = forged.compute_hash().to_vec();
    let mut next = rows[5].clone();
    next.prev_hash = forged.hash.clone();
    next.hash = next.compute_hash().to_vec();
    f.tamper(&format!(
        "UPDATE audit_entries SET outcome = 'denied', hash = {} WHERE seq = 5; \
         UPDATE audit_entries SET prev_hash = {}, hash = {} WHERE seq = 6;",
        f.blob(&forged.hash),
        f.blob(&next.prev_hash),
        f.blob(&next.hash)
    ))
    .await;
    assert!(verify_chains(&f.storage).await.unwrap().is_ok(), "the rewritten chain is internally consistent");

    assert_eq!(f.verify().await.unwrap_err(), broken(&f, 5, Problem::CheckpointMismatch));
}

async fn purge_removes_old_entries_and_the_rest_still_verifies(backend: Backend) {
    let f = fixture(backend).await;
    let year_2015 = 1_420_070_400_000; // 2015-01-01T00:00:00Z
    for i in 0..8 {
        let mut old = sample_event(f.node, i);
        old.at_ms = year_2015 + i as i64;
        record(&f.writer, old, Duration::from_secs(10)).await.unwrap();
        f.store.settled().await;
    }
    f.record_events(4).await; // checkpoints sealed seq 5 (purged below) and seq 10 (kept)
    let key = SigningKey::from_bytes(&[42; 32]);
    let before_2018 = 1_514_764_800_000;

    let purged = purge_before(&f.storage, &key, before_2018, year_2015 + 1_000_000_000_000).await.unwrap();

    assert_eq!(purged.len(), 1);
    assert_eq!((purged[0].entries, purged[0].up_to_seq), (8, 8));
    let chains = f.verify().await.expect("the remaining chain verifies from its anchor");
    assert_eq!((chains[0].entries, chains[0].last_seq), (4, 12));
    f.record_events(1).await;
    assert_eq!(f.verify().await.unwrap()[0].last_seq, 13, "appending continues after a purge");
    f.tamper("DELETE FROM audit_entries WHERE seq = 9").await;
    assert_eq!(
        f.verify().await.unwrap_err(),
        broken(&f, 10, Problem::Missing),
        "the anchor does not excuse later gaps"
    );
}

async fn events_are_acknowledged_while_a_checkpoint_is_being_sealed(backend: Backend) {
    let f = fixture(backend).await;
    // The node's checkpoint file as a FIFO: a seal blocks opening it until someone reads it.
    let checkpoints = f._dir.path().join("checkpoints");
    std::fs::create_dir_all(&checkpoints).unwrap();
    let file = checkpoints.join(format!("{}.checkpoints", f.node));
    assert!(std::process::Command::new("mkfifo").arg(&file).status().unwrap().success());

    // Seq 5 starts the seal, which stays stuck while seqs 6 to 8 come in.
    let recorded = tokio::time::timeout(Duration::from_secs(5), async {
        for i in 0..8 {
            record(&f.writer, sample_event(f.node, i), Duration::from_secs(10)).await.unwrap();
        }
    })
    .await;
    let sealed = tokio::task::spawn_blocking(move || std::fs::read_to_string(file).unwrap()).await.unwrap();

    assert!(recorded.is_ok(), "appends waited for the checkpoint seal");
    let line = confidant::audit::checkpoint::Checkpoint::from_line(sealed.trim()).expect("one checkpoint line");
    assert_eq!(line.seq, 5, "the seal vouches for the entry that crossed the mark");
    assert_eq!(stored_rows(&f).await.len(), 8);
}

fn broken(f: &AuditFixture, seq: i64, problem: Problem) -> Broken {
    Broken { node_id: f.node.to_string(), seq, problem }
}

pub(crate) async fn stored_rows(f: &AuditFixture) -> Vec<AuditRow> {
    confidant::audit::verify::read_chain(&f.storage, &f.node).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_are_audited_and_the_cli_verifies_the_chain() {
    let data_dir = stopped_node().await;

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);

    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("2 entries"), "start and stop make two entries: {output}");

    let (code, output) = confidant(&data_dir, &["audit", "head"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("\"seq\":2"), "shutdown seals the chain with a checkpoint: {output}");

    let (code, output) = confidant(&data_dir, &["audit", "public-key"]);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(output.trim().len(), 64, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_1_when_the_tail_was_cut_off_after_the_last_checkpoint() {
    let data_dir = stopped_node().await;
    cut_the_tail_and_every_checkpoint_row(&data_dir).await;

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);

    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("seq 2") && output.contains("truncated"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_1_naming_the_first_bad_seq() {
    let data_dir = stopped_node().await;
    let mut c = audit_db(&data_dir).await;
    sqlx::raw_sql("DROP TRIGGER audit_entries_refuse_update; UPDATE audit_entries SET outcome = 'error' WHERE seq = 2")
        .execute(&mut c)
        .await
        .unwrap();

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);

    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("seq 2"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_going_down_is_audited_once_not_per_probe() {
    let redis = ("CONFIDANT_REDIS_URL", "redis://127.0.0.1:1".to_owned());
    let app = spawn_app_with(Backend::Sqlite, Options { env: vec![redis], ..Options::default() }).await;
    for _ in 0..3 {
        assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 503);
    }
    let (_, options) = app.into_parts_after("TERM");
    let mut c = audit_db(options.data_dir.as_ref().unwrap()).await;

    let failures: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, reason FROM audit_entries WHERE action = 'readiness_failure'")
            .fetch_all(&mut c)
            .await
            .unwrap();

    assert_eq!(failures, vec![("readiness_failure".to_owned(), Some("redis_down".to_owned()))]);
}

/// A PostgreSQL role created by a test, dropped (with its grants) when the test ends.
struct TestRole {
    name: String,
    database: String,
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let (name, database) = (self.name.clone(), self.database.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let base = crate::helpers::postgres_admin_url();
                if let Ok(mut c) = sqlx::PgConnection::connect(&format!("{base}/{database}")).await {
                    let _ =
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP OWNED BY \"{name}\""))).execute(&mut c).await;
                }
                let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres")).await.unwrap();
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{name}\"")))
                    .execute(&mut admin)
                    .await;
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_on_an_audit_role_that_can_only_select_and_insert() {
    let (main, audit) = (TestDatabase::create("main").await, TestDatabase::create("audit").await);
    let dir = tempfile::tempdir().unwrap();
    let owner_env = |c: &mut std::process::Command| {
        c.env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());
    };
    let mut migrate = server_command(dir.path());
    migrate.arg("migrate");
    owner_env(&mut migrate);
    assert_eq!(run_to_exit(migrate).0, Some(0));

    let role =
        TestRole { name: format!("confidant_audit_{}", uuid::Uuid::new_v4().simple()), database: audit.name.clone() };
    let password = "correct-horse-battery-staple-42";
    let mut setup = server_command(dir.path());
    setup.args(["audit", "setup-role", "--role", &role.name]).stdin(std::process::Stdio::piped());
    owner_env(&mut setup);
    let mut child = setup.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{password}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // The node starts and stops on the restricted role: its start and stop are appended.
    let role_url = format!("postgres://{}:{password}@127.0.0.1:5432/{}", role.name, audit.name);
    let env = vec![
        ("CONFIDANT_DATABASE_URL", main.url()),
        ("CONFIDANT_AUDIT_DATABASE_URL", role_url.clone()),
        ("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY.to_owned()),
    ];
    let app = spawn_app_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    let (status, _) = app.into_parts_after("TERM");
    assert!(status.success());

    let mut as_role = sqlx::PgConnection::connect(&role_url).await.unwrap();
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries").fetch_one(&mut as_role).await.unwrap();
    assert_eq!(entries, 2);
    for statement in [
        "UPDATE audit_entries SET outcome = 'error'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "DELETE FROM audit_checkpoints",
        "DROP TABLE audit_entries",
        "ALTER TABLE audit_entries DISABLE TRIGGER USER",
    ] {
        let refused = sqlx::raw_sql(statement).execute(&mut as_role).await.expect_err(statement).to_string();
        assert!(refused.contains("permission denied") || refused.contains("must be owner"), "{statement}: {refused}");
    }
}

#[test]
fn setup_role_refuses_a_sqlite_audit_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = server_command(dir.path());
    setup.args(["audit", "setup-role"]).stdin(std::process::Stdio::null());
    let (code, output) = run_to_exit(setup);
    assert_eq!(code, Some(2), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_jsonl_and_fhir_and_is_itself_audited() {
    let data_dir = stopped_node().await;
    let export = |format: &str| {
        let mut c = server_command(data_dir.path());
        c.args(["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01", "--format", format]);
        let output = c.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };

    let jsonl = export("jsonl");
    let actions: Vec<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["server_start", "server_stop", "export"], "the export records itself first: {jsonl}");

    let fhir = export("fhir");
    let mut check = std::process::Command::new(crate::helpers::python_tools())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/fhir_bundle_check.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), fhir.as_bytes()).unwrap();
    let checked = check.wait_with_output().unwrap();
    let verdict = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "fhir.resources 6.4.0 refuses the export: {verdict}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(verdict.trim(), "valid 4");
    let bundle: serde_json::Value = serde_json::from_str(&fhir).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert!(bundle.get("total").is_none(), "bdl-1");
    let events = bundle["entry"].as_array().unwrap();
    assert_eq!(events.len(), 4, "the second export is recorded too");
    for entry in events {
        let event = &entry["resource"];
        assert_eq!(event["resourceType"], "AuditEvent");
        for required in ["type", "recorded", "agent", "source"] {
            assert!(!event[required].is_null(), "AuditEvent lacks {required}: {event}");
        }
        assert!(event["recorded"].as_str().unwrap().starts_with("20"), "{event}");
    }

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);
    assert_eq!(code, Some(0), "the server's and the CLI's chains both verify: {output}");
    assert!(output.contains("2 chain(s)"), "{output}");
}

#[test]
fn export_refuses_a_range_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = server_command(dir.path());
    c.args(["audit", "export", "--since", "last tuesday", "--until", "2100-01-01"]);
    let (code, output) = run_to_exit(c);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("--since"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_refuses_entries_younger_than_six_years_and_audits_itself() {
    let data_dir = stopped_node().await;
    let purge = |before: &str| confidant(&data_dir, &["audit", "purge", "--before", before]);

    let (code, output) = purge("2025-01-01");
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("6 years"), "{output}");

    let (code, output) = purge("2010-01-01");
    assert_eq!(code, Some(0), "{output}");
    let mut c = audit_db(&data_dir).await;
    let purges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE action = 'purge'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(purges, 1, "the allowed purge was audited; the refused one was not attempted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_on_bad_settings_is_audited() {
    let data_dir = stopped_node().await;

    let mut bad = server_command(data_dir.path());
    bad.arg("serve").env("CONFIDANT_LISTEN", "not-an-address");
    let (code, output) = run_to_exit(bad);
    assert_eq!(code, Some(2), "{output}");

    let mut c = audit_db(&data_dir).await;
    let last: (String, String, Option<String>) =
        sqlx::query_as("SELECT action, outcome, reason FROM audit_entries ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(last, ("configuration_error".to_owned(), "error".to_owned(), Some("invalid_settings".to_owned())));
    assert_eq!(confidant(&data_dir, &["audit", "verify"]).0, Some(0));
}

/// Runs a node once (start, SIGTERM) and returns its data directory.
pub(crate) async fn stopped_node() -> tempfile::TempDir {
    let app = spawn_app(Backend::Sqlite).await;
    let (status, options) = app.into_parts_after("TERM");
    assert!(status.success());
    options.data_dir.unwrap()
}

/// Deletes a stopped node's newest entry (seq 2, its stop) and every checkpoint row, as an
/// attacker with file access would; the checkpoint files are left as they are.
pub(crate) async fn cut_the_tail_and_every_checkpoint_row(data_dir: &tempfile::TempDir) {
    let mut c = audit_db(data_dir).await;
    sqlx::raw_sql(
        "DROP TRIGGER audit_entries_refuse_delete; DROP TRIGGER audit_checkpoints_refuse_delete; \
         DELETE FROM audit_entries WHERE seq = 2; DELETE FROM audit_checkpoints;",
    )
    .execute(&mut c)
    .await
    .unwrap();
}

/// A direct connection to a stopped node's SQLite audit store.
pub(crate) async fn audit_db(data_dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", data_dir.path().join("audit.db").display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

/// Runs `confidant ARGS` on a data directory; returns (exit code, output).
pub(crate) fn confidant(data_dir: &tempfile::TempDir, args: &[&str]) -> (Option<i32>, String) {
    let mut command = server_command(data_dir.path());
    command.args(args);
    run_to_exit(command)
}
