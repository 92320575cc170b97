//! PHI at rest: patient records are sealed field by field, nothing readable reaches the
//! database file or a dump, a value moved elsewhere fails its integrity check, keys rotate and
//! retire without losing a value, and a missing or wrong master key stops the node clearly.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use confidant::audit::AuditStore;
use confidant::crypto::rotation::{self, reencrypt_all};
use confidant::crypto::{CryptoError, KeyBytes, KeyError, Keyring, MasterKey};
use confidant::patients::{EmergencyContact, PatientError, PatientRecord, Patients};
use confidant::phi::PhiText;
use confidant::settings::{self, DatabaseUrl, Settings};
use confidant::storage::{Location, Storage, Store};
use confidant_actors::audit::{AuditWriter, WriterLimits};
use confidant_actors::ids::NodeId;

use crate::helpers::{Backend, Options, TEST_MASTER_KEY, TestDatabase, run_to_exit, server_command, spawn_app_with};

/// A main store with a keyring, an audit store with a writer (re-encryption audits itself).
struct Fixture {
    storage: Storage,
    audit_storage: Storage,
    keyring: Arc<Keyring>,
    patients: Patients,
    writer: Addr<AuditWriter>,
    node: NodeId,
    settings: Settings,
    backend: Backend,
    dir: tempfile::TempDir,
    main_db: Option<TestDatabase>,
    _audit_db: Option<TestDatabase>,
}

fn master(byte: u8) -> MasterKey {
    MasterKey::from_key(KeyBytes::from_slice(&[byte; 32]).unwrap())
}

async fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings::load_from(
        None,
        [
            ("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string()),
            ("CONFIDANT_KEYS__REENCRYPT_BATCH".to_owned(), "10".to_owned()),
            ("CONFIDANT_KEYS__REENCRYPT_PAUSE_MS".to_owned(), "0".to_owned()),
        ],
    )
    .unwrap();
    let (main, audit, main_db, audit_db) = match backend {
        Backend::Sqlite => (Location::of(Store::Main, &settings), Location::of(Store::Audit, &settings), None, None),
        Backend::Postgres => {
            let (m, a) = (TestDatabase::create("phi").await, TestDatabase::create("phi_audit").await);
            let url = |db: &TestDatabase| Location::Postgres(DatabaseUrl::try_from(db.url()).unwrap());
            (url(&m), url(&a), Some(m), Some(a))
        }
    };
    let storage = Storage::connect(Store::Main, &main, &settings.database).await.unwrap();
    let audit_storage = Storage::connect(Store::Audit, &audit, &settings.database).await.unwrap();
    storage.migrate().await.unwrap();
    audit_storage.migrate().await.unwrap();
    let keyring = Arc::new(Keyring::open(storage.clone(), master(1)).await.unwrap());
    let node = NodeId::generate();
    let writer =
        AuditWriter::new(node, Arc::new(AuditStore::new(audit_storage.clone(), node)), WriterLimits::default()).start();
    let patients = Patients::new(storage.clone(), keyring.clone());
    Fixture {
        storage,
        audit_storage,
        keyring,
        patients,
        writer,
        node,
        settings,
        backend,
        dir,
        main_db,
        _audit_db: audit_db,
    }
}

/// A record whose every value is distinctive, so a dump can be searched for each.
fn record(n: usize) -> PatientRecord {
    PatientRecord {
        legal_name: PhiText::new(format!("Zebulon Quixote-Marchetti {n}")),
        preferred_name: Some(PhiText::new(format!("Zeb{n}"))),
        date_of_birth: PhiText::new(format!("19{:02}-07-1{}", 50 + n % 40, n % 10)),
        email: Some(PhiText::new(format!("zebulon.{n}@quixote-example.org"))),
        phone: Some(PhiText::new(format!("+1 555 01{n:02} 7788"))),
        address: Some(PhiText::new(format!("{n} Larkspur Crescent\nSpringfield"))),
        emergency_contact: Some(EmergencyContact {
            name: PhiText::new(format!("Ottoline Brackenbury {n}")),
            relationship: Some(PhiText::new("sister")),
            phone: PhiText::new("+1 555 0199 1234"),
        }),
    }
}

fn plaintexts(r: &PatientRecord) -> Vec<String> {
    let mut out = vec![r.legal_name.expose().to_owned(), r.date_of_birth.expose().to_owned()];
    for v in [&r.preferred_name, &r.email, &r.phone, &r.address].into_iter().flatten() {
        out.push(v.expose().to_owned());
    }
    if let Some(c) = &r.emergency_contact {
        out.push(c.name.expose().to_owned());
    }
    out.push("Larkspur".into());
    out.push("quixote-example".into());
    out
}

