//! The reminders' tables. Every SQL statement of `reminders` is here: the outbox ([`outbox`],
//! `reminders`), the staff notices and audit head emails it also carries ([`staff_notices`],
//! [`audit_heads`] with `audit_head_reports`) and the patients' choices ([`preferences`],
//! `reminder_preferences`).

pub mod audit_heads;
pub mod outbox;
pub mod preferences;
pub mod staff_notices;
