//! `devices` and `key_packages`: registered devices with their signature keys, and the
//! KeyPackages they uploaded.

use confidant_actors::ids::{DeviceId, UserId};
use sqlx::Row;

use crate::storage::{Storage, StorageError, parse_id};

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub id: DeviceId,
    /// Whose.
    pub user_id: UserId,
    /// Its Ed25519 signature public key.
    pub signature_key: Vec<u8>,
    /// When it was registered (UTC ms).
    pub registered_at_ms: i64,
    /// When it was removed, if it was.
    pub removed_at_ms: Option<i64>,
}

const COLUMNS: &str = "device_id, user_id, signature_key, registered_at_ms, removed_at_ms";

fn device(row: &sqlx::any::AnyRow) -> Result<Device, StorageError> {
    Ok(Device {
        id: parse_id(&row.try_get::<String, _>(0)?, "device_id")?,
        user_id: parse_id(&row.try_get::<String, _>(1)?, "user_id")?,
        signature_key: row.try_get(2)?,
        registered_at_ms: row.try_get(3)?,
        removed_at_ms: row.try_get(4)?,
    })
}

/// A KeyPackage to store.
pub struct NewPackage<'a> {
    /// Its hash reference (unique).
    pub hash_ref: Vec<u8>,
    /// Whether it is the device's last-resort package.
    pub last_resort: bool,
    /// Its TLS encoding.
    pub key_package: &'a [u8],
}

/// Stores a new device; `false` when its signature key is registered already.
pub async fn insert(storage: &Storage, device: &Device) -> Result<bool, StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO devices (device_id, user_id, signature_key, registered_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (signature_key) DO NOTHING",
    )
    .bind(device.id.to_string())
    .bind(device.user_id.to_string())
    .bind(device.signature_key.clone())
    .bind(device.registered_at_ms)
    .execute(storage.pool())
    .await?;
    Ok(inserted.rows_affected() != 0)
}

/// A device by id, removed or not.
pub async fn get(storage: &Storage, id: DeviceId) -> Result<Option<Device>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE device_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(storage.pool()).await?;
    row.as_ref().map(device).transpose()
}

/// `user`'s active devices, oldest first.
pub async fn of_user(storage: &Storage, user: UserId) -> Result<Vec<Device>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND removed_at_ms IS NULL ORDER BY registered_at_ms, device_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.to_string()).fetch_all(storage.pool()).await?;
    rows.iter().map(device).collect()
}

/// Marks `user`'s active device `id` removed and deletes its KeyPackages, in one transaction;
/// `false` when there is no such active device.
pub async fn remove(storage: &Storage, user: UserId, id: DeviceId, now_ms: i64) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let removed = sqlx::query(
        "UPDATE devices SET removed_at_ms = $1 WHERE device_id = $2 AND user_id = $3 AND removed_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(id.to_string())
    .bind(user.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM key_packages WHERE device_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(removed.rows_affected() == 1)
}

/// Deletes every stored KeyPackage, one-time and last-resort: after a restore, any of them may
/// already have been handed out since the backup was taken, and a KeyPackage used twice breaks
/// MLS's guarantees. Each device is then told it is low on its next attach and uploads fresh
/// ones. Returns how many were deleted.
pub async fn discard_all_packages(storage: &Storage) -> Result<u64, StorageError> {
    Ok(sqlx::query("DELETE FROM key_packages").execute(storage.pool()).await?.rows_affected())
}

/// Stores `packages` of `device` (a new last-resort one replacing the old), in one transaction;
/// the one-time packages it has now, or `None` (nothing stored) when that would be more than
/// `max_stock`.
pub async fn store_packages(
    storage: &Storage,
    device: DeviceId,
    packages: &[NewPackage<'_>],
    max_stock: i64,
    now_ms: i64,
) -> Result<Option<u64>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let stock: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND last_resort = 0")
        .bind(device.to_string())
        .fetch_one(&mut *tx)
        .await?;
    let one_time = i64::try_from(packages.iter().filter(|p| !p.last_resort).count()).unwrap_or(i64::MAX);
    if stock.saturating_add(one_time) > max_stock {
        return Ok(None);
    }
    if packages.iter().any(|p| p.last_resort) {
        sqlx::query("DELETE FROM key_packages WHERE device_id = $1 AND last_resort = 1")
            .bind(device.to_string())
            .execute(&mut *tx)
            .await?;
    }
    for package in packages {
        sqlx::query(
            "INSERT INTO key_packages (hash_ref, device_id, last_resort, key_package, uploaded_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash_ref) DO NOTHING",
        )
        .bind(package.hash_ref.clone())
        .bind(device.to_string())
        .bind(i64::from(package.last_resort))
        .bind(package.key_package.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND last_resort = 0")
        .bind(device.to_string())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(u64::try_from(left).unwrap_or(0)))
}

/// One-time KeyPackages `device` has left.
pub async fn stock(storage: &Storage, device: DeviceId) -> Result<u64, StorageError> {
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND last_resort = 0")
        .bind(device.to_string())
        .fetch_one(storage.pool())
        .await?;
    Ok(u64::try_from(left).unwrap_or(0))
}

/// Takes one KeyPackage of `device`, in a transaction of its own: the oldest one-time package
/// (deleted as it is taken), else its last-resort one (kept). `None` when it has neither, or a
/// concurrent claim took the package first.
pub async fn claim_one(storage: &Storage, device: DeviceId) -> Result<Option<Vec<u8>>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let row = sqlx::query(
        "SELECT hash_ref, key_package, last_resort FROM key_packages WHERE device_id = $1 \
         ORDER BY last_resort, uploaded_at_ms LIMIT 1",
    )
    .bind(device.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (hash_ref, key_package, last_resort): (Vec<u8>, Vec<u8>, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if last_resort == 0 {
        let taken =
            sqlx::query("DELETE FROM key_packages WHERE hash_ref = $1").bind(hash_ref).execute(&mut *tx).await?;
        if taken.rows_affected() != 1 {
            return Ok(None); // claimed by a concurrent request meanwhile
        }
    }
    tx.commit().await?;
    Ok(Some(key_package))
}
