//! The reminders' tables. Every SQL statement of `reminders` is here: the outbox ([`outbox`],
//! `reminders`) and the patients' choices ([`preferences`], `reminder_preferences`).

pub mod outbox;
pub mod preferences;
