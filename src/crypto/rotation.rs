//! Key rotation without downtime. `confidant keys rotate` makes a new active field key; every
//! node picks it up on its next refresh and seals new values with it, and the [`Reencryptor`]
//! actor of each node moves old values onto it in small batches while the node keeps serving.
//! A key that protects nothing can then be retired: its wrapped material is deleted. Rotating
//! the master key rewraps the data keys and touches no value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, AuditActor, AuditEvent, AuditWriter, Outcome, record};
use confidant_actors::clock::now_ms;
use confidant_actors::ids::{NodeId, PatientId};
use confidant_actors::lifecycle::Shutdown;
use futures_util::future::join_all;
use sqlx::Row;

use super::envelope::Field;
use super::keyring::{KeyState, Keyring, Purpose, StoredKey, insert_key, stored_keys, unwrap_stored};
use super::master::MasterKey;
use super::tables::{self, EncryptedTable, Protected};
use super::{CryptoError, KeyError};
use crate::server::{AUDIT_ACK_TIMEOUT, reason};
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
    let protected = tables::protected_by_key(storage).await?;
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
    let protected = tables::protected_by_key(storage).await?.get(&key_id).copied().unwrap_or_default();
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
    audit: &Addr<AuditWriter>,
    node_id: NodeId,
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
        let mut event = AuditEvent::new(node_id, AuditActor::System, Action::Update, Outcome::Success)
            .on(table.resource, row.row_id.parse().ok())
            .because(reason("reencrypted_under_new_key"));
        if let Some(Ok(patient)) = row.patient.as_deref().map(str::parse) {
            event = event.for_patient(PatientId::from_uuid(patient));
        }
        record(audit, event, AUDIT_ACK_TIMEOUT)
    });
    if join_all(events).await.into_iter().any(|r| r.is_err()) {
        return Err(KeyError::AuditUnavailable);
    }
    batch.rewritten = rewrite(keyring.storage(), table, sealer.key_id(), rewrites).await?;
    Ok(batch)
}

/// Re-encrypts everything under older keys, table by table, in batches; stops early when
/// `stop` is set. Returns the totals.
pub async fn reencrypt_all(
    keyring: &Keyring,
    audit: &Addr<AuditWriter>,
    node_id: NodeId,
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
            let batch = reencrypt_batch(keyring, audit, node_id, &mut cursor, settings.reencrypt_batch).await?;
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

/// Makes a new active field key, wrapped by `master`, in one transaction with turning the
/// active one decrypt-only.
async fn rotate_field_key(storage: &Storage, master: &MasterKey, audit_id: uuid::Uuid) -> Result<StoredKey, KeyError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::query(
        "UPDATE data_keys SET state = 'decrypt_only', deactivated_at_ms = $1 WHERE purpose = 'field' AND state = 'active'",
    )
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let key = insert_key(&mut tx, master, Purpose::Field, audit_id).await?;
    tx.commit().await?;
    Ok(key)
}

/// Retires decrypt-only field key `key_id` at `now_ms`, deleting its wrapped material; `false`
/// when it is not (no longer) a decrypt-only field key.
async fn retire_key(storage: &Storage, key_id: u32, now_ms: i64) -> Result<bool, KeyError> {
    let retired = sqlx::query(
        "UPDATE data_keys SET state = 'retired', wrapped = NULL, retired_at_ms = $1 \
         WHERE key_id = $2 AND state = 'decrypt_only' AND purpose = 'field'",
    )
    .bind(now_ms)
    .bind(i64::from(key_id))
    .execute(storage.pool())
    .await?;
    Ok(retired.rows_affected() == 1)
}

