//! `AppState`: what every request handler and actor needs from the node, built once in
//! [`crate::server`] and shared by reference.

use std::sync::Arc;

use actix::Addr;
use confidant_actors::Lifecycle;
use confidant_actors::audit::AuditWriter;
use confidant_actors::hub::Hub;

use crate::access::{Access, BreakGlass, CareTeam};
use crate::crypto::Keyring;
use crate::http::ReadinessMemory;
use crate::identity::Identity;
use crate::node::NodeId;
use crate::patients::Patients;
use crate::redis_link::RedisLink;
use crate::settings::Settings;
use crate::storage::Storage;

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
    /// Accounts, sign-in and sessions.
    pub identity: Identity,
    /// The one authorization decision.
    pub access: Access,
    /// Patient records.
    pub patients: Patients,
    /// Who treats whom.
    pub care_team: CareTeam,
    /// Emergency access grants.
    pub break_glass: BreakGlass,
    /// Intake and screening forms.
    pub intake: crate::intake::Intake,
    /// Messaging devices and their KeyPackages.
    pub devices: crate::messaging::Devices,
    /// End-to-end encrypted conversations.
    pub conversations: crate::messaging::Conversations,
    /// KeyPackage claims per account.
    pub claims: Arc<crate::messaging::ClaimLimiter>,
    /// Appointments.
    pub schedule: crate::schedule::Schedule,
    /// The reminder outbox.
    pub outbox: crate::reminders::Outbox,
    /// Patients' reminder preferences and OpenPGP keys.
    pub reminder_preferences: crate::reminders::PreferenceStore,
    /// Live sessions and fan-out (through Redis when several nodes run).
    pub hub: Addr<Hub>,
    /// Unauthenticated WebSocket connections per source address (capped).
    pub unauthenticated: Arc<crate::ws::Unauthenticated>,
    /// Redis, when several nodes share fan-out.
    pub redis: Option<RedisLink>,
    /// Components to stop on shutdown register here.
    pub lifecycle: Addr<Lifecycle>,
    /// The node's single audit writer.
    pub audit: Addr<AuditWriter>,
    /// The last readiness result, so a dependency going down is audited once, not per probe.
    pub readiness: Arc<ReadinessMemory>,
}
