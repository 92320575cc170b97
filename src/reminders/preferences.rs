//! `reminder_preferences`: per patient, whether email reminders are on, their lead times, and
//! their OpenPGP key (sealed: AAD binds table, column and patient id). The schedule reads the
//! plain columns inside its own transaction; only sending opens the key. The statements are in
//! `store/preferences.rs`.

use std::sync::Arc;

use confidant_actors::ids::{PatientId, UserId};

use super::ReminderError;
use super::pgp_mime::PgpKey;
use super::store::preferences::{self as rows, StoredPreferences};
use crate::crypto::tables::REMINDER_PREFERENCES;
use crate::crypto::{CryptoError, Field, Keyring};

/// At most this many lead times per patient.
pub const MAX_LEAD_TIMES: usize = 5;
/// The longest lead time, in minutes (30 days).
pub const MAX_LEAD_MINUTES: u32 = 43_200;

/// A patient's choices.
#[derive(Debug, Clone)]
pub struct Preferences {
    /// Whether reminders go by email at all.
    pub email_enabled: bool,
    /// Minutes before the start, each reminder one of them; `None`: the practice's defaults.
    pub lead_minutes: Option<Vec<u32>>,
    /// The key reminders are encrypted to; `None`: reminders carry no details.
    pub pgp_key: Option<PgpKey>,
}

/// The plain columns, as the schedule needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Whether reminders go by email at all.
    pub email_enabled: bool,
    /// Minutes before the start.
    pub lead_minutes: Vec<u32>,
}

/// Checks lead times: at most [`MAX_LEAD_TIMES`], each 1 to [`MAX_LEAD_MINUTES`]; sorted and
/// deduplicated.
pub fn checked_lead_minutes(mut minutes: Vec<u32>) -> Option<Vec<u32>> {
    minutes.sort_unstable_by(|a, b| b.cmp(a));
    minutes.dedup();
    let ok = minutes.len() <= MAX_LEAD_TIMES && minutes.iter().all(|&m| (1..=MAX_LEAD_MINUTES).contains(&m));
    ok.then_some(minutes)
}

/// The preferences table, through the keyring.
#[derive(Clone)]
pub struct PreferenceStore {
    keyring: Arc<Keyring>,
    defaults: Arc<Vec<u32>>,
}

impl PreferenceStore {
    /// Preferences in `keyring`'s store; patients who chose no lead times get `defaults`.
    pub fn new(keyring: Arc<Keyring>, defaults: Vec<u32>) -> Self {
        Self { keyring, defaults: Arc::new(defaults) }
    }

    /// The practice's default lead times.
    pub fn default_lead_minutes(&self) -> &[u32] {
        &self.defaults
    }

    /// A patient's preferences; the defaults (on, practice lead times, no key) when unset.
    pub async fn get(&self, patient: PatientId) -> Result<Preferences, ReminderError> {
        let Some(stored) = rows::stored(self.keyring.storage(), patient).await? else {
            return Ok(Preferences { email_enabled: true, lead_minutes: None, pgp_key: None });
        };
        let pgp_key = match stored.pgp_key {
            Some(sealed) => {
                let row_id = patient.to_string();
                let field = Field { table: REMINDER_PREFERENCES.name, column: "pgp_public_key", row_id: &row_id };
                let plain = self.keyring.open_value(field, &sealed).await?;
                let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Integrity)?;
                Some(PgpKey::parse(text).map_err(|_| CryptoError::Integrity)?)
            }
            None => None,
        };
        Ok(Preferences { email_enabled: stored.email_enabled, lead_minutes: stored.lead_minutes, pgp_key })
    }

    /// Replaces a patient's preferences.
    pub async fn put(
        &self,
        patient: PatientId,
        preferences: &Preferences,
        by: UserId,
        now_ms: i64,
    ) -> Result<(), ReminderError> {
        let row_id = patient.to_string();
        let sealer = self.keyring.sealer();
        let sealed = preferences.pgp_key.as_ref().map(|key| {
            let field = Field { table: REMINDER_PREFERENCES.name, column: "pgp_public_key", row_id: &row_id };
            sealer.seal(field, key.armored().as_bytes())
        });
        let stored = StoredPreferences {
            email_enabled: preferences.email_enabled,
            lead_minutes: preferences.lead_minutes.clone(),
            pgp_key: sealed,
        };
        Ok(rows::put(self.keyring.storage(), patient, &stored, sealer.key_id(), by, now_ms).await?)
    }
}

/// The plan for `patient`, read inside the caller's transaction (no decryption needed).
pub async fn plan_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    patient: PatientId,
    defaults: &[u32],
) -> Result<Plan, ReminderError> {
    let Some((email_enabled, lead_minutes)) = rows::plan_row(tx, patient).await? else {
        return Ok(Plan { email_enabled: true, lead_minutes: defaults.to_vec() });
    };
    Ok(Plan { email_enabled, lead_minutes: lead_minutes.unwrap_or_else(|| defaults.to_vec()) })
}
