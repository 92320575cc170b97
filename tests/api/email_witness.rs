//! The email witness: each period every owner is emailed the newest signed heads of the node's
//! audit chains, through the reminder outbox and a real SMTP server (aiosmtpd on loopback,
//! STARTTLS required), once per node and period however often it is checked and whichever node
//! sends it, with no PHI in it; and `confidant audit verify --head '<line>'`, with a line from
//! such an email, passes on an intact trail and names the first missing seq once the tail that
//! head covers was cut together with every other witness. Both backends.

use std::sync::Arc;

use actix::Actor;
use confidant::audit::AuditStore;
use confidant::audit::checkpoint::{CheckpointLog, to_hex};
use confidant::audit::email_witness::{Checked, EmailWitnessDeps, report_heads};
use confidant::audit::signed_head::{SignedHead, fingerprint};
use confidant::auditor::Auditor;
use confidant::identity::{Email, NewAccount};
use confidant::patients::PatientRecord;
use confidant::phi::PhiText;
use confidant::reminders::ReminderState;
use confidant::reminders::scheduler::RunDue;
use confidant::server::start_reminders;
use confidant::services::Services;
use confidant::settings::{self, Settings};
use confidant_actors::audit::{Action, AuditSink, AuditWriter, Outcome, Role, WriterLimits};
use confidant_actors::clock::{Clock, ManualClock};
use confidant_actors::ids::{NodeId, UserId};
use ed25519_dalek::SigningKey;
use sqlx::Connection;

use crate::helpers::{Backend, InProcess, Options, TEST_MASTER_KEY, in_process, run_to_exit, server_command};
use crate::smtp::SmtpServer;

const DAY: i64 = 86_400_000;
/// 2026-12-08 10:00 UTC.
const TUESDAY_10: i64 = 1_796_724_000_000;
const OWNERS: [&str; 2] = ["owner@practice.example", "co-owner@practice.example"];