crate::on_both_backends_actix!(
    a_patient_record_round_trips_and_is_found_by_email,
    a_raw_dump_of_the_database_contains_no_patient_value,
    a_ciphertext_moved_to_another_row_fails_its_integrity_check,
    rotation_reencryption_and_retirement_leave_every_value_readable,
    a_new_master_key_rewraps_the_data_keys_and_the_old_one_stops_working,
);

async fn a_patient_record_round_trips_and_is_found_by_email(backend: Backend) {
    let f = fixture(backend).await;
    let id = f.patients.create(&record(1)).await.unwrap();
    let other = f.patients.create(&record(2)).await.unwrap();

    let read = f.patients.get(id).await.unwrap().unwrap();
    assert_eq!(read.record, record(1));
    let found = f.patients.find_by_email("  ZEBULON.1@Quixote-Example.org").await.unwrap();
    assert_eq!(found.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);

    let mut changed = record(1);
    changed.email = Some(PhiText::new("new.address@quixote-example.org"));
    changed.emergency_contact = None;
    assert!(f.patients.update(id, &changed).await.unwrap());
    assert_eq!(f.patients.get(id).await.unwrap().unwrap().record, changed);
    assert!(f.patients.find_by_email("zebulon.1@quixote-example.org").await.unwrap().is_empty());
    assert_eq!(f.patients.get_many(&[other, id]).await.unwrap().len(), 2);

    let mut invalid = record(3);
    invalid.date_of_birth = PhiText::new("3000-01-01");
    assert!(matches!(f.patients.create(&invalid).await, Err(PatientError::Invalid(e)) if e.field == "date_of_birth"));
}

async fn a_raw_dump_of_the_database_contains_no_patient_value(backend: Backend) {
    let f = fixture(backend).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(f.patients.create(&record(n)).await.unwrap());
    }

    let dump: Vec<u8> = match backend {
        Backend::Sqlite => {
            f.storage.close().await;
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(f.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with("confidant.db") {
                    bytes.extend(std::fs::read(&path).unwrap());
                }
            }
            bytes
        }
        Backend::Postgres => {
            let url = f.main_db.as_ref().unwrap().url();
            let output = std::process::Command::new("pg_dump").arg(&url).output().expect("pg_dump must be installed");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            output.stdout
        }
    };

    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains(&ids[0].to_string()), "the dump holds the patient rows (ids are not PHI)");
    for n in 0..3 {
        for value in plaintexts(&record(n)) {
            assert!(!text.contains(&value), "the dump contains a plaintext PHI value");
        }
    }
}

async fn a_ciphertext_moved_to_another_row_fails_its_integrity_check(backend: Backend) {
    let f = fixture(backend).await;
    let a = f.patients.create(&record(1)).await.unwrap();
    let b = f.patients.create(&record(2)).await.unwrap();

    // Someone with write access to the database swaps two legal names.
    let pool = f.storage.pool_for_tests();
    let name_of = |id: String| async move {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT legal_name FROM patients WHERE patient_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    let (name_a, name_b) = (name_of(a.to_string()).await, name_of(b.to_string()).await);
    for (id, name) in [(a, name_b), (b, name_a)] {
        sqlx::query("UPDATE patients SET legal_name = $1 WHERE patient_id = $2")
            .bind(name)
            .bind(id.to_string())
            .execute(pool)
            .await
            .unwrap();
    }

    for id in [a, b] {
        let error = f.patients.get(id).await.unwrap_err();
        assert!(matches!(error, PatientError::Crypto(CryptoError::Integrity)), "{error:?}");
        assert!(!format!("{error} {error:?}").contains("Zebulon"), "no value in the error");
    }
}

async fn rotation_reencryption_and_retirement_leave_every_value_readable(backend: Backend) {
    let f = fixture(backend).await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(f.patients.create(&record(n)).await.unwrap());
    }
    let old_key = f.keyring.sealer().key_id();

    let new_key = rotation::rotate(&f.storage, f.keyring.master(), uuid::Uuid::now_v7()).await.unwrap();
    f.keyring.refresh().await.unwrap();
    assert_eq!(f.keyring.sealer().key_id(), new_key.key_id);
    ids.push(f.patients.create(&record(25)).await.unwrap());
    let refused = rotation::retirable(&f.storage, old_key, Duration::ZERO).await.unwrap_err();
    assert!(refused.to_string().contains("still protects 175 values in 25 rows"), "{refused}");

    let auditor = confidant::auditor::Auditor::new(f.node, f.writer.clone());
    let done = reencrypt_all(&f.keyring, &auditor, &f.settings.keys, &AtomicBool::new(false)).await.unwrap();
    assert_eq!((done.rewritten, done.failed), (25, 0));

    let status = rotation::status(&f.storage).await.unwrap();
    let of = |id| status.iter().find(|s| s.key.key_id == id).unwrap();
    assert_eq!(of(old_key).protected.rows, 0);
    assert_eq!(of(new_key.key_id).protected.rows, 26);
    assert_eq!(of(new_key.key_id).protected.values, 26 * 7);
    let key = rotation::retirable(&f.storage, old_key, Duration::ZERO).await.unwrap();
    rotation::retire(&f.storage, key).await.unwrap();

    // A node starting now knows only the new key, and reads everything.
    let fresh = Arc::new(Keyring::open(f.storage.clone(), master(1)).await.unwrap());
    let patients = Patients::new(f.storage.clone(), fresh);
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(patients.get(*id).await.unwrap().unwrap().record, record(n));
    }
    let retired = rotation::status(&f.storage).await.unwrap().into_iter().find(|s| s.key.key_id == old_key).unwrap();
    assert!(retired.key.wrapped.is_none(), "a retired key's material is gone");

    // Every re-encrypted record was audited as an update by the system.
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE reason = 'reencrypted_under_new_key'")
            .fetch_one(f.audit_storage.pool_for_tests())
            .await
            .unwrap();
    assert_eq!(audited, 25);
}

