//! The same storage code on SQLite and PostgreSQL: migrations, connection settings, the nodes
//! table, and the `migrate` command.

use confidant::node;
use confidant::settings::{self, DatabaseUrl, Settings};
use confidant::storage::nodes::PreviousRun;
use confidant::storage::{Backend as StorageBackend, Location, Storage, Store};

use crate::helpers::{Backend, TestDatabase, run_to_exit, server_command};
use crate::on_both_backends;

on_both_backends!(
    migrations_apply_once_and_are_idempotent,
    a_start_without_a_stop_is_reported_as_interrupted,
    staff_conversations_keep_existing_conversations_and_their_references,
    reminders_survive_the_staff_notices_migration_and_a_row_is_one_kind_or_the_other,
    alerts_survive_the_security_alerts_migration_and_one_may_name_no_patient,
    an_audit_head_email_names_its_report_and_an_owner_and_nothing_else,
);

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

/// The last version before staff conversations (`20261123000008_staff_conversations.sql`, which
/// rebuilds `conversations` on SQLite).
const BEFORE_STAFF_CONVERSATIONS: i64 = 20261123000007;

async fn staff_conversations_keep_existing_conversations_and_their_references(backend: Backend) {
    let (storage, _dir, _db) = open(backend).await;
    let tree = match backend {
        Backend::Sqlite => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
        Backend::Postgres => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
    };
    let earlier = sqlx::migrate::Migrator::new(std::path::Path::new(tree)).await.unwrap();
    earlier.run_to(BEFORE_STAFF_CONVERSATIONS, storage.pool_for_tests()).await.unwrap();
    let pool = storage.pool_for_tests();
    let id = || uuid::Uuid::new_v4().to_string();
    let (patient, user, device, conversation) = (id(), id(), id(), id());

    // A conversation about a patient, with a member device, a commit and a pending Welcome.
    let run = |sql: &'static str, values: Vec<String>| {
        let mut query = sqlx::query(sql);
        for value in values {
            query = query.bind(value);
        }
        async move { query.bind(vec![1u8; 16]).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}")) }
    };
    run(
        "INSERT INTO data_keys (key_id, audit_id, purpose, state, master_key_id, created_at_ms, wrapped) \
         VALUES (1, $1, 'field', 'active', 'master', 0, $2)",
        vec![id()],
    )
    .await;
    run(
        "INSERT INTO patients (patient_id, key_id, created_at_ms, updated_at_ms, legal_name, date_of_birth) \
         VALUES ($1, 1, 0, 0, $2, $2)",
        vec![patient.clone()],
    )
    .await;
    run(
        "INSERT INTO users (user_id, role, status, key_id, created_at_ms, updated_at_ms, email, email_index) \
         VALUES ($1, 'clinician', 'invited', 1, 0, 0, $2, $2)",
        vec![user.clone()],
    )
    .await;
    run(
        "INSERT INTO devices (device_id, user_id, registered_at_ms, signature_key) VALUES ($1, $2, 0, $3)",
        vec![device.clone(), user.clone()],
    )
    .await;
    run(
        "INSERT INTO conversations (conversation_id, patient_id, created_by, created_at_ms, epoch, last_seq, \
         public_group) VALUES ($1, $2, $3, 0, 1, 1, $4)",
        vec![conversation.clone(), patient.clone(), user.clone()],
    )
    .await;
    run(
        "INSERT INTO conversation_messages (conversation_id, sender_device, seq, kind, epoch, at_ms, message) \
         VALUES ($1, $2, 1, 'commit', 0, 0, $3)",
        vec![conversation.clone(), device.clone()],
    )
    .await;
    run(
        "INSERT INTO welcomes (conversation_id, device_id, seq, welcome, ratchet_tree) VALUES ($1, $2, 1, $3, $3)",
        vec![conversation.clone(), device.clone()],
    )
    .await;
    sqlx::query(
        "INSERT INTO conversation_devices (conversation_id, device_id, joined_seq, acked_seq) VALUES ($1, $2, 1, 0)",
    )
    .bind(&conversation)
    .bind(&device)
    .execute(pool)
    .await
    .unwrap();

    let later = earlier.iter().filter(|m| m.version > BEFORE_STAFF_CONVERSATIONS).count();
    assert_eq!(storage.migrate().await.unwrap(), later, "the staff conversations migration and those after it");

    // The conversation is about its patient still, and every row that refers to it does so.
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT kind, patient_id FROM conversations WHERE conversation_id = $1")
            .bind(&conversation)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(row, ("care".to_owned(), Some(patient.clone())));
    for child in ["conversation_devices", "conversation_messages", "welcomes"] {
        let sql = format!(
            "SELECT COUNT(*) FROM {child} x JOIN conversations c ON c.conversation_id = x.conversation_id \
             WHERE c.conversation_id = $1"
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(&conversation).fetch_one(pool).await.unwrap();
        assert_eq!(n, 1, "{child}");
    }
    if backend == Backend::Sqlite {
        let dangling = sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await.unwrap();
        assert!(dangling.is_empty(), "{} rows refer to nothing", dangling.len());
    }

    // A staff conversation names no patient, a care conversation must; references still hold.
    let insert = "INSERT INTO conversations (conversation_id, kind, patient_id, created_by, created_at_ms, epoch, \
                  last_seq, public_group) VALUES ($1, $2, $3, $4, 0, 1, 0, $5)";
    let add = |kind: &'static str, about: Option<String>| {
        sqlx::query(insert).bind(id()).bind(kind).bind(about).bind(user.clone()).bind(vec![1u8; 16]).execute(pool)
    };
    assert!(add("staff", None).await.is_ok());
    assert!(add("care", None).await.is_err(), "a care conversation names its patient");
    assert!(add("staff", Some(patient.clone())).await.is_err(), "a staff conversation names no patient");
    assert!(add("care", Some(id())).await.is_err(), "the patient must exist");
    let orphan = sqlx::query(
        "INSERT INTO conversation_devices (conversation_id, device_id, joined_seq, acked_seq) VALUES ($1, $2, 0, 0)",
    )
    .bind(id())
    .bind(&device)
    .execute(pool)
    .await;
    assert!(orphan.is_err(), "a member of no conversation");
    storage.close().await;
}

