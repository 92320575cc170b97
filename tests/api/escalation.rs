//! Escalation of urgent alerts nobody acknowledges: in-process services on a real store (both
//! backends) with a manual clock, so deadlines and working hours need no sleeping, and staff
//! notices sent through a real SMTP server (aiosmtpd on loopback, STARTTLS required).

use std::sync::Arc;

use actix::Addr;
use confidant::access::{Principal, Requester};
use confidant::alerts::escalation::escalate_due;
use confidant::alerts::{NewAlert, Recipients};
use confidant::auditor::Origin;
use confidant::identity::{Email, NewAccount};
use confidant::patients::PatientRecord;
use confidant::phi::PhiText;
use confidant::reminders::ReminderState;
use confidant::reminders::scheduler::{ReminderScheduler, RunDue};
use confidant::server::start_reminders;
use confidant::services::Services;
use confidant::settings::{self, Settings};
use confidant::storage::Storage;
use confidant_actors::audit::Role;
use confidant_actors::clock::ManualClock;
use confidant_actors::ids::{PatientId, SessionId, UserId};
use confidant_protocol::AlertKind;
use uuid::Uuid;

use crate::helpers::{Backend, InProcess, TestDatabase, in_process};
use crate::smtp::SmtpServer;

const MINUTE: i64 = 60_000;
/// Saturday 2026-12-05 10:00 UTC: outside the default working hours (Monday to Friday).
const SATURDAY_10: i64 = 1_796_464_800_000;
/// Monday 2026-12-07 10:00 UTC: inside them.
const MONDAY_10: i64 = 1_796_637_600_000;
const ON_CALL: &str = "oncall@practice.example";

struct Fixture {
    clock: Arc<ManualClock>,
    services: Services,
    other: Services,
    scheduler: Addr<ReminderScheduler>,
    storage: Storage,
    audit_storage: Storage,
    clinician: UserId,
    on_call: UserId,
    patient: PatientId,
    _dir: tempfile::TempDir,
    _dbs: Option<(TestDatabase, TestDatabase)>,
    _settings: Settings,
}

