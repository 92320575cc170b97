//! Appointment reminders and staff notices through a real SMTP server (aiosmtpd on loopback,
//! STARTTLS required): the scheduler, mailer and stores run in-process on a real store (both
//! backends) with a manual clock, so lead times and backoff need no sleeping; the staff API is
//! exercised against the real server process, sending for real.

use std::sync::Arc;

use actix::{Actor, Addr};
use confidant::identity::{Email, NewAccount, StaffName};
use confidant::patients::PatientRecord;
use confidant::phi::PhiText;
use confidant::reminders::content::{Details, Letter, Templates};
use confidant::reminders::mailer::{Deliver, Mailer};
use confidant::reminders::outbox::{Finish, Job, queue_staff_notice, withdraw_staff_notices};
use confidant::reminders::scheduler::{ReminderScheduler, Report, RunDue};
use confidant::reminders::{Preferences, ReminderState, ReminderView, StaffNotice, StaffNoticeView};
use confidant::server::start_reminders;
use confidant::services::Services;
use confidant::settings::{self, Settings};
use confidant::storage::Storage;
use confidant_actors::audit::Role;
use confidant_actors::clock::{Clock, ManualClock};
use confidant_actors::ids::{PatientId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    Backend, InProcess, Options, TestDatabase, in_process, run_to_exit, server_command, spawn_app_with,
};
use crate::signin::{owner, patient, patient_record, staff};
use crate::smtp::{Gpg, SmtpServer, armored_block};

const HOUR: i64 = 3_600_000;
const START: i64 = 1_800_000_000_000;
const LOCATION: &str = "12 Harbour Street, Suite 4";
const CLINICIAN_EMAIL: &str = "dr.wolfe@practice.example";
/// The clinician's display name and credentials, shown in a reminder with details.
const CLINICIAN_NAME: (&str, &str) = ("Dr. Ines Wolfe", "PsyD");
const OWNER_EMAIL: &str = "owner@practice.example";

struct Fixture {
    clock: Arc<ManualClock>,
    services: Services,
    settings: Settings,
    scheduler: Addr<ReminderScheduler>,
    storage: Storage,
    audit_storage: Storage,
    clinician: UserId,
    owner: UserId,
    patient: PatientId,
    _dir: tempfile::TempDir,
    _dbs: Option<(TestDatabase, TestDatabase)>,
}

