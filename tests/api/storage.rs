//! The same storage code on SQLite and PostgreSQL: migrations, connection settings, the nodes
//! table, and the `migrate` command.

use confidant::node;
use confidant::settings::{self, DatabaseUrl, Settings};
use confidant::storage::nodes::PreviousRun;
use confidant::storage::{Backend as StorageBackend, Location, Storage, Store};

use crate::helpers::{Backend, TestDatabase, run_to_exit, server_command};
use crate::on_both_backends;

on_both_backends!(migrations_apply_once_and_are_idempotent, a_start_without_a_stop_is_reported_as_interrupted);

/// A store on `backend`, with the temp dir or database that holds it.
async fn open(backend: Backend) -> (Storage, tempfile::TempDir, Option<TestDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path());
    let (location, database) = match backend {
        Backend::Sqlite => (Location::of(Store::Main, &settings), None),
        Backend::Postgres => {
            let db = TestDatabase::create("storage").await;
            (Location::Postgres(DatabaseUrl::try_from(db.url()).unwrap()), Some(db))
        }
    };
    let storage = Storage::connect(Store::Main, &location, &settings.database).await.unwrap();
    (storage, dir, database)
}

fn test_settings(data_dir: &std::path::Path) -> Settings {
    let env = [("CONFIDANT_DATA_DIR".to_owned(), data_dir.display().to_string())];
    settings::load_from(None, env).unwrap()
}

async fn migrations_apply_once_and_are_idempotent(backend: Backend) {
    let (storage, _dir, _db) = open(backend).await;

    let first = storage.migrate().await.unwrap();
    let second = storage.migrate().await.unwrap();

    assert!(first >= 1, "the first run applies the migrations");
    assert_eq!(second, 0, "a second run applies nothing");
    let expected = if backend == Backend::Sqlite { StorageBackend::Sqlite } else { StorageBackend::Postgres };
    assert_eq!(storage.backend(), expected);
    storage.close().await;
}

async fn a_start_without_a_stop_is_reported_as_interrupted(backend: Backend) {
    let (storage, dir, _db) = open(backend).await;
    storage.migrate().await.unwrap();
    let node = node::load_or_create(dir.path()).unwrap();

    let first = storage.record_node_start(&node, "0.1.0", 1_000).await.unwrap();
    storage.record_node_stop(&node, 2_000).await.unwrap();
    let after_clean_stop = storage.record_node_start(&node, "0.1.0", 3_000).await.unwrap();
    let after_crash = storage.record_node_start(&node, "0.1.1", 4_000).await.unwrap();

    assert_eq!(first, PreviousRun::None);
    assert_eq!(after_clean_stop, PreviousRun::StoppedCleanly);
    assert_eq!(after_crash, PreviousRun::Interrupted);
    storage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_use_write_ahead_logging_and_enforce_foreign_keys() {
    let (storage, dir, _) = open(Backend::Sqlite).await;
    storage.migrate().await.unwrap();
    storage.close().await;

    // Inspect the file with a plain connection, as an operator would.
    let url = format!("sqlite://{}", dir.path().join("confidant.db").display());
    let mut plain = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut plain).await.unwrap();
    assert_eq!(mode, "wal");

    let location = Location::Sqlite(dir.path().join("confidant.db"));
    let reopened = Storage::connect(Store::Main, &location, &test_settings(dir.path()).database).await.unwrap();
    assert!(reopened.foreign_keys_enforced().await.unwrap(), "foreign keys must be enforced on pooled connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_command_prepares_both_stores_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    command.arg("migrate");

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("migrations applied"), "{output}");
    assert!(dir.path().join("confidant.db").exists() && dir.path().join("audit.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_command_works_on_postgres() {
    let (main, audit) = (TestDatabase::create("main").await, TestDatabase::create("audit").await);
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    command.arg("migrate").env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(0), "{output}");
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&main.url()).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'nodes'")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_start_up_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    command.arg("serve").env("CONFIDANT_DATABASE_URL", "postgres://postgres@127.0.0.1:1/confidant");

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("cannot connect to the database"), "{output}");
}