/// Replaces the wrapped material of each `(key_id, wrapped)`, wrapped by the master key
/// `master_key_id`, in one transaction.
async fn store_rewrapped(storage: &Storage, rewrapped: &[(u32, Vec<u8>)], master_key_id: &str) -> Result<(), KeyError> {
    let mut tx = storage.pool().begin().await?;
    for (key_id, wrapped) in rewrapped {
        sqlx::query("UPDATE data_keys SET wrapped = $1, master_key_id = $2 WHERE key_id = $3")
            .bind(wrapped.clone())
            .bind(master_key_id.to_owned())
            .bind(i64::from(*key_id))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A row of an encrypted table, its values as stored (or as re-sealed).
struct SealedRow {
    /// Its id.
    row_id: String,
    /// The key its values were read under.
    key_id: i64,
    /// The patient it belongs to, if any.
    patient: Option<String>,
    /// The encrypted columns, in `table.columns` order.
    values: Vec<Option<Vec<u8>>>,
}

/// How many rows of `table` are under another key than `key_id`.
async fn count_under_other_keys(storage: &Storage, table: &EncryptedTable, key_id: u32) -> Result<i64, KeyError> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {} WHERE key_id <> $1", table.name)))
        .bind(i64::from(key_id))
        .fetch_one(storage.pool())
        .await?)
}

/// Up to `limit` rows of `table` after id `after` (in id order) that are under another key than
/// `key_id`.
async fn under_other_keys(
    storage: &Storage,
    table: &EncryptedTable,
    key_id: u32,
    after: &str,
    limit: u32,
) -> Result<Vec<SealedRow>, KeyError> {
    let columns = table.columns.join(", ");
    let select = format!(
        "SELECT {id}, key_id, {patient}, {columns} FROM {name} WHERE key_id <> $1 AND {id} > $2 ORDER BY {id} LIMIT $3",
        id = table.id_column,
        patient = table.patient_column,
        name = table.name
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(i64::from(key_id))
        .bind(after.to_owned())
        .bind(i64::from(limit))
        .fetch_all(storage.pool())
        .await?;
    let mut sealed = Vec::with_capacity(rows.len());
    for row in &rows {
        let values = (0..table.columns.len()).map(|i| row.try_get(3 + i)).collect::<Result<_, _>>()?;
        sealed.push(SealedRow { row_id: row.try_get(0)?, key_id: row.try_get(1)?, patient: row.try_get(2)?, values });
    }
    Ok(sealed)
}

/// Writes `rows` back sealed under `key_id`, each only if it is still under the key it was read
/// with, in one transaction; returns how many were written.
async fn rewrite(
    storage: &Storage,
    table: &EncryptedTable,
    key_id: u32,
    rows: Vec<SealedRow>,
) -> Result<usize, KeyError> {
    let assignments = table.columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 2)).collect::<Vec<_>>();
    let n = table.columns.len();
    let update = format!(
        "UPDATE {name} SET key_id = $1, {assignments} WHERE {id} = ${row} AND key_id = ${old}",
        name = table.name,
        assignments = assignments.join(", "),
        id = table.id_column,
        row = n + 2,
        old = n + 3
    );
    let mut rewritten = 0;
    let mut tx = storage.pool().begin().await?;
    for row in rows {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(i64::from(key_id));
        for value in row.values {
            query = query.bind(value);
        }
        let done = query.bind(row.row_id).bind(row.key_id).execute(&mut *tx).await?;
        rewritten += usize::try_from(done.rows_affected()).unwrap_or(0);
    }
    tx.commit().await?;
    Ok(rewritten)
}

/// One per node: every `keys.refresh_secs` it reloads the key list and moves values still under
/// an older key onto the active one. Stops between batches on shutdown.
pub struct Reencryptor {
    keyring: Arc<Keyring>,
    audit: Addr<AuditWriter>,
    node_id: NodeId,
    settings: KeySettings,
    stop: Arc<AtomicBool>,
    busy: bool,
}

impl Reencryptor {
    /// A re-encryptor for this node's keyring.
    pub fn new(keyring: Arc<Keyring>, audit: Addr<AuditWriter>, node_id: NodeId, settings: KeySettings) -> Self {
        Self { keyring, audit, node_id, settings, stop: Arc::new(AtomicBool::new(false)), busy: false }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.stop.load(Ordering::Relaxed) {
            return;
        }
        self.busy = true;
        let (keyring, audit, node_id, settings, stop) =
            (self.keyring.clone(), self.audit.clone(), self.node_id, self.settings.clone(), self.stop.clone());
        let pass = async move {
            keyring.refresh().await?;
            reencrypt_all(&keyring, &audit, node_id, &settings, &stop).await
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