/// Stores, services and a started scheduler sending to `smtp_url`, trusting `ca`.
async fn fixture(backend: Backend, smtp_url: &str, ca: &std::path::Path, env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("CONFIDANT_SMTP_URL".to_owned(), smtp_url.to_owned()),
        ("CONFIDANT_REMINDERS__SMTP_CA_FILE".to_owned(), ca.display().to_string()),
        ("CONFIDANT_REMINDERS__LOCATION".to_owned(), LOCATION.to_owned()),
        ("CONFIDANT_REMINDERS__SMTP_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        // Passes run when the test says so, not on a timer.
        ("CONFIDANT_REMINDERS__POLL_INTERVAL_MS".to_owned(), "3600000".to_owned()),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let settings: Settings = settings::load_from(None, vars).unwrap();
    let InProcess { audit_storage, keyring, auditor, pusher, databases: dbs, .. } =
        in_process(backend, &settings, "reminders").await;
    let clock = Arc::new(ManualClock::at(START));
    let keyring_storage = keyring.storage().clone();
    let services = Services::new(&settings, keyring, auditor, pusher, clock.clone());
    let new = NewAccount {
        role: Role::Clinician,
        email: Email::parse(CLINICIAN_EMAIL).unwrap(),
        patient_id: None,
        name: Some(StaffName::parse(CLINICIAN_NAME.0, Some(CLINICIAN_NAME.1)).unwrap()),
    };
    let clinician = services.identity.accounts.create_active(&new, "not-a-real-hash", START).await.unwrap();
    let new = NewAccount {
        role: Role::PracticeOwner,
        email: Email::parse(OWNER_EMAIL).unwrap(),
        patient_id: None,
        name: None,
    };
    let owner = services.identity.accounts.create_active(&new, "not-a-real-hash", START).await.unwrap();
    let record = PatientRecord {
        legal_name: PhiText::new("Ada Lovelace"),
        preferred_name: None,
        date_of_birth: PhiText::new("1980-02-29"),
        email: Some(PhiText::new("ada@mail.example")),
        phone: None,
        address: None,
        emergency_contact: None,
    };
    let patient = services.patients.create(&record).await.unwrap();
    let scheduler = start_reminders(&settings, &services).unwrap().unwrap();
    Fixture {
        clock,
        services,
        settings,
        scheduler,
        storage: keyring_storage,
        audit_storage,
        clinician,
        owner,
        patient,
        _dir: dir,
        _dbs: dbs,
    }
}

impl Fixture {
    /// Books an appointment starting `hours_ahead` from now (one hour long).
    async fn book(&self, hours_ahead: i64) -> Uuid {
        let starts = self.clock.now_ms() + hours_ahead * HOUR;
        let change = self
            .services
            .schedule
            .book(self.clinician, self.patient, starts, starts + HOUR, self.clinician, self.clock.now_ms())
            .await
            .unwrap();
        change.appointment.id
    }

    async fn reminders(&self, appointment: Uuid) -> Vec<ReminderView> {
        self.services.outbox.of_appointment(appointment).await.unwrap()
    }

    async fn run(&self) -> Report {
        self.scheduler.send(RunDue).await.unwrap().unwrap()
    }

    async fn audited(&self, reason: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_entries WHERE resource_type = 'reminder' AND action = 'export' AND reason = $1",
        )
        .bind(reason)
        .fetch_one(self.audit_storage.pool_for_tests())
        .await
        .unwrap()
    }

    /// The `reminder_failed` alerts raised about `reminder`, checking they went to the owner.
    async fn failure_alerts(&self, reminder: Uuid) -> i64 {
        let owner: String = sqlx::query_scalar(
            "SELECT r.user_id FROM alert_recipients r JOIN alerts a ON a.alert_id = r.alert_id \
             WHERE a.subject_id = $1 AND a.urgent = 0",
        )
        .bind(reminder.to_string())
        .fetch_one(self.storage.pool_for_tests())
        .await
        .unwrap();
        assert_eq!(owner, self.owner.to_string());
        sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE subject_id = $1")
            .bind(reminder.to_string())
            .fetch_one(self.storage.pool_for_tests())
            .await
            .unwrap()
    }

    /// A staff account with `email`, active.
    async fn staff_account(&self, email: &str) -> UserId {
        let new =
            NewAccount { role: Role::Clinician, email: Email::parse(email).unwrap(), patient_id: None, name: None };
        self.services.identity.accounts.create_active(&new, "not-a-real-hash", START).await.unwrap()
    }

    /// An urgent alert about the patient, written as the alerts code would (its body, sealed
    /// there, is plain words here that no notice may repeat); returns its id.
    async fn raise_alert(&self) -> Uuid {
        let pool = self.storage.pool_for_tests();
        let key_id: i64 = sqlx::query_scalar("SELECT MIN(key_id) FROM data_keys").fetch_one(pool).await.unwrap();
        let alert = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO alerts (alert_id, key_id, patient_id, body, urgent, raised_at_ms, escalation_step) \
             VALUES ($1, $2, $3, $4, 1, $5, 0)",
        )
        .bind(alert.to_string())
        .bind(key_id)
        .bind(self.patient.to_string())
        .bind(b"PHQ-9 item 9: thoughts of self-harm (suicide risk)".to_vec())
        .bind(self.clock.now_ms())
        .execute(pool)
        .await
        .unwrap();
        alert
    }

    /// Queues the notice of `alert`'s escalation `step` to `recipient` in a transaction of its
    /// own, as escalation would in its; whether it was new.
    async fn notify(&self, alert: Uuid, step: u32, recipient: UserId) -> bool {
        let mut tx = self.storage.pool_for_tests().begin().await.unwrap();
        let notice = StaffNotice { alert_id: alert, step, recipient, now_ms: self.clock.now_ms() };
        let queued = queue_staff_notice(&mut tx, &notice).await.unwrap();
        tx.commit().await.unwrap();
        queued
    }

    async fn notices(&self, alert: Uuid) -> Vec<StaffNoticeView> {
        self.services.outbox.staff_notices_of(alert).await.unwrap()
    }

    async fn set_key(&self, armored: Option<String>) {
        let key = armored.map(|k| confidant::reminders::pgp_mime::PgpKey::parse(&k).unwrap());
        let preferences = Preferences { email_enabled: true, lead_minutes: None, pgp_key: key };
        self.services.reminder_preferences.put(self.patient, &preferences, self.clinician, START).await.unwrap();
    }
}

