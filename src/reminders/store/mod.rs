//! The reminders' tables. Every SQL statement of `reminders` is here: the outbox ([`outbox`],
//! `reminders`), the staff notices it also carries ([`staff_notices`], `reminders` too) and the
//! patients' choices ([`preferences`], `reminder_preferences`).

pub mod outbox;
pub mod preferences;
pub mod staff_notices;