/// The last version before staff notices (`20261206000002_staff_notices.sql`, which rebuilds
/// `reminders` on SQLite).
const BEFORE_STAFF_NOTICES: i64 = 20261206000001;

async fn reminders_survive_the_staff_notices_migration_and_a_row_is_one_kind_or_the_other(backend: Backend) {
    let (storage, _dir, _db) = open(backend).await;
    let tree = match backend {
        Backend::Sqlite => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
        Backend::Postgres => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
    };
    let earlier = sqlx::migrate::Migrator::new(std::path::Path::new(tree)).await.unwrap();
    earlier.run_to(BEFORE_STAFF_NOTICES, storage.pool_for_tests()).await.unwrap();
    let pool = storage.pool_for_tests();
    let id = || uuid::Uuid::new_v4().to_string();
    let (patient, user, appointment, reminder, alert) = (id(), id(), id(), id(), id());
    // Each statement's text values in order, then (where it has a `BLOB`/`BYTEA` slot) the bytes.
    let run = |sql: &'static str, values: Vec<String>, blob: bool| {
        let mut query = sqlx::query(sql);
        for value in values {
            query = query.bind(value);
        }
        if blob {
            query = query.bind(vec![1u8; 16]);
        }
        async move { query.execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}")) }
    };
    let setup = [
        (
            "INSERT INTO data_keys (key_id, audit_id, purpose, state, master_key_id, created_at_ms, wrapped) \
             VALUES (1, $1, 'field', 'active', 'master', 0, $2)",
            vec![id()],
            true,
        ),
        (
            "INSERT INTO patients (patient_id, key_id, created_at_ms, updated_at_ms, legal_name, date_of_birth) \
             VALUES ($1, 1, 0, 0, $2, $2)",
            vec![patient.clone()],
            true,
        ),
        (
            "INSERT INTO users (user_id, role, status, key_id, created_at_ms, updated_at_ms, email, email_index) \
             VALUES ($1, 'clinician', 'invited', 1, 0, 0, $2, $2)",
            vec![user.clone()],
            true,
        ),
        (
            "INSERT INTO appointments (appointment_id, clinician_id, patient_id, starts_at_ms, ends_at_ms, status, \
             created_by, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, 10, 20, 'booked', $2, 0, 0)",
            vec![appointment.clone(), user.clone(), patient.clone()],
            false,
        ),
        (
            "INSERT INTO reminders (reminder_id, appointment_id, patient_id, kind, origin, lead_minutes, state, \
             due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, failure_reason, created_at_ms, \
             finished_at_ms) VALUES ($1, $2, $3, 'upcoming', 'schedule', 60, 'failed', 5, 5, 2, $4, 0, \
             'outcome_unknown', 4, 6)",
            vec![reminder.clone(), appointment.clone(), patient.clone(), format!("reminder-{reminder}")],
            false,
        ),
        (
            "INSERT INTO alerts (alert_id, key_id, patient_id, body, urgent, raised_at_ms, escalation_step) \
             VALUES ($1, 1, $2, $3, 1, 0, 0)",
            vec![alert.clone(), patient.clone()],
            true,
        ),
    ];
    for (sql, values, blob) in setup {
        run(sql, values, blob).await;
    }

    let later = earlier.iter().filter(|m| m.version > BEFORE_STAFF_NOTICES).count();
    assert_eq!(storage.migrate().await.unwrap(), later, "the staff notices migration and those after it");

    type Kept = (String, String, String, String, i64, String, Option<String>, i64, Option<i64>);
    let kept: Kept = sqlx::query_as(
        "SELECT appointment_id, patient_id, kind, state, attempts, message_id, failure_reason, created_at_ms, \
         finished_at_ms FROM reminders WHERE reminder_id = $1",
    )
    .bind(&reminder)
    .fetch_one(pool)
    .await
    .unwrap();
    let expected = (appointment.clone(), patient.clone(), "upcoming".to_owned(), "failed".to_owned(), 2);
    assert_eq!((kept.0, kept.1, kept.2, kept.3, kept.4), expected);
    assert_eq!(
        (kept.5, kept.6, kept.7, kept.8),
        (format!("reminder-{reminder}"), Some("outcome_unknown".into()), 4, Some(6))
    );
    if backend == Backend::Sqlite {
        let dangling = sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await.unwrap();
        assert!(dangling.is_empty(), "{} rows refer to nothing", dangling.len());
    }

    // A staff notice names an alert, a recipient and a step, and no appointment or patient.
    let notice = |kind: &'static str, step: Option<i64>, about: Option<String>| {
        let new = id();
        sqlx::query(
            "INSERT INTO reminders (reminder_id, alert_id, recipient_user_id, escalation_step, patient_id, kind, \
             origin, state, due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'alert', 'queued', 0, 0, 0, $7, 0, 0)",
        )
        .bind(new.clone())
        .bind(alert.clone())
        .bind(user.clone())
        .bind(step)
        .bind(about)
        .bind(kind)
        .bind(format!("staff-notice-{new}"))
        .execute(pool)
    };
    assert!(notice("staff_notice", Some(0), None).await.is_ok());
    assert!(notice("staff_notice", Some(0), None).await.is_err(), "one notice per step and person");
    assert!(notice("staff_notice", Some(1), None).await.is_ok());
    assert!(notice("staff_notice", None, None).await.is_err(), "a notice has its step");
    assert!(notice("staff_notice", Some(2), Some(patient.clone())).await.is_err(), "a notice names no patient");
    assert!(notice("upcoming", Some(3), None).await.is_err(), "a reminder is about an appointment");
    storage.close().await;
}