/// The patient's name, the clinician, the location and the appointment's date must not be in a
/// reminder sent in the clear.
fn assert_no_phi(raw: &str, starts_at_ms: i64) {
    let date = time::OffsetDateTime::from_unix_timestamp(starts_at_ms / 1000).unwrap().date().to_string();
    for phi in ["Ada", "Lovelace", "wolfe", "Harbour", &date] {
        assert!(!raw.contains(phi), "a clear reminder contains {phi:?}:\n{raw}");
    }
}

async fn a_default_reminder_goes_over_tls_at_its_lead_time_and_carries_no_phi(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let appointment = f.book(72).await;
    let queued = f.reminders(appointment).await;
    assert_eq!(queued.iter().map(|r| r.lead_minutes).collect::<Vec<_>>(), [Some(2880), Some(120)]);

    assert_eq!(f.run().await, Report::default(), "nothing is due yet");
    f.clock.advance_ms(24 * HOUR + 60_000);
    assert_eq!(f.run().await.sent, 1);

    let received = smtp.wait_for(1).await;
    assert_eq!(received[0].meta["tls"], true, "the message went over TLS");
    assert_eq!(received[0].meta["rcpt_tos"][0], "ada@mail.example");
    let raw = &received[0].raw;
    assert_no_phi(raw, START + 72 * HOUR);
    assert!(raw.contains("https://127.0.0.1:8443/portal/"), "{raw}");
    let states: Vec<ReminderState> = f.reminders(appointment).await.iter().map(|r| r.state).collect();
    assert_eq!(states, [ReminderState::Sent, ReminderState::Queued]);
    assert!(raw.contains(&format!("Message-ID: <reminder-{}@", f.reminders(appointment).await[0].id)), "{raw}");
    assert_eq!(f.audited("reminder_send").await, 1, "audited before it left");
    assert_eq!(f.audited("reminder_sent").await, 1);
    assert_eq!(f.run().await, Report::default(), "a sent reminder is never sent again");
    assert_eq!(smtp.received().len(), 1);
}

