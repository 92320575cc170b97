//! `AppState`: what the transports need from the node, built once in `server.rs` and shared by
//! reference: the settings, the hub the sockets' session actors join, the readiness probes, and
//! every domain service, and the audit trail's status.

use std::sync::Arc;

use actix::Addr;
use confidant_actors::hub::Hub;

use crate::audit::status::AuditStatus;
use crate::health::Readiness;
use crate::services::Services;
use crate::settings::Settings;

/// Shared state of one node.
#[derive(Clone)]
pub struct AppState {
    /// The checked configuration.
    pub settings: Arc<Settings>,
    /// Live sessions and fan-out (through Redis when several nodes run).
    pub hub: Addr<Hub>,
    /// Probes of the databases and Redis, for `/readyz`.
    pub readiness: Readiness,
    /// Every domain's operations.
    pub services: Services,
    /// The audit trail's state, for owners.
    pub audit_status: AuditStatus,
    /// The live-push records being made, shared by an account's sessions on this node.
    pub push_records: Arc<crate::ws::PushRecords>,
}
