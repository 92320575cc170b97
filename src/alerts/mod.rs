//! Alerts: what needs a person's attention, kept until someone acknowledges it. An alert is
//! raised by the service whose event causes it (an intake submission, a break-glass grant, a
//! reminder that failed for good) and stored in that event's transaction ([`service`], the
//! statements in [`store`]); it reaches its recipients' open sessions live through the hub
//! (every node), and each of their sessions again when it connects, until it is acknowledged.
//! An urgent one nobody acknowledges escalates to the on-call list ([`escalation`]), live and
//! by a staff notice email with no PHI in it through the reminder outbox. A sign-in attack
//! pattern alerts the practice's owners ([`security`]): about no patient, once per pattern,
//! source and window, and never escalated. A failed scheduled backup alerts them too
//! ([`backups`]). docs/PROTOCOL.md ("Alerts") and docs/API.md
//! describe what clients see.

mod backups;
pub mod escalation;
mod security;
pub mod service;
mod store;

use crate::access::{AccessError, Denial};
use crate::crypto::CryptoError;
use crate::storage::StorageError;

pub use service::{AlertService, NewAlert, PatientAlerts, Prepared, Recipients};

/// Why an alert operation did not succeed. No message carries what an alert says.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// No such alert (404).
    #[error("no such alert")]
    NotFound,
    /// Not allowed: not a recipient, or not a clinician who may document follow-up (403). The
    /// refusal was audited.
    #[error("not allowed")]
    NotAllowed(Denial),
    /// A follow-up note must have 1 to 2,000 characters (422); nothing was stored.
    #[error("a follow-up note must have 1 to 2,000 characters")]
    InvalidFollowUp,
    /// The follow-up was already documented (409).
    #[error("the follow-up was already documented")]
    AlreadyFollowedUp,
    /// The alert is about no patient (a sign-in attack), so it takes no follow-up note (409).
    #[error("this alert takes no follow-up note")]
    NoFollowUp,
    /// The audit trail could not record it, so nothing was read or changed (503).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// The staff notice of an escalation could not be queued (503, logged).
    #[error(transparent)]
    Outbox(#[from] crate::reminders::ReminderError),
    /// An account could not be read (503, logged).
    #[error(transparent)]
    Accounts(#[from] crate::identity::AuthError),
    /// A sealed value failed to open (503, logged).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed (503, logged).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<AccessError> for AlertError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => AlertError::NotAllowed(denial),
            AccessError::Storage(e) => AlertError::Storage(e),
            AccessError::AuditUnavailable => AlertError::AuditUnavailable,
        }
    }
}

impl From<sqlx::Error> for AlertError {
    fn from(error: sqlx::Error) -> Self {
        AlertError::Storage(StorageError::Query(error))
    }
}