async fn a_reminder_to_a_patient_with_a_key_is_pgp_mime_that_gnupg_decrypts(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let gpg = Gpg::with_key("Ada <ada@mail.example>");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    f.set_key(Some(gpg.public_key())).await;
    let appointment = f.book(30).await;
    f.services.outbox.send_now(appointment, f.clinician, &[2880, 120], f.clock.now_ms()).await.unwrap();

    assert_eq!(f.run().await.sent, 1);
    let raw = smtp.wait_for(1).await.remove(0).raw;
    assert!(raw.contains("multipart/encrypted") && raw.contains("application/pgp-encrypted"), "{raw}");
    assert!(raw.contains("Version: 1"), "{raw}");
    assert_no_phi(&raw, START + 30 * HOUR);
    let plain = gpg.decrypt(&armored_block(&raw)).expect("gpg --batch --decrypt");
    for detail in [LOCATION, "Clinician: Dr. Ines Wolfe, PsyD", "2027-01-16 14:00 (UTC+00:00)"] {
        assert!(plain.contains(detail), "the decrypted reminder lacks {detail:?}:\n{plain}");
    }
    assert!(f.reminders(appointment).await.iter().any(|r| r.encrypted && r.state == ReminderState::Sent));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT pgp_public_key FROM reminder_preferences")
        .fetch_one(f.storage.pool_for_tests())
        .await
        .unwrap();
    let key_body = gpg.public_key().lines().nth(2).unwrap().to_owned();
    assert!(!String::from_utf8_lossy(&stored).contains(&key_body), "the key is sealed at rest");
    assert_eq!(f.audited("reminder_sent_encrypted").await, 1);
}

async fn rescheduling_requeues_and_cancelling_withdraws_then_sends_a_notice(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let appointment = f.book(72).await;
    let later = f.clock.now_ms() + 96 * HOUR;
    f.services.schedule.reschedule(appointment, later, later + HOUR, f.clock.now_ms()).await.unwrap();
    let mut states: Vec<_> = f.reminders(appointment).await.iter().map(|r| (r.state.as_str(), r.due_at_ms)).collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("queued", START + 48 * HOUR),
            ("queued", START + 94 * HOUR),
            ("withdrawn", START + 24 * HOUR),
            ("withdrawn", START + 70 * HOUR),
        ]
    );

    f.services.schedule.cancel(appointment, f.clock.now_ms()).await.unwrap();
    let after = f.reminders(appointment).await;
    assert_eq!(after.iter().filter(|r| r.state == ReminderState::Queued).count(), 1, "only the notice");
    assert_eq!(f.run().await.sent, 1);
    let raw = smtp.wait_for(1).await.remove(0).raw;
    assert!(raw.contains("has changed"), "the cancellation template: {raw}");
    assert_no_phi(&raw, later);
    f.clock.advance_ms(96 * HOUR);
    assert_eq!(f.run().await, Report::default());
    assert_eq!(smtp.received().len(), 1, "withdrawn reminders are never sent");
}

