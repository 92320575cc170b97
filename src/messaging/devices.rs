//! The Authentication Service half: devices and their KeyPackages. A device is registered by
//! its own account over an authenticated session; from then on a credential naming it is
//! accepted only with the signature key it registered, and only while it is active.

use confidant_actors::ids::{DeviceId, UserId};
use sqlx::Row;

use super::MessagingError;
use super::mls::{self, Claimed};
use crate::storage::{Storage, StorageError, parse_id};

/// A device is told to upload more when it has fewer one-time KeyPackages than this.
pub const LOW_KEY_PACKAGES: u64 = 10;
/// One upload holds at most this many KeyPackages.
pub const MAX_UPLOAD: usize = 100;
/// A device keeps at most this many unclaimed one-time KeyPackages.
pub const MAX_STOCK: i64 = 500;

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

impl Device {
    /// The identity bytes its MLS credential must carry.
    pub fn identity(&self) -> Vec<u8> {
        mls::identity(self.user_id, self.id)
    }
}

/// A KeyPackage handed out by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPackage {
    /// The device it adds.
    pub device_id: DeviceId,
    /// Its TLS encoding.
    pub key_package: Vec<u8>,
}

/// The device registry and KeyPackage store.
#[derive(Clone)]
pub struct Devices {
    storage: Storage,
}

impl Devices {
    /// The registry in `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Registers a device of `user` with `signature_key` (32 bytes, Ed25519). A key already
    /// registered (by anyone) is refused: one key, one device.
    pub async fn register(&self, user: UserId, signature_key: &[u8], now_ms: i64) -> Result<Device, MessagingError> {
        if signature_key.len() != 32 {
            return Err(MessagingError::Invalid(mls::MlsError::Malformed));
        }
        let device = Device {
            id: DeviceId::from_uuid(uuid::Uuid::new_v4()),
            user_id: user,
            signature_key: signature_key.to_vec(),
            registered_at_ms: now_ms,
            removed_at_ms: None,
        };
        if !insert(&self.storage, &device).await? {
            return Err(MessagingError::Conflict);
        }
        Ok(device)
    }

    /// A device by id, removed or not.
    pub async fn get(&self, id: DeviceId) -> Result<Option<Device>, MessagingError> {
        Ok(get(&self.storage, id).await?)
    }

    /// `user`'s active devices, oldest first.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<Device>, MessagingError> {
        Ok(of_user(&self.storage, user).await?)
    }

    /// Removes a device of `user`: it can no longer attach, claim or be added, and its unclaimed
    /// KeyPackages are deleted. `false` when `user` has no such active device.
    pub async fn remove(&self, user: UserId, id: DeviceId, now_ms: i64) -> Result<bool, MessagingError> {
        Ok(remove(&self.storage, user, id, now_ms).await?)
    }

    /// Whether `claimed` is an active device of its account, with its registered key.
    pub async fn vouch(&self, claimed: &Claimed) -> Result<Device, MessagingError> {
        let device = self.get(claimed.device).await?.ok_or(MessagingError::Invalid(mls::MlsError::Credential))?;
        if device.user_id != claimed.user
            || device.signature_key != claimed.signature_key
            || device.removed_at_ms.is_some()
        {
            return Err(MessagingError::Invalid(mls::MlsError::Credential));
        }
        Ok(device)
    }

    /// Stores KeyPackages uploaded by `device` (its own: each must validate and carry the
    /// device's credential). A new last-resort package replaces the old one. Returns the
    /// one-time packages the device now has.
    pub async fn upload(&self, device: &Device, packages: &[Vec<u8>], now_ms: i64) -> Result<u64, MessagingError> {
        if packages.is_empty() || packages.len() > MAX_UPLOAD {
            return Err(MessagingError::Invalid(mls::MlsError::Malformed));
        }
        let mut valid = Vec::with_capacity(packages.len());
        for bytes in packages {
            let package = mls::validate_key_package(bytes)?;
            let owned =
                Claimed { device: device.id, user: device.user_id, signature_key: device.signature_key.clone() };
            if package.claimed != owned {
                return Err(MessagingError::Invalid(mls::MlsError::Credential));
            }
            valid.push(NewPackage { hash_ref: package.hash_ref, last_resort: package.last_resort, key_package: bytes });
        }
        if valid.iter().filter(|p| p.last_resort).count() > 1 {
            return Err(MessagingError::Invalid(mls::MlsError::Invalid));
        }
        store_packages(&self.storage, device.id, &valid, MAX_STOCK, now_ms).await?.ok_or(MessagingError::TooMany)
    }

    /// One-time KeyPackages `device` has left.
    pub async fn stock(&self, device: DeviceId) -> Result<u64, MessagingError> {
        Ok(stock(&self.storage, device).await?)
    }

    /// Claims one KeyPackage for each active device of `user`: a one-time package when there
    /// is one (deleted as it is handed out, so no two claims get the same), else the
    /// last-resort one. Devices with neither are left out. The caller decided first that the
    /// claimant may converse with `user` (RFC 9420 section 16.8).
    pub async fn claim(&self, user: UserId) -> Result<Vec<ClaimedPackage>, MessagingError> {
        let mut claimed = Vec::new();
        for device in self.of_user(user).await? {
            if let Some(key_package) = claim_one(&self.storage, device.id).await? {
                claimed.push(ClaimedPackage { device_id: device.id, key_package });
            }
        }
        Ok(claimed)
    }
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
struct NewPackage<'a> {
    /// Its hash reference (unique).
    hash_ref: Vec<u8>,
    /// Whether it is the device's last-resort package.
    last_resort: bool,
    /// Its TLS encoding.
    key_package: &'a [u8],
}

/// Stores a new device; `false` when its signature key is registered already.
async fn insert(storage: &Storage, device: &Device) -> Result<bool, StorageError> {
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
async fn get(storage: &Storage, id: DeviceId) -> Result<Option<Device>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE device_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(storage.pool()).await?;
    row.as_ref().map(device).transpose()
}

/// `user`'s active devices, oldest first.
async fn of_user(storage: &Storage, user: UserId) -> Result<Vec<Device>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND removed_at_ms IS NULL ORDER BY registered_at_ms, device_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.to_string()).fetch_all(storage.pool()).await?;
    rows.iter().map(device).collect()
}

/// Marks `user`'s active device `id` removed and deletes its KeyPackages, in one transaction;
/// `false` when there is no such active device.
async fn remove(storage: &Storage, user: UserId, id: DeviceId, now_ms: i64) -> Result<bool, StorageError> {
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

/// Stores `packages` of `device` (a new last-resort one replacing the old), in one transaction;
/// the one-time packages it has now, or `None` (nothing stored) when that would be more than
/// `max_stock`.
async fn store_packages(
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
async fn stock(storage: &Storage, device: DeviceId) -> Result<u64, StorageError> {
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_packages WHERE device_id = $1 AND last_resort = 0")
        .bind(device.to_string())
        .fetch_one(storage.pool())
        .await?;
    Ok(u64::try_from(left).unwrap_or(0))
}

/// Takes one KeyPackage of `device`, in a transaction of its own: the oldest one-time package
/// (deleted as it is taken), else its last-resort one (kept). `None` when it has neither, or a
/// concurrent claim took the package first.
async fn claim_one(storage: &Storage, device: DeviceId) -> Result<Option<Vec<u8>>, StorageError> {
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