async fn a_new_master_key_rewraps_the_data_keys_and_the_old_one_stops_working(backend: Backend) {
    let f = fixture(backend).await;
    let id = f.patients.create(&record(1)).await.unwrap();
    let before: Vec<u8> =
        sqlx::query_scalar("SELECT legal_name FROM patients").fetch_one(f.storage.pool_for_tests()).await.unwrap();

    assert_eq!(rotation::rewrap(&f.storage, &master(1), &master(2)).await.unwrap(), 2);

    let after: Vec<u8> =
        sqlx::query_scalar("SELECT legal_name FROM patients").fetch_one(f.storage.pool_for_tests()).await.unwrap();
    assert_eq!(before, after, "no value was re-encrypted");
    let error = Keyring::open(f.storage.clone(), master(1)).await.err().unwrap();
    assert!(matches!(error, KeyError::WrongMasterKey { .. }), "{error:?}");
    let keyring = Arc::new(Keyring::open(f.storage.clone(), master(2)).await.unwrap());
    assert_eq!(Patients::new(f.storage.clone(), keyring).get(id).await.unwrap().unwrap().record, record(1));
    let _ = f.backend;
}

crate::on_both_backends!(a_wrong_master_key_stops_start_up_clearly, a_running_node_reencrypts_after_a_rotation);

/// `confidant ARGS` with the test's stores and master key.
fn cli(
    dir: &std::path::Path,
    dbs: &Option<(TestDatabase, TestDatabase)>,
    key: &str,
    args: &[&str],
) -> (Option<i32>, String) {
    let mut command = server_command(dir);
    command.args(args).env("CONFIDANT_MASTER_KEY", key);
    if let Some((main, audit)) = dbs {
        command.env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());
    }
    run_to_exit(command)
}

async fn databases(backend: Backend) -> Option<(TestDatabase, TestDatabase)> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some((TestDatabase::create("keys").await, TestDatabase::create("keys_audit").await)),
    }
}

async fn a_wrong_master_key_stops_start_up_clearly(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let dbs = databases(backend).await;
    let (code, output) = cli(dir.path(), &dbs, TEST_MASTER_KEY, &["keys", "status"]);
    assert_eq!(code, Some(0), "{output}");

    let other = MasterKey::generate().to_base64().to_string();
    let (code, output) = cli(dir.path(), &dbs, &other, &["serve"]);

    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("cannot unwrap data key"), "{output}");
    assert!(!output.contains(&other) && !output.contains(TEST_MASTER_KEY), "never echoes a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_a_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (main, audit) = (TestDatabase::create("nokey").await, TestDatabase::create("nokey_audit").await);
    let mut command = server_command(dir.path());
    command.arg("serve").env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("no master key") && output.contains("CONFIDANT_MASTER_KEY"), "{output}");
    assert!(!dir.path().join("master.key").exists(), "no key is generated for PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_generates_a_private_master_key_and_keeps_it() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app_with(Backend::Sqlite, Options::default()).await;
    let key_file = app.data_dir.path().join("master.key");

    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(app.logs().iter().any(|l| l.contains("generated a master key")), "a warning says so");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let (_, parts) = app.into_parts_after("TERM");

    let again = spawn_app_with(Backend::Sqlite, parts).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key, "reused, not replaced");
    assert!(!again.logs().iter().any(|l| l.contains("generated a master key")));
}