async fn a_crash_between_sending_and_recording_never_sends_twice(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let appointment = f.book(30).await;
    let reminder = f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    let lease = f.settings.reminders.lease_ms();

    // Another node claims it, hands it to SMTP, the server accepts it... and the node dies
    // before recording "sent".
    let claimed = f.services.outbox.claim("crashed-node", f.clock.now_ms(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(f.run().await, Report::default(), "a live claim belongs to its node alone");
    assert!(f.services.outbox.hand_over(reminder.id, "crashed-node", f.clock.now_ms()).await.unwrap());
    let templates = Templates::new(&f.settings.reminders).unwrap();
    let details = Details { starts_at_ms: 0, ends_at_ms: 0, clinician: String::new() };
    let Job::Reminder { kind, .. } = claimed[0].job else { panic!("an appointment reminder was claimed") };
    let letter = Letter {
        kind,
        to: "ada@mail.example".parse().unwrap(),
        message_id: format!("{}@localhost.localdomain", claimed[0].message_id),
        details: &details,
        key: None,
    };
    let mailer = Mailer::new(f.settings.smtp_url.as_ref().unwrap(), &f.settings.reminders).unwrap().start();
    mailer.send(Deliver { message: templates.write(&letter).unwrap() }).await.unwrap().unwrap();
    assert_eq!(smtp.wait_for(1).await.len(), 1);

    // After the lease, this node settles the claim: perhaps sent, so never sent again.
    f.clock.advance_ms(lease + 1);
    assert_eq!(f.run().await, Report { failed: 1, ..Report::default() });
    let view = f.services.outbox.get(reminder.id).await.unwrap().unwrap();
    assert_eq!((view.state, view.reason.as_deref()), (ReminderState::Failed, Some("outcome_unknown")));
    assert_eq!(f.audited("outcome_unknown").await, 1);
    f.clock.advance_ms(lease + 1);
    assert_eq!(f.run().await, Report::default());
    assert_eq!(smtp.received().len(), 1, "no duplicate");

    // A claim that died before hand-over was certainly not sent: it goes back and is sent once.
    let second = f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    f.services.outbox.claim("crashed-node", f.clock.now_ms(), lease, 10).await.unwrap();
    f.clock.advance_ms(lease + 1);
    assert_eq!(f.run().await.sent, 1);
    assert_eq!(smtp.wait_for(2).await.len(), 2);
    assert_eq!(f.services.outbox.get(second.id).await.unwrap().unwrap().state, ReminderState::Sent);
    // The dead node's late write cannot overwrite what happened.
    let mut tx = f.services.outbox.begin().await.unwrap();
    let late = f.services.outbox.finish_in(&mut tx, second.id, "crashed-node", Finish::Sent { encrypted: false }, 0);
    assert!(!late.await.unwrap());
    assert_eq!(f.failure_alerts(reminder.id).await, 1, "the unknown outcome was raised to staff");
}

async fn an_unreachable_smtp_server_is_retried_with_backoff_then_reported(backend: Backend) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let ca = tempfile::NamedTempFile::new().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(ca.path(), cert.cert.pem()).unwrap();
    let url = format!("smtps://127.0.0.1:{port}");
    let f = fixture(backend, &url, ca.path(), &[("CONFIDANT_REMINDERS__MAX_ATTEMPTS", "3")]).await;
    let appointment = f.book(30).await;
    let reminder = f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    let base = f.settings.reminders.retry_base_secs as i64 * 1000;

    assert_eq!(f.run().await.retried, 1);
    let view = f.services.outbox.get(reminder.id).await.unwrap().unwrap();
    assert_eq!(
        (view.state, view.attempts, view.reason.as_deref()),
        (ReminderState::Queued, 1, Some("smtp_unreachable"))
    );
    assert_eq!(f.run().await, Report::default(), "not before its backoff");
    f.clock.advance_ms(base);
    assert_eq!(f.run().await.retried, 1);
    f.clock.advance_ms(base);
    assert_eq!(f.run().await, Report::default(), "the second wait is twice as long");
    f.clock.advance_ms(base);
    assert_eq!(f.run().await.failed, 1, "third and last attempt");
    let view = f.services.outbox.get(reminder.id).await.unwrap().unwrap();
    assert_eq!(
        (view.state, view.attempts, view.reason.as_deref()),
        (ReminderState::Failed, 3, Some("smtp_unreachable"))
    );
    assert_eq!(f.audited("smtp_unreachable").await, 3, "each attempt is on the audit trail");
    assert_eq!(f.failure_alerts(reminder.id).await, 1, "front desk and owners are told");
}

async fn a_server_that_cannot_do_tls_gets_nothing(backend: Backend) {
    let smtp = SmtpServer::start("plain");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let appointment = f.book(30).await;
    let reminder = f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    assert_eq!(f.run().await.retried, 1);
    let view = f.services.outbox.get(reminder.id).await.unwrap().unwrap();
    assert_eq!(view.reason.as_deref(), Some("smtp_protocol"), "no STARTTLS offered: an error, not plaintext");
    assert!(smtp.received().is_empty());
}

async fn implicit_tls_on_smtps_works_too_and_dkim_signs_when_configured(backend: Backend) {
    let smtp = SmtpServer::start("implicit");
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])).unwrap();
    let dkim = [
        ("CONFIDANT_REMINDERS__DKIM_KEY_FILE", key.path().to_str().unwrap()),
        ("CONFIDANT_REMINDERS__DKIM_ALGORITHM", "ed25519"),
        ("CONFIDANT_REMINDERS__DKIM_SELECTOR", "confidant2026"),
        ("CONFIDANT_REMINDERS__FROM", "Example Practice <reminders@practice.example>"),
    ];
    let f = fixture(backend, &smtp.url(true), &smtp.cert, &dkim).await;
    let appointment = f.book(30).await;
    f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    assert_eq!(f.run().await.sent, 1);
    let received = smtp.wait_for(1).await;
    assert_eq!(received[0].meta["tls"], true);
    let raw = &received[0].raw;
    assert!(raw.contains("DKIM-Signature: v=1; a=ed25519-sha256"), "{raw}");
    assert!(raw.contains("d=practice.example") && raw.contains("s=confidant2026"), "{raw}");
}

