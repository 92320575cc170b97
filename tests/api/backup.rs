//! Backups and the restore drill (issue 30), on both backends. A backup taken while the server
//! serves decrypts with the standard `age` tool, holds no master key, and verifies; a damaged
//! one does not. The drill fills a practice (patients, appointments, intake answers, messages
//! with an attachment, a signed note, audit entries), backs it up with requests in flight,
//! destroys it, restores it into empty stores, and proves that every table reads back row for
//! row as the snapshot held it, that the audit trail verifies and that the server serves the
//! same records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{
    Backend, Options, TEST_MASTER_KEY, TestApp, TestDatabase, run_to_exit, server_command, spawn_app, spawn_app_with,
};
use crate::messaging::{Conversing, dr_and_ada_conversing};
use crate::on_both_backends;
use crate::signin::{Person, owner, patient_record};
use crate::wsclient::signed_in;

on_both_backends!(
    a_backup_taken_while_serving_decrypts_with_the_age_tool_and_verifies,
    a_damaged_backup_fails_verification,
    a_restore_never_overwrites,
    restore_drill_brings_back_every_row_and_the_server_serves_it,
    store_copy_moves_a_sqlite_practice_onto_postgresql_row_for_row,
);

/// An age key pair made by the standard `age-keygen` (Debian's `age`, scripts/age-tool).
pub(crate) struct AgeKey {
    pub(crate) identity: PathBuf,
    pub(crate) recipient: String,
}

fn age_tool() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/age-tool")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub(crate) fn age_key(dir: &Path) -> AgeKey {
    let keygen = age_tool().with_file_name("age-keygen");
    let identity = dir.join("backup-identity.txt");
    let out = Command::new(keygen).arg("-o").arg(&identity).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&identity).unwrap();
    let recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).unwrap().to_owned();
    AgeKey { identity, recipient }
}