/// The last version before security alerts (`20261208100001_security_alerts.sql`, which
/// rebuilds `alerts` on SQLite with foreign keys off, outside sqlx's transaction).
const BEFORE_SECURITY_ALERTS: i64 = 20261207000002;

/// A statement, its text values in order, and the bytes of its `BLOB`/`BYTEA` slot if it has one.
type Statement<'a> = (&'static str, Vec<&'a str>, Option<&'a [u8]>);

/// Runs `sql` with `values` bound in order, then `blob` when given (a `BLOB`/`BYTEA` slot).
async fn run_sql(pool: &sqlx::AnyPool, sql: &str, values: &[&str], blob: Option<&[u8]>) -> Result<(), sqlx::Error> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for value in values {
        query = query.bind((*value).to_owned());
    }
    if let Some(blob) = blob {
        query = query.bind(blob.to_vec());
    }
    query.execute(pool).await.map(|_| ())
}

async fn alerts_survive_the_security_alerts_migration_and_one_may_name_no_patient(backend: Backend) {
    let (storage, _dir, _db) = open(backend).await;
    let tree = match backend {
        Backend::Sqlite => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"),
        Backend::Postgres => concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"),
    };
    let earlier = sqlx::migrate::Migrator::new(std::path::Path::new(tree)).await.unwrap();
    earlier.run_to(BEFORE_SECURITY_ALERTS, storage.pool_for_tests()).await.unwrap();
    let pool = storage.pool_for_tests();
    let id = || uuid::Uuid::new_v4().to_string();
    let (patient, user, alert, notice) = (id(), id(), id(), id());
    let blob = Some(&[1u8; 16][..]);
    // An urgent alert about a patient, its recipient, and a staff notice of its escalation.
    let setup: [Statement<'_>; 6] = [
        (
            "INSERT INTO data_keys (key_id, audit_id, purpose, state, master_key_id, created_at_ms, wrapped) \
             VALUES (1, $1, 'field', 'active', 'master', 0, $2)",
            vec![&alert],
            blob,
        ),
        (
            "INSERT INTO patients (patient_id, key_id, created_at_ms, updated_at_ms, legal_name, date_of_birth) \
             VALUES ($1, 1, 0, 0, $2, $2)",
            vec![&patient],
            blob,
        ),
        (
            "INSERT INTO users (user_id, role, status, key_id, created_at_ms, updated_at_ms, email, email_index) \
             VALUES ($1, 'clinician', 'invited', 1, 0, 0, $2, $2)",
            vec![&user],
            blob,
        ),
        (
            "INSERT INTO alerts (alert_id, key_id, patient_id, subject_id, body, urgent, raised_at_ms, \
             escalation_step, escalate_at_ms) VALUES ($1, 1, $2, $3, $4, 1, 7, 1, 9)",
            vec![&alert, &patient, &notice],
            blob,
        ),
        (
            "INSERT INTO alert_recipients (alert_id, user_id, step, added_at_ms) VALUES ($1, $2, 0, 7)",
            vec![&alert, &user],
            None,
        ),
        (
            "INSERT INTO reminders (reminder_id, alert_id, recipient_user_id, escalation_step, kind, origin, state, \
             due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_at_ms) \
             VALUES ($1, $2, $3, 1, 'staff_notice', 'alert', 'queued', 0, 0, 0, $1, 0, 0)",
            vec![&notice, &alert, &user],
            None,
        ),
    ];
    for (sql, values, blob) in setup {
        run_sql(pool, sql, &values, blob).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    let later = earlier.iter().filter(|m| m.version > BEFORE_SECURITY_ALERTS).count();
    assert_eq!(storage.migrate().await.unwrap(), later, "the security alerts migration and those after it");

    type Kept = (Option<String>, Option<String>, i64, i64, Option<i64>, Vec<u8>);
    let kept: Kept = sqlx::query_as(
        "SELECT patient_id, subject_id, urgent, escalation_step, escalate_at_ms, body FROM alerts WHERE alert_id = $1",
    )
    .bind(&alert)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(kept, (Some(patient.clone()), Some(notice.clone()), 1, 1, Some(9), vec![1u8; 16]));
    let recipients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_recipients WHERE alert_id = $1")
        .bind(&alert)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(recipients, 1);
    assert!(storage.foreign_keys_enforced().await.unwrap(), "foreign keys are back on every pooled connection");
    if backend == Backend::Sqlite {
        let dangling = sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await.unwrap();
        assert!(dangling.is_empty(), "{} rows refer to nothing", dangling.len());
    }

    // An alert about no patient, raised once per key; alerts about patients have none.
    let raise = |key: Option<&'static [u8]>| {
        let new = id();
        async move {
            sqlx::query(
                "INSERT INTO alerts (alert_id, key_id, patient_id, body, urgent, raised_at_ms, escalation_step, \
                 dedup_key) VALUES ($1, 1, NULL, $2, 0, 8, 0, $3)",
            )
            .bind(new)
            .bind(vec![2u8; 16])
            .bind(key.map(<[u8]>::to_vec))
            .execute(pool)
            .await
        }
    };
    assert!(raise(Some(b"pattern-source-window")).await.is_ok(), "no patient");
    assert!(raise(Some(b"pattern-source-window")).await.is_err(), "once per key");
    assert!(raise(None).await.is_ok() && raise(None).await.is_ok(), "no key: no limit");
    let orphan = run_sql(
        pool,
        "INSERT INTO alert_recipients (alert_id, user_id, step, added_at_ms) VALUES ($1, $2, 0, 7)",
        &[&id(), &user],
        None,
    )
    .await;
    assert!(orphan.is_err(), "recipients still refer to alerts");
    storage.close().await;
}