async fn two_nodes_never_claim_the_same_reminder(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let appointment = f.book(30).await;
    for _ in 0..20 {
        f.services.outbox.send_now(appointment, f.clinician, &[], f.clock.now_ms()).await.unwrap();
    }
    let (now, lease) = (f.clock.now_ms(), f.settings.reminders.lease_ms());
    let (a, b) = tokio::join!(
        f.services.outbox.claim("node-a", now, lease, 20),
        f.services.outbox.claim("node-b", now, lease, 20)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 20, "every due reminder claimed once");
    assert!(a.iter().all(|x| b.iter().all(|y| x.id != y.id)), "no reminder claimed by both");
}

async fn a_staff_notice_goes_once_per_escalation_step_and_says_only_that_something_urgent_waits(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let lead = f.staff_account("lead@practice.example").await;
    let alert = f.raise_alert().await;

    assert!(f.notify(alert, 0, lead).await, "queued");
    assert!(!f.notify(alert, 0, lead).await, "the same step to the same person again does nothing");
    let queued = f.notices(alert).await;
    assert_eq!(queued.iter().map(|n| (n.step, n.state)).collect::<Vec<_>>(), [(0, ReminderState::Queued)]);
    assert_eq!(f.services.outbox.get(queued[0].id).await.unwrap(), None, "not an appointment reminder");
    assert_eq!(f.run().await.sent, 1, "due at once");

    let received = smtp.wait_for(1).await;
    assert_eq!(received[0].meta["tls"], true);
    assert_eq!(received[0].meta["rcpt_tos"][0], "lead@practice.example");
    let raw = &received[0].raw;
    assert!(raw.contains("Subject: An urgent item is waiting in Confidant"), "{raw}");
    assert!(raw.contains("https://127.0.0.1:8443/portal/"), "{raw}");
    assert!(raw.contains(&format!("Message-ID: <staff-notice-{}@localhost.localdomain>", queued[0].id)), "{raw}");
    assert!(!raw.contains("multipart/encrypted"), "{raw}");
    let (patient, alert_id) = (f.patient.to_string(), alert.to_string());
    for leak in ["Ada", "Lovelace", patient.as_str(), alert_id.as_str()] {
        assert!(!raw.contains(leak), "a staff notice contains {leak:?}:\n{raw}");
    }
    for word in ["phq", "self-harm", "suicide"] {
        assert!(!raw.to_lowercase().contains(word), "a staff notice says {word:?}:\n{raw}");
    }
    assert_eq!(f.audited("staff_notice_send").await, 1, "audited before it left");
    assert_eq!(f.audited("staff_notice_sent").await, 1);
    let naming_a_patient: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_entries WHERE reason LIKE 'staff_notice_%' AND patient_id IS NOT NULL",
    )
    .fetch_one(f.audit_storage.pool_for_tests())
    .await
    .unwrap();
    assert_eq!(naming_a_patient, 0, "a staff notice sends no patient's data");

    assert_eq!(f.run().await, Report::default(), "a sent notice is never sent again");
    assert!(!f.notify(alert, 0, lead).await, "nor queued again once sent");
    assert!(f.notify(alert, 1, lead).await, "the next step is a new notice");
    assert_eq!(f.run().await.sent, 1);
    let received = smtp.wait_for(2).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].meta["rcpt_tos"][0], "lead@practice.example");
    let states: Vec<_> = f.notices(alert).await.iter().map(|n| (n.step, n.recipient, n.state)).collect();
    assert_eq!(states, [(0, lead, ReminderState::Sent), (1, lead, ReminderState::Sent)]);
}