/// `confidant ARGS` against `app`'s stores (its data directory, its databases, its master key).
fn confidant(app: &TestApp, args: &[&str]) -> Command {
    let mut command = server_command(app.data_dir.path());
    command.args(args);
    if let (Some(main), Some(audit)) = (&app.main_db, &app.audit_db) {
        command
            .env("CONFIDANT_DATABASE_URL", main.url())
            .env("CONFIDANT_AUDIT_DATABASE_URL", audit.url())
            .env("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY);
    }
    command
}

/// The master key `app` runs with (base64): the test key on PostgreSQL, the generated file on
/// SQLite.
fn master_key_of(app: &TestApp, backend: Backend) -> String {
    match backend {
        Backend::Postgres => TEST_MASTER_KEY.to_owned(),
        Backend::Sqlite => std::fs::read_to_string(app.data_dir.path().join("master.key")).unwrap().trim().to_owned(),
    }
}

/// Takes a backup of `app` into `file` while `busy` keeps creating patient records through
/// `by`, and returns the command's exit code and output with how many records were created
/// while it ran.
async fn back_up_while_busy(app: &TestApp, by: &Person, key: &AgeKey, file: &Path) -> (Option<i32>, String, u32) {
    let command = confidant(app, &["backup", "create", "--to", file.to_str().unwrap(), "--recipient", &key.recipient]);
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let backup = tokio::task::spawn_blocking(move || {
        let result = run_to_exit(command);
        finished.store(true, Ordering::SeqCst);
        result
    });
    let mut created = 0;
    while !done.load(Ordering::SeqCst) {
        patient_record(app, by, &format!("Busy Patient {created}")).await;
        created += 1;
    }
    let (code, output) = backup.await.unwrap();
    (code, output, created)
}

/// Decrypts `file` with the `age` tool and unpacks the tar inside into `into`.
fn decrypt_with_age_tool(file: &Path, key: &AgeKey, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let tar = into.join("backup.tar");
    let out =
        Command::new(age_tool()).arg("-d").arg("-i").arg(&key.identity).arg("-o").arg(&tar).arg(file).output().unwrap();
    assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(into).output().unwrap();
    assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(tar).unwrap();
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}

async fn a_backup_taken_while_serving_decrypts_with_the_age_tool_and_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let record = patient_record(&app, &owner, "Ada Lovelace").await;
    let work = tempfile::tempdir().unwrap();
    let key = age_key(work.path());
    let file = work.path().join("practice.backup");

    let (code, output, created) = back_up_while_busy(&app, &owner, &key, &file).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(created > 0, "requests were served while the backup ran");

    // The standard tool opens it: a manifest, both stores, the checkpoint files.
    let plain = work.path().join("plain");
    decrypt_with_age_tool(&file, &key, &plain);
    let manifest: Value = serde_json::from_slice(&std::fs::read(plain.join("manifest.json")).unwrap()).unwrap();
    let image = if backend == Backend::Sqlite { "db" } else { "pgdump" };
    if backend == Backend::Postgres {
        // Attachments are copied apart from the dump, in binary, and listed with their checksum.
        let parts = manifest["stores"][0]["table_files"].as_array().unwrap();
        assert_eq!(parts[0]["table"], "attachments", "{parts:?}");
        assert_eq!(parts[0]["file"], "main.attachments.pgcopy");
        assert!(plain.join("main.attachments.pgcopy").is_file());
        assert!(manifest["files"].as_array().unwrap().iter().any(|f| f["path"] == "main.attachments.pgcopy"));
    }
    for name in [format!("main.{image}"), format!("audit.{image}")] {
        assert!(plain.join(&name).is_file(), "{name} in the backup");
        let listed = manifest["files"].as_array().unwrap().iter().find(|f| f["path"] == name.as_str()).unwrap();
        assert_eq!(listed["sha256"].as_str().unwrap().len(), 64);
    }
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"].as_str().unwrap().starts_with("audit-checkpoints/"))
    );
    let main = &manifest["stores"][0];
    assert_eq!(main["store"], "main");
    assert!(main["migration_level"].as_i64().unwrap() >= 20261208100002);
    assert!(main["tables"]["patients"].as_i64().unwrap() >= 1, "{main}");
    assert!(!manifest["stores"][1]["audit_heads"].as_array().unwrap().is_empty());
    assert!(manifest["master_key_fingerprint"].as_str().unwrap().starts_with("mk-"));

    // The master key is never in it, in any file.
    let master = master_key_of(&app, backend);
    for path in files_under(&plain) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(master.len()).any(|w| w == master.as_bytes()),
            "the master key is in {}",
            path.display()
        );
    }
    // Nor is any PHI in the clear: the patient's name is sealed in every image.
    for path in files_under(&plain) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"Ada Lovelace"), "a name in the clear in {}", path.display());
    }

    // `backup verify` opens the databases, the chains and every sealed field.
    let mut verify =
        confidant(&app, &["backup", "verify", file.to_str().unwrap(), "--identity", key.identity.to_str().unwrap()]);
    let scratch = scratch_databases(backend, &mut verify).await;
    let (code, output) = run_to_exit(verify);
    assert_eq!(code, Some(0), "{output}");
    for line in [
        "every checksum matches",
        "main store:",
        "audit store:",
        "audit trail intact",
        "every encrypted field opens",
        "backup sound",
    ] {
        assert!(output.contains(line), "{line:?} in:\n{output}");
    }
    drop(scratch);

    // Both runs are on the command line's audit chain.
    let reasons: Vec<String> =
        app.audit_entries().iter().filter_map(|e| e["reason"].as_str().map(str::to_owned)).collect();
    assert!(reasons.iter().any(|r| r == "backup_created"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "backup_verified"), "{reasons:?}");
    let (status, _) = owner.session.get(&app, &format!("/api/v1/patients/{record}")).await;
    assert_eq!(status, StatusCode::OK, "the server still serves");
}

