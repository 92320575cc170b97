//! PHI field encryption benchmark: per-field encrypt and decrypt cost, and reading 1,000
//! patient records encrypted against the same records in a plaintext table, in the same run,
//! on SQLite and PostgreSQL. Prints its figures; not a test. Run with `cargo bench --bench phi`
//! (PostgreSQL at CONFIDANT_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432).
#![allow(clippy::print_stdout, clippy::expect_used)] // a program that prints figures; set-up failures abort it

use std::sync::Arc;
use std::time::{Duration, Instant};

use confidant::crypto::envelope::DataKey;
use confidant::crypto::{Field, KeyBytes, Keyring, MasterKey};
use confidant::patients::{EmergencyContact, PatientRecord, Patients};
use confidant::phi::PhiText;
use confidant::storage::{Storage, Store};
use confidant_actors::ids::PatientId;
use sqlx::Row;

mod support;

const RECORDS: usize = 1_000;
const ROUNDS: usize = 15;
const FIELD_OPS: usize = 200_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        println!("PHI encryption benchmark on {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
        field_costs();
        for backend in ["sqlite", "postgres"] {
            records(backend).await;
        }
    });
}

/// Seal and open of one field value, for a short value (a name) and a long one (an address).
fn field_costs() {
    let key = DataKey::new(1, &KeyBytes::random());
    for (what, value) in [("32-byte value", "x".repeat(32)), ("512-byte value", "x".repeat(512))] {
        let field = Field { table: "patients", column: "legal_name", row_id: "5c3f0a5e-8f6e-4c59-9f8e-0d2a3b4c5d6e" };
        let t = Instant::now();
        let mut sealed = Vec::new();
        for _ in 0..FIELD_OPS {
            sealed = key.seal(field, value.as_bytes());
        }
        let seal = t.elapsed() / FIELD_OPS as u32;
        let t = Instant::now();
        for _ in 0..FIELD_OPS {
            std::hint::black_box(key.open(field, &sealed).expect("opens"));
        }
        let open = t.elapsed() / FIELD_OPS as u32;
        println!(
            "[field] {what}: encrypt {seal:.2?}, decrypt {open:.2?} per value (+{} bytes stored)",
            sealed.len() - value.len()
        );
    }
}

fn record(n: usize) -> PatientRecord {
    PatientRecord {
        legal_name: PhiText::new(format!("Patient Number {n} Example-Surname")),
        preferred_name: Some(PhiText::new(format!("Pat {n}"))),
        date_of_birth: PhiText::new("1984-03-17"),
        email: Some(PhiText::new(format!("patient{n}@example.org"))),
        phone: Some(PhiText::new("+1 555 0100 2000")),
        address: Some(PhiText::new(format!("{n} Example Street\nSpringfield, ST 00000"))),
        emergency_contact: Some(EmergencyContact {
            name: PhiText::new("Contact Person"),
            relationship: Some(PhiText::new("partner")),
            phone: PhiText::new("+1 555 0100 3000"),
        }),
    }
}

const PLAIN_TABLE: &str = "CREATE TABLE patients_plain (patient_id TEXT PRIMARY KEY NOT NULL, legal_name TEXT NOT NULL, \
    preferred_name TEXT, date_of_birth TEXT NOT NULL, email TEXT, phone TEXT, address TEXT, emergency_contact TEXT, \
    created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)";

/// Reads the same 1,000 records from `patients` (encrypted) and `patients_plain`, alternating.
async fn records(backend: &str) {
    let (storage, _guard) = support::open(backend, Store::Main).await;
    let master = MasterKey::generate();
    let keyring = Arc::new(Keyring::open(storage.clone(), master).await.expect("keyring"));
    let patients = Patients::new(storage.clone(), keyring);
    sqlx::query(PLAIN_TABLE).execute(storage.pool_for_tests()).await.expect("plain table");
    let mut ids = Vec::with_capacity(RECORDS);
    for n in 0..RECORDS {
        let r = record(n);
        let id = patients.create(&r).await.expect("create");
        let contact = serde_json::to_string(&r.emergency_contact).expect("json");
        sqlx::query("INSERT INTO patients_plain VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0)")
            .bind(id.to_string())
            .bind(r.legal_name.expose().to_owned())
            .bind(r.preferred_name.as_ref().map(|v| v.expose().to_owned()))
            .bind(r.date_of_birth.expose().to_owned())
            .bind(r.email.as_ref().map(|v| v.expose().to_owned()))
            .bind(r.phone.as_ref().map(|v| v.expose().to_owned()))
            .bind(r.address.as_ref().map(|v| v.expose().to_owned()))
            .bind(contact)
            .execute(storage.pool_for_tests())
            .await
            .expect("insert plain");
        ids.push(id);
    }

    let (mut encrypted, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        assert_eq!(patients.get_many(&ids).await.expect("read").len(), RECORDS);
        encrypted.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(read_plain(&storage, &ids).await.len(), RECORDS);
        plain.push(t.elapsed());
    }
    let (e, p) = (median(&mut encrypted), median(&mut plain));
    println!(
        "[{backend}] read {RECORDS} patient records: encrypted {e:.2?}, plaintext {p:.2?}; overhead {:.2?} ({:+.0}%), {:.1} µs per record",
        e.saturating_sub(p),
        (e.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0,
        e.saturating_sub(p).as_secs_f64() * 1e6 / RECORDS as f64
    );
    storage.close().await;
}

/// The plaintext baseline: the same query shape and the same in-memory result type.
async fn read_plain(storage: &Storage, ids: &[PatientId]) -> Vec<PatientRecord> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT patient_id, legal_name, preferred_name, date_of_birth, email, phone, address, emergency_contact, \
             created_at_ms, updated_at_ms FROM patients_plain WHERE patient_id IN ({placeholders})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(storage.pool_for_tests()).await.expect("read plain") {
            let text = |i| row.try_get::<Option<String>, _>(i).expect("column").map(PhiText::new);
            let contact: Option<String> = row.try_get(7).expect("column");
            out.push(PatientRecord {
                legal_name: text(1).expect("name"),
                preferred_name: text(2),
                date_of_birth: text(3).expect("dob"),
                email: text(4),
                phone: text(5),
                address: text(6),
                emergency_contact: contact.and_then(|c| serde_json::from_str(&c).ok()),
            });
        }
    }
    out
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
