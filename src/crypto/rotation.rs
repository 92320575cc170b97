//! Key rotation without downtime. `confidant keys rotate` makes a new active field key; every
//! node picks it up on its next refresh and seals new values with it, and the [`Reencryptor`]
//! actor of each node moves old values onto it in small batches while the node keeps serving.
//! A key that protects nothing can then be retired: its wrapped material is deleted. Rotating
//! the master key rewraps the data keys and touches no value. The statements are in
//! `store/data_keys.rs` and `store/sealed.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, Outcome};
use confidant_actors::clock::now_ms;
use confidant_actors::ids::PatientId;
use confidant_actors::lifecycle::Shutdown;

use super::envelope::Field;
use super::keyring::{KeyState, Keyring, Purpose, StoredKey, stored_keys, unwrap_stored};
use super::master::MasterKey;
use super::store::data_keys::{retire_key, rotate_field_key, store_rewrapped};
use super::store::sealed::{SealedRow, count_under_other_keys, protected_by_key, rewrite, under_other_keys};
use super::tables::{self, EncryptedTable, Protected};
use super::{CryptoError, KeyError};
use crate::auditor::{Auditor, reason};
use crate::settings::KeySettings;
use crate::storage::Storage;

/// A data key and what it protects, for `confidant keys status`.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    /// The key as stored.
    pub key: StoredKey,
    /// What it protects (field keys; index keys protect no values).
    pub protected: Protected,
}

/// Every data key with its state and how many values it still protects.
pub async fn status(storage: &Storage) -> Result<Vec<KeyStatus>, KeyError> {
    let protected = protected_by_key(storage).await?;
    Ok(stored_keys(storage)
        .await?
        .into_iter()
        .map(|key| KeyStatus { protected: protected.get(&key.key_id).copied().unwrap_or_default(), key })
        .collect())
}

/// Makes a new active field key named `audit_id` in the audit trail; the previous one becomes
/// decrypt-only. Returns the new key.
pub async fn rotate(storage: &Storage, master: &MasterKey, audit_id: uuid::Uuid) -> Result<StoredKey, KeyError> {
    rotate_field_key(storage, master, audit_id).await
}

/// The key `key_id` if it may be retired now: a decrypt-only field key that protects nothing
/// and stopped being active at least `grace` ago (every node has reloaded the key list since).
pub async fn retirable(storage: &Storage, key_id: u32, grace: Duration) -> Result<StoredKey, KeyError> {
    let not_retirable = |why: String| KeyError::NotRetirable { key_id, why };
    let key =
        stored_keys(storage).await?.into_iter().find(|k| k.key_id == key_id).ok_or(KeyError::NoSuchKey { key_id })?;
    match (key.purpose, key.state) {
        (Purpose::Index, _) => return Err(not_retirable("it is the blind-index key".into())),
        (_, KeyState::Active) => return Err(not_retirable("it is the active key: rotate first".into())),
        (_, KeyState::Retired) => return Err(not_retirable("it is retired already".into())),
        (Purpose::Field, KeyState::DecryptOnly) => {}
    }
    let since = now_ms() - key.deactivated_at_ms.unwrap_or(0);
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    if since < grace_ms {
        return Err(not_retirable(format!(
            "it stopped being active {}s ago; wait {}s more (keys.retire_grace_secs) so every node has reloaded the key list",
            since / 1000,
            (grace_ms - since + 999) / 1000
        )));
    }
    let protected = protected_by_key(storage).await?.get(&key_id).copied().unwrap_or_default();
    if protected.rows > 0 {
        return Err(not_retirable(format!(
            "it still protects {} values in {} rows; re-encryption has not finished",
            protected.values, protected.rows
        )));
    }
    Ok(key)
}

/// Retires a key [`retirable`] allowed: deletes its wrapped material, so nothing it ever
/// sealed can be opened again.
pub async fn retire(storage: &Storage, key: StoredKey) -> Result<StoredKey, KeyError> {
    if !retire_key(storage, key.key_id, now_ms()).await? {
        return Err(KeyError::NotRetirable { key_id: key.key_id, why: "its state changed meanwhile".into() });
    }
    Ok(StoredKey { state: KeyState::Retired, wrapped: None, ..key })
}

/// Rewraps every live data key from `old` to `new` in one transaction. Values are untouched.
pub async fn rewrap(storage: &Storage, old: &MasterKey, new: &MasterKey) -> Result<usize, KeyError> {
    let mut rewrapped = Vec::new();
    for key in stored_keys(storage).await? {
        let Some(wrapped) = &key.wrapped else { continue };
        let material = unwrap_stored(old, &key, wrapped)?;
        rewrapped.push((key.key_id, new.wrap(key.key_id, key.purpose, &material)));
    }
    store_rewrapped(storage, &rewrapped, new.fingerprint()).await?;
    Ok(rewrapped.len())
}

/// What one re-encryption batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Rows read (all under an older key).
    pub selected: usize,
    /// Rows now under the active key.
    pub rewritten: usize,
    /// Rows that failed their integrity check and were left as they are.
    pub failed: usize,
}

/// Where re-encryption of one table stands.
struct Cursor<'t> {
    table: &'t EncryptedTable,
    after: String,
}