async fn a_running_node_reencrypts_after_a_rotation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let dbs = databases(backend).await;
    // Patients written before the rotation, through the library, as an earlier run would have.
    let (code, output) = cli(dir.path(), &dbs, TEST_MASTER_KEY, &["keys", "status"]);
    assert_eq!(code, Some(0), "{output}");
    let (storage, patients) = open_patients(dir.path(), &dbs).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(patients.create(&record(n)).await.unwrap());
    }

    let env = vec![
        ("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY.to_owned()),
        ("CONFIDANT_KEYS__REFRESH_SECS", "1".to_owned()),
        ("CONFIDANT_KEYS__RETIRE_GRACE_SECS", "2".to_owned()),
        ("CONFIDANT_KEYS__REENCRYPT_BATCH", "5".to_owned()),
    ];
    let app = spawn_app_with(
        backend,
        Options { env: env.clone(), data_dir: Some(dir), databases: dbs, shared_databases: None },
    )
    .await;
    let urls = app.main_db.as_ref().zip(app.audit_db.as_ref()).map(|(m, a)| (m.url(), a.url()));
    let run = |args: &[&str]| {
        let mut command = server_command(app.data_dir.path());
        command.args(args);
        for (k, v) in &env {
            command.env(k, v);
        }
        if let Some((main, audit)) = &urls {
            command.env("CONFIDANT_DATABASE_URL", main).env("CONFIDANT_AUDIT_DATABASE_URL", audit);
        }
        run_to_exit(command)
    };

    let (code, output) = run(&["keys", "rotate"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("data key 3 is active"), "{output}");

    // The node picks the new key up and moves all twelve records onto it, in batches of 5.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = run(&["keys", "status"]);
        if status.lines().any(|l| l.contains("decrypt_only") && l.contains("can be retired")) {
            break;
        }
        assert!(Instant::now() < deadline, "re-encryption did not finish:\n{status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // the retire grace period
    let (code, output) = run(&["keys", "retire", "1"]);
    assert_eq!(code, Some(0), "{output}");

    for (n, id) in ids.iter().enumerate() {
        assert_eq!(patients.get(*id).await.unwrap().unwrap().record, record(n));
    }
    assert!(app.logs().iter().any(|l| l.contains("re-encryption progress")), "progress is logged");
    let (code, exported) = run(&["audit", "export", "--since", "2020-01-01", "--until", "2100-01-01"]);
    assert_eq!(code, Some(0), "{exported}");
    assert!(exported.contains("data_key_rotated") && exported.contains("data_key_retired"), "{exported}");
    assert_eq!(exported.matches("reencrypted_under_new_key").count(), 12);
    storage.close().await;
}

/// The patient table of the test's main store, through a keyring under the test master key.
async fn open_patients(dir: &std::path::Path, dbs: &Option<(TestDatabase, TestDatabase)>) -> (Storage, Patients) {
    let settings = settings::load_from(None, [("CONFIDANT_DATA_DIR".to_owned(), dir.display().to_string())]).unwrap();
    let location = match dbs {
        Some((main, _)) => Location::Postgres(DatabaseUrl::try_from(main.url()).unwrap()),
        None => Location::of(Store::Main, &settings),
    };
    let storage = Storage::connect(Store::Main, &location, &settings.database).await.unwrap();
    let master = MasterKey::from_base64(TEST_MASTER_KEY, "test").unwrap();
    let keyring = Arc::new(Keyring::open(storage.clone(), master).await.unwrap());
    (storage.clone(), Patients::new(storage, keyring))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_generated_master_key_replaces_its_file_and_keeps_the_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut command = server_command(dir.path());
        command.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    };
    assert_eq!(run(&["keys", "status"], None).0, Some(0));
    let (_, patients) =
        open_patients_with(dir.path(), &std::fs::read_to_string(dir.path().join("master.key")).unwrap()).await;
    let id = patients.create(&record(7)).await.unwrap();

    let new = MasterKey::generate();
    let (code, output) = run(&["keys", "rotate-master"], Some(&format!("{}\n", new.to_base64().as_str())));

    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("rewrapped 2 data keys") && output.contains(new.fingerprint()), "{output}");
    let file = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_eq!(file.trim(), new.to_base64().as_str());
    let (_, reopened) = open_patients_with(dir.path(), &file).await;
    assert_eq!(reopened.get(id).await.unwrap().unwrap().record, record(7));
    let (code, exported) = run(&["audit", "export", "--since", "2020-01-01", "--until", "2100-01-01"], None);
    assert_eq!(code, Some(0), "{exported}");
    assert!(exported.contains("master_key_rotated"), "{exported}");
}

/// The patient table of the SQLite store in `dir`, under the given master key.
async fn open_patients_with(dir: &std::path::Path, key: &str) -> (Storage, Patients) {
    let settings = settings::load_from(None, [("CONFIDANT_DATA_DIR".to_owned(), dir.display().to_string())]).unwrap();
    let storage =
        Storage::connect(Store::Main, &Location::of(Store::Main, &settings), &settings.database).await.unwrap();
    let keyring = Arc::new(Keyring::open(storage.clone(), MasterKey::from_base64(key, "test").unwrap()).await.unwrap());
    (storage.clone(), Patients::new(storage, keyring))
}