/// PostgreSQL dumps are opened by restoring them: two empty scratch databases for `verify`.
async fn scratch_databases(backend: Backend, command: &mut Command) -> Option<(TestDatabase, TestDatabase)> {
    if backend == Backend::Sqlite {
        return None;
    }
    let (main, audit) = (TestDatabase::create("scratch").await, TestDatabase::create("scratch_audit").await);
    command.args(["--scratch-database", &main.url(), "--scratch-audit-database", &audit.url()]);
    Some((main, audit))
}

async fn a_damaged_backup_fails_verification(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    patient_record(&app, &owner, "Ada Lovelace").await;
    let work = tempfile::tempdir().unwrap();
    let key = age_key(work.path());
    let file = work.path().join("practice.backup");
    let (code, output) = run_to_exit(confidant(
        &app,
        &["backup", "create", "--to", file.to_str().unwrap(), "--recipient", &key.recipient],
    ));
    assert_eq!(code, Some(0), "{output}");

    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let damaged = work.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).unwrap();
    let (code, output) = run_to_exit(confidant(
        &app,
        &["backup", "verify", damaged.to_str().unwrap(), "--identity", key.identity.to_str().unwrap()],
    ));
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("cannot decrypt the backup"), "{output}");

    // Another identity cannot open it at all.
    let stranger = age_key(&work.path().join("stranger").tap_mkdir());
    let (code, output) = run_to_exit(confidant(
        &app,
        &["backup", "verify", file.to_str().unwrap(), "--identity", stranger.identity.to_str().unwrap()],
    ));
    assert_eq!(code, Some(1), "{output}");
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

async fn a_restore_never_overwrites(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let record = patient_record(&app, &owner, "Ada Lovelace").await;
    let work = tempfile::tempdir().unwrap();
    let key = age_key(work.path());
    let file = work.path().join("practice.backup");
    let (code, output) = run_to_exit(confidant(
        &app,
        &["backup", "create", "--to", file.to_str().unwrap(), "--recipient", &key.recipient],
    ));
    assert_eq!(code, Some(0), "{output}");

    let (code, output) = run_to_exit(confidant(
        &app,
        &["backup", "restore", file.to_str().unwrap(), "--identity", key.identity.to_str().unwrap()],
    ));
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("is not empty"), "{output}");
    let (status, _) = owner.session.get(&app, &format!("/api/v1/patients/{record}")).await;
    assert_eq!(status, StatusCode::OK, "the practice is untouched");
}

/// Every row of every table of both stores, as text, by table: SQLite through `quote()` of
/// each column, PostgreSQL as the row's record text. Table-driven over the catalogue, so a
/// table added by a later migration is compared without naming it here.
async fn every_row(
    backend: Backend,
    data_dir: &Path,
    databases: Option<(String, String)>,
) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    match (backend, databases) {
        (Backend::Sqlite, _) => {
            for (store, file) in [("main", "confidant.db"), ("audit", "audit.db")] {
                let url = format!("sqlite://{}?mode=ro", data_dir.join(file).display());
                let mut conn = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for table in tables {
                    let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT name FROM pragma_table_info('{table}')"
                    )))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                    let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                    let mut rows: Vec<String> =
                        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {row} FROM \"{table}\"")))
                            .fetch_all(&mut conn)
                            .await
                            .unwrap();
                    rows.sort();
                    all.insert(format!("{store}.{table}"), rows);
                }
                conn.close().await.unwrap();
            }
        }
        (Backend::Postgres, Some((main, audit))) => {
            for (store, url) in [("main", main), ("audit", audit)] {
                let mut conn = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                for table in tables {
                    let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT CAST(t AS TEXT) FROM \"{table}\" AS t"
                    )))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                    rows.sort();
                    all.insert(format!("{store}.{table}"), rows);
                }
                conn.close().await.unwrap();
            }
        }
        (Backend::Postgres, None) => panic!("PostgreSQL needs its databases"),
    }
    all
}

/// Tables whose existing rows the server changes after a backup is taken (not only adds to), so
/// a restored row there may be an older version of the original's: a session's last activity,
/// a node's stop, an alert's escalation. Each is still compared by count with the manifest.
const CHANGED_AFTER_THE_BACKUP: &[&str] = &["main.sessions", "main.nodes", "main.alerts"];