async fn a_disabled_recipient_or_an_acknowledged_alert_gets_no_staff_notice(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp.url(false), &smtp.cert, &[]).await;
    let gone = f.staff_account("gone@practice.example").await;
    assert!(f.services.identity.accounts.disable(gone, START).await.unwrap());
    let lead = f.staff_account("lead@practice.example").await;
    let alert = f.raise_alert().await;

    assert!(f.notify(alert, 0, gone).await);
    assert_eq!(f.run().await, Report { withdrawn: 1, ..Report::default() });
    let notice = f.notices(alert).await.remove(0);
    assert_eq!((notice.state, notice.reason.as_deref()), (ReminderState::Withdrawn, Some("recipient_inactive")));
    assert_eq!(f.audited("recipient_inactive").await, 1);
    assert_eq!(f.audited("staff_notice_send").await, 0, "nothing was about to leave");

    // Acknowledged before the next pass: the notice still queued is withdrawn with it.
    assert!(f.notify(alert, 1, lead).await);
    let mut tx = f.storage.pool_for_tests().begin().await.unwrap();
    assert_eq!(withdraw_staff_notices(&mut tx, alert, f.clock.now_ms()).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(f.run().await, Report::default());
    let reasons: Vec<_> = f.notices(alert).await.into_iter().map(|n| (n.state, n.reason)).collect();
    assert_eq!(
        reasons,
        [
            (ReminderState::Withdrawn, Some("recipient_inactive".to_owned())),
            (ReminderState::Withdrawn, Some("alert_acknowledged".to_owned()))
        ]
    );
    assert!(smtp.received().is_empty(), "no mail at all");
}

crate::on_both_backends_actix!(
    a_staff_notice_goes_once_per_escalation_step_and_says_only_that_something_urgent_waits,
    a_disabled_recipient_or_an_acknowledged_alert_gets_no_staff_notice,
    a_default_reminder_goes_over_tls_at_its_lead_time_and_carries_no_phi,
    a_reminder_to_a_patient_with_a_key_is_pgp_mime_that_gnupg_decrypts,
    rescheduling_requeues_and_cancelling_withdraws_then_sends_a_notice,
    a_crash_between_sending_and_recording_never_sends_twice,
    two_nodes_never_claim_the_same_reminder,
    an_unreachable_smtp_server_is_retried_with_backoff_then_reported,
    a_server_that_cannot_do_tls_gets_nothing,
    implicit_tls_on_smtps_works_too_and_dkim_signs_when_configured,
);