async fn fixture(backend: Backend, smtp: &SmtpServer, at_ms: i64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let vars = vec![
        ("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("CONFIDANT_SMTP_URL".to_owned(), smtp.url(false)),
        ("CONFIDANT_REMINDERS__SMTP_CA_FILE".to_owned(), smtp.cert.display().to_string()),
        ("CONFIDANT_REMINDERS__SMTP_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        ("CONFIDANT_REMINDERS__POLL_INTERVAL_MS".to_owned(), "3600000".to_owned()),
        ("CONFIDANT_ALERTS__ON_CALL".to_owned(), format!("[\"{ON_CALL}\"]")),
    ];
    let settings: Settings = settings::load_from(None, vars).unwrap();
    let InProcess { audit_storage, keyring, auditor, pusher, databases, .. } =
        in_process(backend, &settings, "escalation").await;
    let clock = Arc::new(ManualClock::at(at_ms));
    let storage = keyring.storage().clone();
    // A second node's services over the same store, to race the first for each step.
    let other = Services::new(&settings, keyring.clone(), auditor.clone(), pusher.clone(), clock.clone());
    let services = Services::new(&settings, keyring, auditor, pusher, clock.clone());
    let account =
        |role, email: &str| NewAccount { role, email: Email::parse(email).unwrap(), patient_id: None, name: None };
    let accounts = &services.identity.accounts;
    let clinician =
        accounts.create_active(&account(Role::Clinician, "dr.wolfe@practice.example"), "x", at_ms).await.unwrap();
    let on_call = accounts.create_active(&account(Role::PracticeOwner, ON_CALL), "x", at_ms).await.unwrap();
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
        other,
        scheduler,
        storage,
        audit_storage,
        clinician,
        on_call,
        patient,
        _dir: dir,
        _dbs: databases,
        _settings: settings,
    }
}

impl Fixture {
    /// Raises a `phq9_item9` alert for the clinician, as a submission does.
    async fn raise_urgent(&self) -> Uuid {
        let alert = NewAlert {
            clinician: Some(self.clinician),
            assignment: Some(Uuid::new_v4()),
            ..NewAlert::new(AlertKind::Phq9Item9, self.patient, Recipients::User(self.clinician))
        };
        let alerts = &self.services.alerts;
        let prepared = alerts.prepare(&[alert]).await.unwrap();
        let mut tx = alerts.begin().await.unwrap();
        prepared.store_in(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let id = prepared.ids()[0];
        alerts.publish(prepared).await;
        id
    }

    /// One escalation pass on each of two nodes at once: how many steps they took together.
    async fn escalate(&self) -> usize {
        let (a, b) = tokio::join!(escalate_due(&self.services.alerts), escalate_due(&self.other.alerts));
        a.unwrap() + b.unwrap()
    }

    async fn send_mail(&self) -> usize {
        self.scheduler.send(RunDue).await.unwrap().unwrap().sent
    }

    async fn recipients(&self, alert: Uuid) -> Vec<String> {
        sqlx::query_scalar("SELECT user_id FROM alert_recipients WHERE alert_id = $1 ORDER BY step")
            .bind(alert.to_string())
            .fetch_all(self.storage.pool_for_tests())
            .await
            .unwrap()
    }

    async fn audited(&self, reason: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE resource_type = 'alert' AND reason = $1")
            .bind(reason)
            .fetch_one(self.audit_storage.pool_for_tests())
            .await
            .unwrap()
    }

    fn clinician_asking(&self) -> Requester {
        let principal = Principal {
            user_id: self.clinician,
            role: Role::Clinician,
            session_id: SessionId::generate(),
            patient_id: None,
            mfa: true,
        };
        Requester::new(principal, Origin { request_id: None, source_ip: None, session_id: None })
    }
}

async fn outside_working_hours_an_urgent_alert_escalates_at_once_once_per_step_by_an_email_without_phi(
    backend: Backend,
) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp, SATURDAY_10).await;
    let alert = f.raise_urgent().await;

    assert_eq!(f.escalate().await, 1, "outside working hours: at once, by one of the two nodes");
    assert_eq!(f.escalate().await, 0, "a step is taken once");
    assert_eq!(f.recipients(alert).await, [f.clinician.to_string(), f.on_call.to_string()]);
    assert_eq!(f.send_mail().await, 1);
    let received = smtp.wait_for(1).await;
    assert_eq!(received[0].meta["rcpt_tos"][0], ON_CALL);
    let raw = &received[0].raw;
    assert!(raw.contains("An urgent item is waiting in Confidant"), "{raw}");
    assert!(raw.contains("https://127.0.0.1:8443/portal/"), "{raw}");
    let (patient, id) = (f.patient.to_string(), alert.to_string());
    for phi in ["Ada", "Lovelace", "ada@mail", "PHQ", "phq", "self-harm", "suicid", "wolfe", &patient, &id] {
        assert!(!raw.contains(phi), "the staff notice contains {phi:?}:\n{raw}");
    }
    assert_eq!(f.send_mail().await, 0, "sent once");

    // Nobody acknowledged: the next step after repeat_after_secs, once.
    f.clock.advance_ms(14 * MINUTE);
    assert_eq!(f.escalate().await, 0);
    f.clock.advance_ms(MINUTE);
    assert_eq!(f.escalate().await, 1);
    assert_eq!(f.send_mail().await, 1);
    assert_eq!(smtp.wait_for(2).await.len(), 2);

    // The third step's notice is queued; an acknowledgement before it leaves withdraws it, and
    // no step follows.
    f.clock.advance_ms(15 * MINUTE);
    assert_eq!(f.escalate().await, 1);
    f.services.alerts.acknowledge(&f.clinician_asking(), alert, None).await.unwrap();
    assert_eq!(f.send_mail().await, 0);
    let notices = f.services.outbox.staff_notices_of(alert).await.unwrap();
    assert_eq!(notices.len(), 3);
    assert_eq!(notices[2].state, ReminderState::Withdrawn);
    f.clock.advance_ms(60 * MINUTE);
    assert_eq!(f.escalate().await, 0);
    assert_eq!(f.send_mail().await, 0);
    assert_eq!(smtp.received().len(), 2);
    assert_eq!(f.audited("alert_escalated").await, 3);
}

async fn inside_working_hours_an_urgent_alert_waits_fifteen_minutes_and_stops_at_three_steps(backend: Backend) {
    let smtp = SmtpServer::start("starttls");
    let f = fixture(backend, &smtp, MONDAY_10).await;
    let alert = f.raise_urgent().await;
    assert_eq!(f.escalate().await, 0, "the clinician has 15 minutes in working hours");
    f.clock.advance_ms(14 * MINUTE);
    assert_eq!(f.escalate().await, 0);
    f.clock.advance_ms(MINUTE);
    assert_eq!(f.escalate().await, 1);
    for _ in 0..3 {
        f.clock.advance_ms(15 * MINUTE);
        f.escalate().await;
    }
    let step: i64 = sqlx::query_scalar("SELECT escalation_step FROM alerts WHERE alert_id = $1")
        .bind(alert.to_string())
        .fetch_one(f.storage.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(step, 3, "max_escalations");
    assert_eq!(f.send_mail().await, 3, "one notice per step");
    // A non-urgent alert never escalates.
    let info = NewAlert::new(AlertKind::IntakeSubmitted, f.patient, Recipients::User(f.clinician));
    let prepared = f.services.alerts.prepare(&[info]).await.unwrap();
    let mut tx = f.services.alerts.begin().await.unwrap();
    prepared.store_in(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    f.clock.advance_ms(600 * MINUTE);
    assert_eq!(f.escalate().await, 0);
}

crate::on_both_backends_actix!(
    outside_working_hours_an_urgent_alert_escalates_at_once_once_per_step_by_an_email_without_phi,
    inside_working_hours_an_urgent_alert_waits_fifteen_minutes_and_stops_at_three_steps,
);
