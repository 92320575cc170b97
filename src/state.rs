//! `AppState`: what every request handler and actor needs from the node, built once in
//! [`crate::server`] and shared by reference: the node's handles and every domain service.

use std::sync::Arc;

use actix::Addr;
use confidant_actors::Lifecycle;
use confidant_actors::hub::Hub;

use crate::access::{Access, BreakGlass, CareTeam, Gate};
use crate::auditor::Auditor;
use crate::crypto::Keyring;
use crate::health::Readiness;
use crate::identity::Identity;
use crate::node::NodeId;
use crate::patients::CareAccess;
use crate::patients::{PatientService, Patients};
use crate::push::Pusher;
use crate::redis_link::RedisLink;
use crate::services::Services;
use crate::settings::Settings;
use crate::storage::Storage;
use crate::users::Users;

/// Shared state of one node.
#[derive(Clone)]
pub struct AppState {
    /// The checked configuration.
    pub settings: Arc<Settings>,
    /// This node's id.
    pub node_id: NodeId,
    /// The main store.
    pub storage: Storage,
    /// The audit store (a separate database).
    pub audit_storage: Storage,
    /// Field encryption keys of the main store.
    pub keyring: Arc<Keyring>,
    /// Builds and records audit events (the node's one audit writer behind it).
    pub auditor: Auditor,
    /// Live pushes to open sessions.
    pub pusher: Pusher,
    /// Accounts, sign-in and sessions.
    pub identity: Identity,
    /// Account administration: invite, list, disable.
    pub users: Users,
    /// The one authorization decision.
    pub access: Access,
    /// The decision with its audit records.
    pub gate: Gate,
    /// Patient records.
    pub patients: Patients,
    /// Patient record operations, authorized and audited.
    pub patient_service: PatientService,
    /// Who treats whom.
    pub care_team: CareTeam,
    /// Emergency access grants.
    pub break_glass: BreakGlass,
    /// Care-team changes and break-glass grants, audited.
    pub care_access: CareAccess,
    /// Intake and screening forms.
    pub intake: crate::intake::Intake,
    /// The intake operations.
    pub intake_service: crate::intake::IntakeService,
    /// Messaging devices and their KeyPackages.
    pub devices: crate::messaging::Devices,
    /// End-to-end encrypted conversations.
    pub conversations: crate::messaging::Conversations,
    /// Messaging's operations, for both transports.
    pub messaging: crate::messaging::MessagingService,
    /// Appointments.
    pub schedule: crate::schedule::Schedule,
    /// Booking, changes and subscriptions, authorized, audited and pushed.
    pub schedule_service: crate::schedule::ScheduleService,
    /// The reminder outbox.
    pub outbox: crate::reminders::Outbox,
    /// Patients' reminder preferences and OpenPGP keys.
    pub reminder_preferences: crate::reminders::PreferenceStore,
    /// Reminders sent on request, their status, and preferences, authorized and audited.
    pub reminder_service: crate::reminders::ReminderService,
    /// Live sessions and fan-out (through Redis when several nodes run).
    pub hub: Addr<Hub>,
    /// Redis, when several nodes share fan-out.
    pub redis: Option<RedisLink>,
    /// Components to stop on shutdown register here.
    pub lifecycle: Addr<Lifecycle>,
    /// Probes of the databases and Redis, for `/readyz`.
    pub readiness: Readiness,
}

/// The node's own handles, besides its services.
pub struct Node {
    /// The checked configuration.
    pub settings: Arc<Settings>,
    /// This node's id.
    pub node_id: NodeId,
    /// The main store.
    pub storage: Storage,
    /// The audit store.
    pub audit_storage: Storage,
    /// Field encryption keys of the main store.
    pub keyring: Arc<Keyring>,
    /// Live sessions and fan-out.
    pub hub: Addr<Hub>,
    /// Redis, when configured.
    pub redis: Option<RedisLink>,
    /// The lifecycle actor.
    pub lifecycle: Addr<Lifecycle>,
    /// Probes of the databases and Redis.
    pub readiness: Readiness,
}

impl AppState {
    /// The state of `node` serving `services`.
    pub fn new(node: Node, services: Services) -> Self {
        let Node { settings, node_id, storage, audit_storage, keyring, hub, redis, lifecycle, readiness } = node;
        let Services {
            auditor,
            pusher,
            identity,
            users,
            access,
            gate,
            patients,
            patient_service,
            care_team,
            break_glass,
            care_access,
            schedule,
            schedule_service,
            intake,
            intake_service,
            devices,
            conversations,
            messaging,
            outbox,
            reminder_preferences,
            reminder_service,
        } = services;
        Self {
            settings,
            node_id,
            storage,
            audit_storage,
            keyring,
            auditor,
            pusher,
            identity,
            users,
            access,
            gate,
            patients,
            patient_service,
            care_team,
            break_glass,
            care_access,
            intake,
            intake_service,
            devices,
            conversations,
            messaging,
            schedule,
            schedule_service,
            outbox,
            reminder_preferences,
            reminder_service,
            hub,
            redis,
            lifecycle,
            readiness,
        }
    }
}