/// Re-encrypts up to `limit` rows after the cursor that are under an older key. Each row's
/// rewrite is audited (durably, before it is written: fail closed) and conditional on the row
/// still being under the key it was read with, so concurrent updates and other nodes doing the
/// same work are safe.
async fn reencrypt_batch(
    keyring: &Keyring,
    auditor: &Auditor,
    cursor: &mut Cursor<'_>,
    limit: u32,
) -> Result<Batch, KeyError> {
    let table = cursor.table;
    let sealer = keyring.sealer();
    let rows = under_other_keys(keyring.storage(), table, sealer.key_id(), &cursor.after, limit).await?;
    let mut batch = Batch { selected: rows.len(), ..Batch::default() };
    let mut rewrites = Vec::with_capacity(rows.len());
    for row in rows {
        cursor.after.clone_from(&row.row_id);
        let mut values = Vec::with_capacity(table.columns.len());
        let mut intact = true;
        for (column, stored) in table.columns.iter().zip(&row.values) {
            let Some(stored) = stored else {
                values.push(None);
                continue;
            };
            let field = Field { table: table.name, column, row_id: &row.row_id };
            match keyring.open_value(field, stored).await {
                Ok(plain) => values.push(Some(sealer.seal(field, &plain))),
                Err(CryptoError::Integrity | CryptoError::UnknownKey { .. }) => {
                    intact = false;
                    break;
                }
                Err(other) => return Err(other.into()),
            }
        }
        if intact {
            rewrites.push(SealedRow { values, ..row });
        } else {
            batch.failed += 1;
        }
    }
    if rewrites.is_empty() {
        return Ok(batch);
    }

    let events = rewrites.iter().map(|row| {
        let mut event = auditor
            .system(Action::Update, Outcome::Success)
            .on(table.resource, row.row_id.parse().ok())
            .because(reason("reencrypted_under_new_key"));
        if let Some(Ok(patient)) = row.patient.as_deref().map(str::parse) {
            event = event.for_patient(PatientId::from_uuid(patient));
        }
        event
    });
    auditor.record_all(events.collect()).await.map_err(|_| KeyError::AuditUnavailable)?;
    batch.rewritten = rewrite(keyring.storage(), table, sealer.key_id(), rewrites).await?;
    Ok(batch)
}

/// Re-encrypts everything under older keys, table by table, in batches; stops early when
/// `stop` is set. Returns the totals.
pub async fn reencrypt_all(
    keyring: &Keyring,
    auditor: &Auditor,
    settings: &KeySettings,
    stop: &AtomicBool,
) -> Result<Batch, KeyError> {
    let mut total = Batch::default();
    for table in tables::ALL {
        let active = keyring.sealer().key_id();
        let remaining = count_under_other_keys(keyring.storage(), table, active).await?;
        if remaining == 0 {
            continue;
        }
        tracing::info!(table = table.name, rows = remaining, key_id = active, "re-encrypting under the active key");
        let mut cursor = Cursor { table, after: String::new() };
        let mut done = Batch::default();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(total);
            }
            let batch = reencrypt_batch(keyring, auditor, &mut cursor, settings.reencrypt_batch).await?;
            done.rewritten += batch.rewritten;
            done.failed += batch.failed;
            tracing::info!(
                table = table.name,
                rewritten = done.rewritten,
                failed = done.failed,
                of = remaining,
                "re-encryption progress"
            );
            if batch.selected < settings.reencrypt_batch as usize {
                break;
            }
            tokio::time::sleep(settings.reencrypt_pause()).await;
        }
        if done.failed > 0 {
            tracing::error!(
                table = table.name,
                rows = done.failed,
                "rows failed their integrity check and stay under their old key (which cannot be retired)"
            );
        }
        total.selected += done.rewritten + done.failed;
        total.rewritten += done.rewritten;
        total.failed += done.failed;
    }
    Ok(total)
}

/// One per node: every `keys.refresh_secs` it reloads the key list and moves values still under
/// an older key onto the active one. Stops between batches on shutdown.
pub struct Reencryptor {
    keyring: Arc<Keyring>,
    auditor: Auditor,
    settings: KeySettings,
    stop: Arc<AtomicBool>,
    busy: bool,
}

impl Reencryptor {
    /// A re-encryptor for this node's keyring.
    pub fn new(keyring: Arc<Keyring>, auditor: Auditor, settings: KeySettings) -> Self {
        Self { keyring, auditor, settings, stop: Arc::new(AtomicBool::new(false)), busy: false }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stop.load(Ordering::Relaxed) {
            return;
        }
        self.busy = true;
        let (keyring, auditor, settings, stop) =
            (self.keyring.clone(), self.auditor.clone(), self.settings.clone(), self.stop.clone());
        let pass = async move {
            keyring.refresh().await?;
            reencrypt_all(&keyring, &auditor, &settings, &stop).await
        };
        ctx.spawn(pass.into_actor(self).map(|result, actor, _| {
            actor.busy = false;
            match result {
                Ok(batch) if batch.rewritten > 0 => {
                    tracing::info!(rows = batch.rewritten, "re-encryption finished")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "re-encryption pass failed; the next one retries"),
            }
        }));
    }
}

impl Actor for Reencryptor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(self.settings.refresh(), Self::tick);
    }
}

impl Handler<Shutdown> for Reencryptor {
    type Result = ();

    /// Stops after the batch in flight (whose transaction commits or rolls back whole).
    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
