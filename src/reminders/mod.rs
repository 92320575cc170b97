//! Appointment reminders by email that leak no PHI. The schedule queues them in the durable
//! outbox ([`outbox`]) in the same transaction as the change that causes them, following each
//! patient's [`preferences`]; the [`scheduler::ReminderScheduler`] of each node claims due ones
//! with a database lease, writes them ([`content`], [`pgp_mime`]) and hands them to the
//! [`mailer::Mailer`], which speaks SMTP over required TLS. The same outbox carries staff
//! notices ([`outbox::queue_staff_notice`]): alert escalation tells a staff account that an
//! urgent item is waiting, and nothing more; and the audit trail's email witness
//! ([`outbox::queue_audit_heads`]): each node's signed heads, to every owner, each period. [`service`] holds what staff and patients ask of
//! reminders. docs/OPERATIONS.md states the delivery guarantees.

pub mod content;
pub mod mailer;
pub mod outbox;
pub mod pgp_mime;
pub mod preferences;
pub mod scheduler;
pub mod service;
mod store;

use crate::crypto::CryptoError;
use crate::storage::StorageError;

pub use outbox::{
    AuditHeadEmailView, AuditHeadReport, Outbox, ReminderState, ReminderView, StaffNotice, StaffNoticeView,
};
pub use preferences::{PreferenceStore, Preferences};
pub use service::{PreferencesChange, ReminderService, ReminderServiceError};

/// Why a reminder operation failed. Messages name causes, never recipients or contents.
#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    /// No such appointment (404).
    #[error("no such appointment")]
    NotFound,
    /// The appointment is cancelled or over: nothing to remind of (409).
    #[error("the appointment is cancelled or already started")]
    NotRemindable,
    /// The patient turned email reminders off (409).
    #[error("the patient turned email reminders off")]
    Disabled,
    /// A setting cannot be used (start-up, exit 2); names the key.
    #[error("invalid configuration: `{0}` cannot be used")]
    Configuration(&'static str),
    /// The email could not be put together (our bug).
    #[error("could not build the email")]
    Build,
    /// OpenPGP encryption failed.
    #[error("could not encrypt the reminder")]
    Encryption,
    /// The audit trail could not record it: nothing was changed (the next pass retries).
    #[error("the audit trail cannot record it")]
    AuditUnavailable,
    /// A sealed value failed to open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for ReminderError {
    fn from(error: sqlx::Error) -> Self {
        ReminderError::Storage(StorageError::Query(error))
    }
}