/// Fills the practice of `c`: messages both ways, an attachment, a signed note, a second
/// patient, appointments, a PHQ-9 answered by Ada. Returns the reads (path and answer) a
/// restored or moved practice must give back identically.
async fn fill(c: &mut Conversing) -> Vec<(String, Value)> {
    let app = &c.app;
    for n in 0..3 {
        let text = format!("message {n} about sleep");
        c.dr.send(&mut c.dr_socket, c.conversation, text.as_bytes()).await.unwrap();
    }
    c.phone.send(&mut c.phone_socket, c.conversation, b"a reply from Ada").await.unwrap();
    // A letter attached: 256 KiB of pseudo-random bytes, as ciphertext is (a PostgreSQL backup
    // holds attachments apart from its dump, in the binary COPY format).
    let letter: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    c.dr.send_attachment(
        &c.api_dr,
        &mut c.dr_socket,
        c.conversation,
        "a letter",
        &letter,
        "letter.pdf",
        "application/pdf",
    )
    .await
    .unwrap();
    let note = crate::notes::signed_soap(app, &c.clinician, &c.record, "Sleeping better since the last session.").await;
    let grace = patient_record(app, &c.clinician, "Grace Hopper").await;
    for (n, patient) in [&c.record, &grace].into_iter().enumerate() {
        let start = 1_900_000_000_000 + n as i64 * 7_200_000;
        let body = json!({ "clinician_id": c.clinician.session.user_id, "patient_id": patient, "starts_at_ms": start, "ends_at_ms": start + 3_000_000 });
        let (status, booked) = c.clinician.session.call(app, Method::POST, "/api/v1/appointments", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{booked}");
    }
    let path = format!("/api/v1/patients/{}/intake-forms", c.record);
    let (status, assigned) = c.clinician.session.call(app, Method::POST, &path, Some(json!({ "form": "phq9" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    let answers: serde_json::Map<String, Value> = (1..=9).map(|n| (format!("item{n}"), json!(1))).collect();
    let mut laptop = signed_in(app, &c.ada.session.access).await;
    let frame = json!({ "v": 1, "type": "intake.submit", "id": "s1", "assignment_id": assigned["assignment_id"], "answers": answers });
    laptop.send(frame).await;
    assert_eq!(laptop.frame().await["type"], "ack");
    let mut reads = Vec::new();
    let note = format!("/api/v1/notes/{note}");
    for path in [format!("/api/v1/patients/{}", c.record), format!("/api/v1/patients/{grace}"), path, note] {
        let (status, body) = c.clinician.session.get(app, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        reads.push((path, body));
    }
    reads
}

/// The clinician's reads again, on the server the practice now runs on.
async fn reads_back_identically(app: &TestApp, access: &str, reads: &[(String, Value)]) {
    let session = crate::signin::Session { access: access.to_owned(), refresh: String::new(), user_id: String::new() };
    for (path, expected) in reads {
        let (status, body) = session.get(app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(&body, expected, "{path} reads back identically");
    }
}

async fn restore_drill_brings_back_every_row_and_the_server_serves_it(backend: Backend) {
    // A practice: a clinician, Ada with an account and a device each, messages, appointments,
    // intake answers, audit entries.
    let mut c = dr_and_ada_conversing(backend).await;
    let reads = fill(&mut c).await;
    let app = &c.app;

    // Backed up with requests in flight.
    let work = tempfile::tempdir().unwrap();
    let key = age_key(work.path());
    let file = work.path().join("practice.backup");
    let (code, output, created) = back_up_while_busy(app, &c.clinician, &key, &file).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(created > 0);
    let master = master_key_of(app, backend);
    let plain = work.path().join("plain");
    decrypt_with_age_tool(&file, &key, &plain);
    let manifest: Value = serde_json::from_slice(&std::fs::read(plain.join("manifest.json")).unwrap()).unwrap();

    // The practice stops; what it held is read; then it is destroyed.
    let urls = |main: &Option<TestDatabase>, audit: &Option<TestDatabase>| {
        main.as_ref().zip(audit.as_ref()).map(|(m, a)| (m.url(), a.url()))
    };
    let original_urls = urls(&c.app.main_db, &c.app.audit_db);
    let status = c.app.stop_with("TERM");
    assert!(status.success());
    let original = every_row(backend, c.app.data_dir.path(), original_urls).await;
    let clinician_session = c.clinician.session.access.clone();
    drop(c);

    // Restored into an empty data directory and empty databases.
    let restored_dir = tempfile::tempdir().unwrap();
    let databases = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            Some((TestDatabase::create("restored").await, TestDatabase::create("restored_audit").await))
        }
    };
    let mut restore = server_command(restored_dir.path());
    restore.args(["backup", "restore", file.to_str().unwrap(), "--identity", key.identity.to_str().unwrap()]);
    restore.env("CONFIDANT_MASTER_KEY", &master);
    if let Some((main, audit)) = &databases {
        restore.env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());
    }
    let (code, output) = run_to_exit(restore);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(manifest["master_key_fingerprint"].as_str().unwrap()),
        "the restore names the key it needs: {output}"
    );
    let restored_urls = databases.as_ref().map(|(m, a)| (m.url(), a.url()));
    let restored = every_row(backend, restored_dir.path(), restored_urls).await;

    // Every table, row for row: what the snapshot counted, each row as the original held it.
    // The restore's own audit record is on a chain of its own (the restored data directory's
    // command line), left out; KeyPackages are discarded.
    let restore_chain = std::fs::read_to_string(restored_dir.path().join("cli-node-id")).unwrap().trim().to_owned();
    let counted = |name: &str| -> i64 {
        let (store, table) = name.split_once('.').unwrap();
        let index = usize::from(store == "audit");
        manifest["stores"][index]["tables"][table].as_i64().unwrap_or_else(|| panic!("{name} not in the manifest"))
    };
    assert_eq!(original.keys().collect::<Vec<_>>(), restored.keys().collect::<Vec<_>>(), "the same tables in both");
    let mut compared = 0;
    for (table, rows) in &restored {
        let rows: Vec<&String> = rows.iter().filter(|r| !r.contains(&restore_chain)).collect();
        if table == "main.key_packages" {
            assert!(rows.is_empty(), "KeyPackages are discarded by a restore");
            assert!(counted(table) > 0, "the practice had KeyPackages to discard");
            continue;
        }
        if table.ends_with("._sqlx_migrations") {
            continue;
        }
        assert_eq!(rows.len() as i64, counted(table), "{table}: the rows the snapshot counted");
        if CHANGED_AFTER_THE_BACKUP.contains(&table.as_str()) {
            continue;
        }
        let held = &original[table];
        for row in rows {
            assert!(
                held.binary_search(row).is_ok(),
                "{table}: a restored row the original does not hold identically:\n{row}"
            );
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared} rows compared");
    for table in [
        "main.patients",
        "main.appointments",
        "main.intake_assignments",
        "main.conversation_messages",
        "main.attachments",
        "main.clinical_notes",
        "audit.audit_entries",
    ] {
        assert!(counted(table) > 0, "{table} was filled");
    }

    // The server starts on it and serves the same records; the audit trail verifies.
    let env = vec![("CONFIDANT_MASTER_KEY", master)];
    let app =
        spawn_app_with(backend, Options { env, data_dir: Some(restored_dir), databases, shared_databases: None }).await;
    reads_back_identically(&app, &clinician_session, &reads).await;
    let (code, output) = app.cli(&["audit", "verify"], "");
    assert_eq!(code, Some(0), "{output}");
}

/// Every table of a PostgreSQL store with its columns, each marked when it holds bytes.
async fn postgres_tables(url: &str) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(c.table_name AS TEXT), CAST(c.column_name AS TEXT), CAST(c.data_type AS TEXT) \
         FROM information_schema.columns c JOIN information_schema.tables t \
         ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> '_sqlx_migrations' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut tables: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for (table, column, kind) in rows {
        tables.entry(table).or_default().push((column, kind == "bytea"));
    }
    tables
}

/// The rows of `table` as dialect-neutral text (bytes in hex, NULL spelled out), sorted.
async fn neutral_rows(
    sqlite_file: Option<&Path>,
    postgres_url: Option<&str>,
    table: &str,
    columns: &[(String, bool)],
) -> Vec<String> {
    let expression = |(name, bytes): &(String, bool)| match (bytes, sqlite_file.is_some()) {
        // hex(NULL) is '' in SQLite: spell NULL out first.
        (true, true) => format!("CASE WHEN \"{name}\" IS NULL THEN 'NULL' ELSE lower(hex(\"{name}\")) END"),
        (true, false) => format!("COALESCE(encode(\"{name}\", 'hex'), 'NULL')"),
        (false, _) => format!("COALESCE(CAST(\"{name}\" AS TEXT), 'NULL')"),
    };
    let row = columns.iter().map(expression).collect::<Vec<_>>().join(" || ' | ' || ");
    let select = sqlx::AssertSqlSafe(format!("SELECT {row} FROM \"{table}\""));
    let mut rows: Vec<String> = match (sqlite_file, postgres_url) {
        (Some(file), _) => {
            let mut conn =
                sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", file.display())).await.unwrap();
            sqlx::query_scalar(select).fetch_all(&mut conn).await.unwrap()
        }
        (None, Some(url)) => {
            let mut conn = sqlx::postgres::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(select).fetch_all(&mut conn).await.unwrap()
        }
        (None, None) => unreachable!(),
    };
    rows.sort();
    rows
}

async fn store_copy_moves_a_sqlite_practice_onto_postgresql_row_for_row(backend: Backend) {
    let mut c = dr_and_ada_conversing(backend).await;
    let targets = (TestDatabase::create("moved").await, TestDatabase::create("moved_audit").await);
    let copy =
        |app: &TestApp| confidant(app, &["store", "copy", "--to", &targets.0.url(), "--audit-to", &targets.1.url()]);
    if backend == Backend::Postgres {
        // Already on PostgreSQL: nothing to move, and nothing is written to the targets.
        let (code, output) = run_to_exit(copy(&c.app));
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains("already on PostgreSQL"), "{output}");
        assert!(postgres_tables(&targets.0.url()).await.is_empty());
        return;
    }
    let reads = fill(&mut c).await;
    let master = master_key_of(&c.app, backend);
    let access = c.clinician.session.access.clone();
    assert!(c.app.stop_with("TERM").success());

    let (code, output) = run_to_exit(copy(&c.app));
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("verified"), "{output}");

    // Every table of both stores, row for row, every ciphertext byte for byte. Table-driven
    // over the target's catalogue: a table a later migration adds is compared too.
    let data_dir = c.app.data_dir.path().to_owned();
    let mut compared = 0;
    for (store, file, url) in [("main", "confidant.db", targets.0.url()), ("audit", "audit.db", targets.1.url())] {
        let tables = postgres_tables(&url).await;
        assert!(tables.len() > if store == "main" { 20 } else { 3 }, "{store}: {tables:?}");
        for (table, columns) in &tables {
            let source = neutral_rows(Some(&data_dir.join(file)), None, table, columns).await;
            let moved = neutral_rows(None, Some(&url), table, columns).await;
            assert_eq!(source, moved, "{store}.{table} moved row for row");
            compared += source.len();
        }
    }
    assert!(compared > 100, "{compared} rows compared");

    // The server runs on PostgreSQL with the same master key and serves the same records; its
    // audit trail verifies with the same checkpoint files.
    let options = c.app.into_parts();
    let env = vec![("CONFIDANT_MASTER_KEY", master)];
    let options = Options { env, data_dir: options.data_dir, databases: Some(targets), shared_databases: None };
    let app = spawn_app_with(Backend::Postgres, options).await;
    reads_back_identically(&app, &access, &reads).await;
    let (code, output) = app.cli(&["audit", "verify"], "");
    assert_eq!(code, Some(0), "{output}");
}

/// A staged file shaped like a SQLite store past 1 GiB: data, a hole (SQLite never writes its
/// lock-byte page at 2^30), data. Small, so the test needs no 1 GiB fixture.
fn file_with_a_hole(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&[0x5a; 64 << 10]).unwrap();
    file.seek(SeekFrom::Start(1 << 20)).unwrap();
    file.write_all(&[0xa5; 64 << 10]).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn a_store_file_with_a_hole_is_archived_as_a_plain_file_and_opens_whole() {
    let work = tempfile::tempdir().unwrap();
    let staged = work.path().join("staged");
    std::fs::create_dir(&staged).unwrap();
    file_with_a_hole(&staged.join("main.db"));
    let key = age_key(work.path());
    let recipients = confidant::backup::Recipients::parse(&[key.recipient.as_str()]).unwrap();
    let file = work.path().join("practice.backup");

    confidant::backup::archive::seal(&staged, &["main.db".to_owned()], &recipients, &file).unwrap();

    let tar = work.path().join("backup.tar");
    let out = Command::new(age_tool())
        .arg("-d")
        .arg("-i")
        .arg(&key.identity)
        .arg("-o")
        .arg(&tar)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let kinds: Vec<_> = archive.entries().unwrap().map(|e| e.unwrap().header().entry_type()).collect();
    assert_eq!(kinds, [tar::EntryType::Regular]);
    let identities = confidant::backup::Identities::from_file(&key.identity).unwrap();
    let into = work.path().join("opened");
    std::fs::create_dir(&into).unwrap();
    let opened = confidant::backup::archive::open(&file, &identities, &into).unwrap();
    let (bytes, sha256) = confidant::backup::archive::checksum(&staged.join("main.db")).unwrap();
    assert_eq!(opened.len(), 1);
    assert_eq!((opened[0].bytes, opened[0].sha256.as_str()), (bytes, sha256.as_str()));
    assert_eq!(std::fs::read(into.join("main.db")).unwrap(), std::fs::read(staged.join("main.db")).unwrap());
}

#[test]
fn a_backup_written_with_a_sparse_entry_still_opens() {
    use std::io::Write;
    let work = tempfile::tempdir().unwrap();
    let staged = work.path().join("main.db");
    file_with_a_hole(&staged);
    let key = age_key(work.path());
    let recipient: age::x25519::Recipient = key.recipient.parse().unwrap();
    let file = work.path().join("practice.backup");
    // As `seal` wrote a store past 1 GiB before it turned sparse entries off.
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let stream = encryptor.wrap_output(std::fs::File::create(&file).unwrap()).unwrap();
    let mut builder = tar::Builder::new(stream);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_file("main.db", &mut std::fs::File::open(&staged).unwrap()).unwrap();
    builder.into_inner().unwrap().finish().unwrap().flush().unwrap();
    let mut plain = Vec::new();
    let decryptor = age::Decryptor::new(std::fs::File::open(&file).unwrap()).unwrap();
    let identity = age::IdentityFile::from_buffer(std::fs::read(&key.identity).unwrap().as_slice()).unwrap();
    let identities = identity.into_identities().unwrap();
    std::io::Read::read_to_end(
        &mut decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).unwrap(),
        &mut plain,
    )
    .unwrap();
    let kinds: Vec<_> =
        tar::Archive::new(plain.as_slice()).entries().unwrap().map(|e| e.unwrap().header().entry_type()).collect();
    assert_eq!(kinds, [tar::EntryType::GNUSparse], "the file system made no hole; the test proves nothing here");

    let identities = confidant::backup::Identities::from_file(&key.identity).unwrap();
    let into = work.path().join("opened");
    std::fs::create_dir(&into).unwrap();
    let opened = confidant::backup::archive::open(&file, &identities, &into).unwrap();

    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].sha256, confidant::backup::archive::checksum(&staged).unwrap().1);
}