async fn an_audit_head_email_names_its_report_and_an_owner_and_nothing_else(backend: Backend) {
    let (storage, _dir, _db) = open(backend).await;
    storage.migrate().await.unwrap();
    let pool = storage.pool_for_tests();
    let id = || uuid::Uuid::new_v4().to_string();
    let (owner, node) = (id(), id());
    run_sql(
        pool,
        "INSERT INTO data_keys (key_id, audit_id, purpose, state, master_key_id, created_at_ms, wrapped) \
         VALUES (1, $1, 'field', 'active', 'master', 0, $2)",
        &[&id()],
        Some(&[1; 16]),
    )
    .await
    .unwrap();
    run_sql(
        pool,
        "INSERT INTO users (user_id, role, status, key_id, created_at_ms, updated_at_ms, email, email_index) \
         VALUES ($1, 'practice_owner', 'invited', 1, 0, 0, $2, $2)",
        &[&owner],
        Some(&[1; 16]),
    )
    .await
    .unwrap();
    let patient = id();
    run_sql(
        pool,
        "INSERT INTO patients (patient_id, key_id, created_at_ms, updated_at_ms, legal_name, date_of_birth) \
         VALUES ($1, 1, 0, 0, $2, $2)",
        &[&patient],
        Some(&[1; 16]),
    )
    .await
    .unwrap();
    for period in ["20000", "20002"] {
        run_sql(
            pool,
            &format!(
                "INSERT INTO audit_head_reports (node_id, period, heads, created_at_ms) VALUES ($1, {period}, 'line', 0)"
            ),
            &[&node],
            None,
        )
        .await
        .unwrap();
    }
    let email = |period: i64, recipient: Option<String>, about: bool| {
        let new = id();
        let (node, patient) = (node.clone(), about.then(|| patient.clone()));
        async move {
            sqlx::query(
                "INSERT INTO reminders (reminder_id, audit_node_id, audit_period, recipient_user_id, patient_id, kind, \
                 origin, state, due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, 'audit_head', 'audit', 'queued', 0, 0, 0, $1, 0, 0)",
            )
            .bind(new)
            .bind(node)
            .bind(period)
            .bind(recipient)
            .bind(patient)
            .execute(pool)
            .await
        }
    };
    assert!(email(20000, Some(owner.clone()), false).await.is_ok());
    assert!(email(20000, Some(owner.clone()), false).await.is_err(), "one email per report and owner");
    assert!(email(20001, Some(owner.clone()), false).await.is_err(), "no report for that period");
    assert!(email(20000, None, false).await.is_err(), "it goes to someone");
    assert!(email(20002, Some(owner.clone()), true).await.is_err(), "it names no patient");
    assert!(email(20002, Some(owner.clone()), false).await.is_ok());
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
