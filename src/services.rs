//! [`Services`]: every domain's service, built once per node over the main store's keyring,
//! the auditor and the pusher, with the clock (the system clock, or a test's manual one).
//! The transports (`http/`, `ws/`) and the background actors reach the domains through these.

use std::sync::Arc;

use confidant_actors::clock::Clock;

use crate::access::{Access, BreakGlass, CareTeam, Gate};
use crate::auditor::Auditor;
use crate::crypto::Keyring;
use crate::identity::Identity;
use crate::identity::password::PasswordHasher;
use crate::patients::CareAccess;
use crate::patients::{PatientService, Patients};
use crate::push::Pusher;
use crate::settings::Settings;
use crate::users::Users;

/// The request-serving layers over the main store, built once per node.
#[derive(Clone)]
pub struct Services {
    /// Builds and records audit events.
    pub auditor: Auditor,
    /// Live pushes to open sessions.
    pub pusher: Pusher,
    /// Accounts, sign-in and sessions.
    pub identity: Identity,
    /// Account administration: invite, list, disable.
    pub users: Users,
    /// The authorization decision.
    pub access: Access,
    /// The decision with its audit records: every service passes it.
    pub gate: Gate,
    /// Patient records.
    pub patients: Patients,
    /// Patient record operations, authorized and audited.
    pub patient_service: PatientService,
    /// Care teams.
    pub care_team: CareTeam,
    /// Break-glass grants.
    pub break_glass: BreakGlass,
    /// Care-team changes and break-glass grants, audited.
    pub care_access: CareAccess,
    /// Appointments.
    pub schedule: crate::schedule::Schedule,
    /// Booking, changes and subscriptions, authorized, audited and pushed.
    pub schedule_service: crate::schedule::ScheduleService,
    /// Intake and screening forms.
    pub intake: crate::intake::Intake,
    /// The intake operations (assign, read, open, autosave, submit and its alerts).
    pub intake_service: crate::intake::IntakeService,
    /// Messaging devices and their KeyPackages.
    pub devices: crate::messaging::Devices,
    /// End-to-end encrypted conversations.
    pub conversations: crate::messaging::Conversations,
    /// Encrypted attachments of conversations (ciphertext only).
    pub attachments: crate::messaging::Attachments,
    /// Messaging's operations, for both transports.
    pub messaging: crate::messaging::MessagingService,
    /// Alerts: raised with their events, delivered, acknowledged, followed up and escalated.
    pub alerts: crate::alerts::AlertService,
    /// The reminder outbox.
    pub outbox: crate::reminders::Outbox,
    /// Patients' reminder preferences and OpenPGP keys.
    pub reminder_preferences: crate::reminders::PreferenceStore,
    /// Reminders sent on request, their status, and preferences, authorized and audited.
    pub reminder_service: crate::reminders::ReminderService,
    /// Answers of writes kept for their `Idempotency-Key`, replayed to retries.
    pub kept_answers: crate::idempotency::KeptAnswers,
    /// Clinical notes: templates, drafts, signatures, addenda, supervision.
    pub notes: crate::notes::NoteService,
}

impl Services {
    /// Builds them over `keyring`'s store, recording through `auditor` and pushing through
    /// `pusher`, with `clock`.
    pub fn new(
        settings: &Settings,
        keyring: Arc<Keyring>,
        auditor: Auditor,
        pusher: Pusher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let storage = keyring.storage().clone();
        let hasher = PasswordHasher::new(settings.identity.password_hashing_concurrency);
        let identity = Identity::new(keyring.clone(), hasher, clock.clone(), &settings.identity, auditor.clone());
        let care_team = CareTeam::new(storage.clone());
        let break_glass = BreakGlass::new(storage.clone(), keyring.clone());
        let access = Access::new(care_team.clone(), break_glass.clone(), clock.clone(), settings.identity.patient_mfa);
        let devices = crate::messaging::Devices::new(storage.clone());
        let gate = Gate::new(access.clone(), auditor.clone());
        let alerts = crate::alerts::AlertService::new(
            keyring.clone(),
            gate.clone(),
            pusher.clone(),
            identity.accounts.clone(),
            clock.clone(),
            &settings.alerts,
        );
        // Sign-in attack patterns alert the owners; identity knows only the port.
        let identity = identity.with_alarm(Arc::new(alerts.clone()));
        let patients = Patients::new(storage.clone(), keyring.clone());
        let conversations =
            crate::messaging::Conversations::new(storage.clone(), devices.clone(), auditor.writer().clone());
        let users = Users::new(
            identity.clone(),
            gate.clone(),
            care_team.clone(),
            patients.clone(),
            devices.clone(),
            conversations.clone(),
            pusher.clone(),
        );
        let attachments = crate::messaging::Attachments::new(storage.clone(), settings.messaging.attachment_max_bytes);
        let messaging = crate::messaging::MessagingService::new(
            devices.clone(),
            conversations.clone(),
            attachments.clone(),
            crate::messaging::ConversationPolicy::new(identity.accounts.clone(), access.clone()),
            patients.clone(),
            gate.clone(),
            pusher.clone(),
            clock.clone(),
        );
        let intake = crate::intake::Intake::new(keyring.clone());
        let intake_service = crate::intake::IntakeService::new(
            intake.clone(),
            patients.clone(),
            gate.clone(),
            pusher.clone(),
            alerts.clone(),
            clock.clone(),
        );
        let care_access = CareAccess::new(
            gate.clone(),
            care_team.clone(),
            break_glass.clone(),
            patients.clone(),
            &identity,
            alerts.clone(),
            settings.identity.break_glass_secs,
        );
        let patient_service = PatientService::new(gate.clone(), patients.clone(), care_access.clone());
        let schedule = crate::schedule::Schedule::new(storage.clone(), settings.reminders.lead_minutes.clone());
        let schedule_service = crate::schedule::ScheduleService::new(
            gate.clone(),
            schedule.clone(),
            identity.accounts.clone(),
            patients.clone(),
            pusher.clone(),
            clock.clone(),
        );
        let outbox = crate::reminders::Outbox::new(storage.clone());
        let reminder_preferences =
            crate::reminders::PreferenceStore::new(keyring.clone(), settings.reminders.lead_minutes.clone());
        let reminder_service = crate::reminders::ReminderService::new(
            gate.clone(),
            schedule_service.clone(),
            outbox.clone(),
            reminder_preferences.clone(),
            patients.clone(),
            clock.clone(),
        );
        let notes = crate::notes::NoteService::new(
            crate::notes::Notes::new(keyring.clone()),
            intake.clone(),
            schedule.clone(),
            identity.clone(),
            gate.clone(),
            settings.notes.clone(),
            clock.clone(),
        );
        let kept_answers = crate::idempotency::KeptAnswers::new(keyring, auditor.clone(), clock);
        Self {
            notes,
            kept_answers,
            gate,
            identity,
            users,
            access,
            patients,
            patient_service,
            care_team,
            break_glass,
            care_access,
            schedule,
            schedule_service,
            outbox,
            reminder_preferences,
            reminder_service,
            devices,
            conversations,
            attachments,
            messaging,
            intake,
            intake_service,
            alerts,
            auditor,
            pusher,
        }
    }
}