async fn front_desk_sends_a_reminder_now_and_sees_it_delivered(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let env = vec![
        ("CONFIDANT_SMTP_URL", smtp.url(false)),
        ("CONFIDANT_REMINDERS__SMTP_CA_FILE", smtp.cert.display().to_string()),
        ("CONFIDANT_REMINDERS__POLL_INTERVAL_MS", "200".to_owned()),
    ];
    let app = spawn_app_with(backend, Options { env, ..Options::default() }).await;
    let owner = owner(&app).await;
    let clinician = staff(&app, &owner, "clinician", "a@practice.example").await;
    let desk = staff(&app, &owner, "front_desk", "desk@practice.example").await;
    let p1 = patient_record(&app, &desk, "Ada Lovelace").await;
    let ada = patient(&app, &desk, &p1, "ada.account@mail.example").await;
    let starts = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 5 * HOUR;
    let body = json!({ "clinician_id": clinician.session.user_id, "patient_id": p1, "starts_at_ms": starts, "ends_at_ms": starts + HOUR });
    let (status, booked) = desk.session.call(&app, Method::POST, "/api/v1/appointments", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let appointment = booked["id"].as_str().unwrap();
    let path = format!("/api/v1/appointments/{appointment}/reminders");

    // The patient registers their own key; a bad one is refused and changes nothing.
    let gpg = Gpg::with_key("Ada <ada.lovelace@mail.example>");
    let prefs = format!("/api/v1/patients/{p1}/reminder-preferences");
    let bad = json!({ "email_enabled": true, "pgp_public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnope\n" });
    let (status, body) = ada.session.call(&app, Method::PUT, &prefs, Some(bad)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")), "{body}");
    let (_, stored) = ada.session.get(&app, &prefs).await;
    assert!(stored["pgp_public_key"].is_null(), "{stored}");
    let good = json!({ "email_enabled": true, "lead_minutes": [60], "pgp_public_key": gpg.public_key() });
    let (status, body) = ada.session.call(&app, Method::PUT, &prefs, Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["effective_lead_minutes"], json!([60]));

    let (status, queued) = desk.session.call(&app, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["state"], "queued");
    let raw = smtp.wait_for(1).await.remove(0).raw;
    assert!(raw.contains("multipart/encrypted"), "{raw}");
    let plain = gpg.decrypt(&armored_block(&raw)).unwrap();
    assert!(plain.contains("Clinician: your clinician"), "a clinician not named yet is not named:\n{plain}");
    assert!(!plain.contains("a@practice.example"), "no staff email reaches a patient:\n{plain}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, list) = desk.session.get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let staff_sent = list.as_array().unwrap().iter().find(|r| r["origin"] == "staff").cloned().unwrap();
        if staff_sent["state"] == "sent" {
            assert_eq!(staff_sent["encrypted"], true);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = ada.session.call(&app, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a patient cannot send reminders");

    let entries = app.audit_entries();
    let desk_sent = entries.iter().any(|e| {
        e["action"] == "create"
            && e["resource_type"] == "reminder"
            && e["actor_user_id"] == desk.session.user_id.as_str()
            && e["patient_id"] == p1.as_str()
    });
    assert!(desk_sent, "the request is audited");
    assert!(entries.iter().any(|e| e["action"] == "export" && e["reason"] == "reminder_sent_encrypted"));
    assert!(!app.logs().iter().any(|l| l.contains("Lovelace") || l.contains("ada.lovelace")), "no PHI in logs");
}

crate::on_both_backends!(front_desk_sends_a_reminder_now_and_sees_it_delivered);

#[test]
fn only_a_live_openpgp_key_with_an_encryption_subkey_is_accepted() {
    use confidant::reminders::pgp_mime::{InvalidKey, PgpKey};
    let live = Gpg::with_key("Ada <ada@mail.example>").public_key();
    assert!(PgpKey::parse(&live).unwrap().is_usable());
    let expired = Gpg::with_expired_key("Ada <ada@mail.example>").public_key();
    assert_eq!(PgpKey::parse(&expired).unwrap_err(), InvalidKey::NoEncryptionKey);
    assert_eq!(PgpKey::parse("not a key").unwrap_err(), InvalidKey::NotAKey);
    let truncated = format!("{}\n-----END PGP PUBLIC KEY BLOCK-----\n", &live[..live.len() / 2]);
    assert!(PgpKey::parse(&truncated).is_err(), "a truncated key is refused");
}

#[test]
fn a_plain_smtp_url_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["smtp://127.0.0.1:25", "smtp://mail.example.org:587?tls=opportunistic"] {
        let mut command = server_command(dir.path());
        command.arg("serve").env("CONFIDANT_SMTP_URL", url);
        let (code, output) = run_to_exit(command);
        assert_eq!(code, Some(2), "{output}");
        assert!(output.contains("`smtp_url`") && output.contains("tls=required"), "{output}");
    }
}