/// The body of a raw email, quoted-printable decoded.
fn body_of(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let body = raw.split_once("\n\n").map_or("", |(_, body)| body).replace("=\n", "");
    let mut out = Vec::with_capacity(body.len());
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The signed head lines of an email.
fn head_lines(raw: &str) -> Vec<String> {
    body_of(raw).lines().filter(|l| l.starts_with("confidant-audit-head/1 ")).map(str::to_owned).collect()
}

struct Fixture {
    clock: Arc<ManualClock>,
    services: Services,
    settings: Settings,
    deps: EmailWitnessDeps,
    /// The node's audit store, sealing with `key`.
    store: Arc<AuditStore>,
    auditor: Auditor,
    key: SigningKey,
    node: NodeId,
    patient: String,
    _dir: tempfile::TempDir,
    _dbs: Option<(crate::helpers::TestDatabase, crate::helpers::TestDatabase)>,
}

async fn fixture(backend: Backend, smtp: &SmtpServer) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let vars = vec![
        ("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("CONFIDANT_SMTP_URL".to_owned(), smtp.url(false)),
        ("CONFIDANT_REMINDERS__SMTP_CA_FILE".to_owned(), smtp.cert.display().to_string()),
        ("CONFIDANT_REMINDERS__SMTP_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        ("CONFIDANT_REMINDERS__PRACTICE_NAME".to_owned(), "Harbour Practice".to_owned()),
        // Passes run when the test says so, not on a timer.
        ("CONFIDANT_REMINDERS__POLL_INTERVAL_MS".to_owned(), "3600000".to_owned()),
    ];
    let settings: Settings = settings::load_from(None, vars).unwrap();
    let InProcess { audit_storage, keyring, pusher, databases, .. } =
        in_process(backend, &settings, "email_witness").await;
    // The node whose chains are reported: its id in the data directory, its key sealing them.
    let node = NodeId::generate();
    std::fs::write(dir.path().join("node-id"), format!("{node}\n")).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let log = CheckpointLog::new(dir.path().join("audit-checkpoints"));
    let store = Arc::new(AuditStore::new(audit_storage.clone(), node).with_checkpoints(key.clone(), log, 1000));
    store.register_key(key.verifying_key().as_bytes()).await.unwrap();
    let writer = AuditWriter::new(node, store.clone(), WriterLimits::default()).start();
    let auditor = Auditor::new(node, writer);
    let clock = Arc::new(ManualClock::at(TUESDAY_10));
    let services = Services::new(&settings, keyring, auditor.clone(), pusher, clock.clone());
    let record = PatientRecord {
        legal_name: PhiText::new("Ada Lovelace"),
        preferred_name: None,
        date_of_birth: PhiText::new("1980-02-29"),
        email: Some(PhiText::new("ada@mail.example")),
        phone: None,
        address: None,
        emergency_contact: None,
    };
    let patient = services.patients.create(&record).await.unwrap().to_string();
    let deps = EmailWitnessDeps {
        node_id: node,
        data_dir: dir.path().to_path_buf(),
        public_key: key.verifying_key(),
        audit_storage,
        outbox: services.outbox.clone(),
        accounts: services.identity.accounts.clone(),
        auditor: services.auditor.clone(),
        clock: clock.clone(),
        every_ms: settings.audit_head_email_every_ms(),
        check_every: std::time::Duration::from_secs(3600),
    };
    Fixture { clock, services, settings, deps, store, auditor, key, node, patient, _dir: dir, _dbs: databases }
}

impl Fixture {
    /// Records an event on the node's chain and seals it: a new signed head.
    async fn seal(&self) {
        let event = self.auditor.system(Action::Read, Outcome::Success);
        self.auditor.record(event).await.unwrap();
        AuditSink::checkpoint(&*self.store).await.unwrap();
    }

    async fn account(&self, role: Role, email: &str) -> UserId {
        let new = NewAccount { role, email: Email::parse(email).unwrap(), patient_id: None, name: None };
        self.services.identity.accounts.create_active(&new, "not-a-real-hash", TUESDAY_10).await.unwrap()
    }

    async fn audited(&self, reason: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE reason = $1")
            .bind(reason)
            .fetch_one(self.deps.audit_storage.pool_for_tests())
            .await
            .unwrap()
    }

    fn period(&self) -> i64 {
        self.clock.now_ms().div_euclid(DAY)
    }
}

async fn every_owner_gets_the_nodes_signed_heads_once_a_day_without_phi(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp).await;
    // Nothing to report before the chain has a signed head, or while there is no owner.
    assert_eq!(report_heads(&f.deps).await.unwrap(), Checked::NothingYet);
    f.seal().await;
    assert_eq!(report_heads(&f.deps).await.unwrap(), Checked::NothingYet);
    let owners = [f.account(Role::PracticeOwner, OWNERS[0]).await, f.account(Role::PracticeOwner, OWNERS[1]).await];
    f.account(Role::Clinician, "dr.wolfe@practice.example").await;

    // The node checking twice at once (say, around a restart) reports the day once.
    let (a, b) = tokio::join!(report_heads(&f.deps), report_heads(&f.deps));
    let mut checked = [a.unwrap(), b.unwrap()];
    checked.sort_by_key(|c| matches!(c, Checked::Reported { .. }));
    assert_eq!(checked, [Checked::AlreadyReported, Checked::Reported { period: f.period(), heads: 1, owners: 2 }]);
    assert_eq!(report_heads(&f.deps).await.unwrap(), Checked::AlreadyReported);

    // Two nodes' mailers race for the emails: each goes once.
    let one = start_reminders(&f.settings, &f.services).unwrap().unwrap();
    let other = start_reminders(&f.settings, &f.services).unwrap().unwrap();
    let (x, y) = tokio::join!(one.send(RunDue), other.send(RunDue));
    assert_eq!(x.unwrap().unwrap().sent + y.unwrap().unwrap().sent, 2);
    let received = smtp.wait_for(2).await;
    let mut to: Vec<&str> = received.iter().map(|r| r.meta["rcpt_tos"][0].as_str().unwrap()).collect();
    to.sort_unstable();
    assert_eq!(to, [OWNERS[1], OWNERS[0]]);

    let newest = confidant::audit::verify::stored_checkpoints(&f.deps.audit_storage).await.unwrap();
    let newest = newest.iter().filter(|c| c.node_id == f.node.to_string()).max_by_key(|c| c.seq).unwrap();
    for message in &received {
        assert!(message.meta["tls"].as_bool().unwrap(), "over TLS");
        let raw = &message.raw;
        assert!(raw.contains("Subject: Audit trail heads of Harbour Practice"), "{raw}");
        let lines = head_lines(raw);
        assert_eq!(lines.len(), 1, "one line per chain: {raw}");
        let head = SignedHead::parse(&lines[0]).unwrap();
        assert_eq!(head.checkpoint, *newest, "the newest signed head, exactly");
        assert_eq!(head.key, fingerprint(&f.key.verifying_key()));
        let body = body_of(raw);
        assert!(body.contains(&format!("confidant audit verify --head '{}'", lines[0])), "{body}");
        assert!(body.contains(&to_hex(&newest.hash)) && body.contains(&format!("sequence number: {}", newest.seq)));
        // Hashes and signatures are long hex runs: four digits inside one are chance, not a date
        // of birth ("c198016a..."), so the search skips them.
        for phi in ["Ada", "Lovelace", "ada@mail", "wolfe", &f.patient] {
            assert!(!raw.contains(phi), "the audit head email contains {phi:?}:\n{raw}");
        }
        assert!(!without_hex_runs(raw).contains("1980"), "the audit head email contains the year of birth:\n{raw}");
    }
    let emails = f.services.outbox.audit_head_emails(f.node, f.period()).await.unwrap();
    assert!(emails.iter().all(|e| e.state == ReminderState::Sent) && emails.len() == 2, "{emails:?}");
    assert_eq!(sent_by_both(&one, &other).await, 0, "sent once");

    // The next day: the newer head; an owner disabled meanwhile is not written to.
    f.clock.advance_ms(DAY);
    f.seal().await;
    let Checked::Reported { heads: 1, owners: 2, .. } = report_heads(&f.deps).await.unwrap() else {
        panic!("the next day is reported")
    };
    f.services.identity.accounts.disable(owners[1], f.clock.now_ms()).await.unwrap();
    let report = one.send(RunDue).await.unwrap().unwrap();
    assert_eq!((report.sent, report.withdrawn), (1, 1));
    let received = smtp.wait_for(3).await;
    let later = SignedHead::parse(&head_lines(&received[2].raw)[0]).unwrap();
    assert!(later.checkpoint.seq > newest.seq, "a newer head the next day");
    assert_eq!(f.audited("audit_heads_reported").await, 2);
    assert_eq!(f.audited("audit_head_send").await, 3, "each email audited before it left");
}

/// What one more pass on each node sends.
async fn sent_by_both(
    one: &actix::Addr<confidant::reminders::scheduler::ReminderScheduler>,
    other: &actix::Addr<confidant::reminders::scheduler::ReminderScheduler>,
) -> usize {
    one.send(RunDue).await.unwrap().unwrap().sent + other.send(RunDue).await.unwrap().unwrap().sent
}

crate::on_both_backends_actix!(every_owner_gets_the_nodes_signed_heads_once_a_day_without_phi);

/// `confidant ARGS` on a stopped node's data directory and databases; (exit code, output).
fn confidant(stopped: &Options<'_>, args: &[&str]) -> (Option<i32>, String) {
    let mut command = server_command(stopped.data_dir.as_ref().unwrap().path());
    command.args(args);
    if let Some((main, audit)) = &stopped.databases {
        command
            .env("CONFIDANT_DATABASE_URL", main.url())
            .env("CONFIDANT_AUDIT_DATABASE_URL", audit.url())
            .env("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY);
    }
    run_to_exit(command)
}

/// What an attacker with the data directory and both databases does: deletes `node`'s entries
/// from `seq` on, every checkpoint row, the checkpoint files and the main store's witness rows.
async fn cut_the_tail_and_every_witness(stopped: &Options<'_>, node: &str, seq: i64) {
    let dir = stopped.data_dir.as_ref().unwrap().path();
    match &stopped.databases {
        None => {
            let url = |file: &str| format!("sqlite://{}", dir.join(file).display());
            let mut audit = sqlx::SqliteConnection::connect(&url("audit.db")).await.unwrap();
            sqlx::raw_sql(
                "DROP TRIGGER audit_entries_refuse_delete; DROP TRIGGER audit_checkpoints_refuse_delete; \
                 DELETE FROM audit_checkpoints;",
            )
            .execute(&mut audit)
            .await
            .unwrap();
            sqlx::query("DELETE FROM audit_entries WHERE node_id = $1 AND seq >= $2")
                .bind(node)
                .bind(seq)
                .execute(&mut audit)
                .await
                .unwrap();
            let mut main = sqlx::SqliteConnection::connect(&url("confidant.db")).await.unwrap();
            sqlx::query("DELETE FROM audit_witness").execute(&mut main).await.unwrap();
        }
        Some((main, audit)) => {
            let mut audit = sqlx::PgConnection::connect(&audit.url()).await.unwrap();
            let mut tx = audit.begin().await.unwrap();
            sqlx::query("SET LOCAL confidant.audit_purge = 'on'").execute(&mut *tx).await.unwrap();
            sqlx::query("DELETE FROM audit_checkpoints").execute(&mut *tx).await.unwrap();
            sqlx::query("DELETE FROM audit_entries WHERE node_id = $1 AND seq >= $2")
                .bind(node)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let mut main = sqlx::PgConnection::connect(&main.url()).await.unwrap();
            sqlx::query("DELETE FROM audit_witness").execute(&mut main).await.unwrap();
        }
    }
    std::fs::remove_dir_all(dir.join("audit-checkpoints")).unwrap();
}

async fn a_head_from_the_owners_email_catches_a_tail_cut_with_every_other_witness(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let env = vec![
        ("CONFIDANT_SMTP_URL", smtp.url(false)),
        ("CONFIDANT_REMINDERS__SMTP_CA_FILE", smtp.cert.display().to_string()),
        ("CONFIDANT_REMINDERS__SMTP_TIMEOUT_SECS", "5".to_owned()),
        ("CONFIDANT_REMINDERS__POLL_INTERVAL_MS", "200".to_owned()),
        // Heads are sealed (and the email witness checks) every second.
        ("CONFIDANT_AUDIT__CHECKPOINT_EVERY_SECS", "1".to_owned()),
    ];
    let app = crate::helpers::spawn_app_with(backend, Options { env, ..Default::default() }).await;
    let (code, output) = app.cli(
        &["user", "create", "--role", "practice_owner", "--email", OWNERS[0]],
        &format!("{}\n", crate::signin::PASSWORD),
    );
    assert_eq!(code, Some(0), "{output}");
    let received = smtp.wait_for(1).await;
    let node = std::fs::read_to_string(app.data_dir.path().join("node-id")).unwrap().trim().to_owned();
    let line = head_lines(&received[0].raw)
        .into_iter()
        .find(|l| SignedHead::parse(l).unwrap().checkpoint.node_id == node)
        .expect("the email holds the node's head");
    let seq = SignedHead::parse(&line).unwrap().checkpoint.seq;
    let (status, stopped) = app.into_parts_after("TERM");
    assert!(status.success());

    let (code, output) = confidant(&stopped, &["audit", "verify", "--head", &line]);
    assert_eq!(code, Some(0), "an intact trail holds the head: {output}");
    assert!(output.contains("signed heads given with --head: 1 checkpoint(s)"), "{output}");
    assert!(output.contains(", fingerprint "), "the trusted keys' fingerprints are shown: {output}");

    cut_the_tail_and_every_witness(&stopped, &node, seq).await;
    let (code, output) = confidant(&stopped, &["audit", "verify"]);
    assert_eq!(code, Some(0), "every witness on the machines was cut with the tail: {output}");
    let (code, output) = confidant(&stopped, &["audit", "verify", "--head", &line]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains(&format!("chain of node {node} is broken at seq {seq}")), "{output}");
    assert!(output.contains("truncated"), "{output}");

    // A line edited by hand no longer carries a trusted signature; a mangled one is refused.
    let hash = line.split_whitespace().find_map(|w| w.strip_prefix("hash=")).unwrap();
    let edited = line.replace(hash, &"0".repeat(64));
    let (code, output) = confidant(&stopped, &["audit", "verify", "--head", &edited]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("not signed by a trusted key"), "{output}");
    let (code, output) = confidant(&stopped, &["audit", "verify", "--head", "seq=2 of node"]);
    assert_eq!(code, Some(2), "{output}");
}

crate::on_both_backends!(a_head_from_the_owners_email_catches_a_tail_cut_with_every_other_witness);

/// `text` with every run of 16 or more hex digits taken out (the email's hashes and signatures).
fn without_hex_runs(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !(word.len() >= 16 && word.chars().all(|c| c.is_ascii_hexdigit())))
        .collect::<Vec<_>>()
        .join(" ")
}
