//! The Authentication Service half: devices and their KeyPackages. A device is registered by
//! its own account over an authenticated session; from then on a credential naming it is
//! accepted only with the signature key it registered, and only while it is active. The
//! statements are in `store/devices.rs`.

use confidant_actors::ids::{DeviceId, UserId};

use super::error::MessagingError;
use super::mls::{self, Claimed};
use super::store::devices::{self as rows, NewPackage};
use crate::storage::Storage;

pub use super::store::devices::Device;

/// A device is told to upload more when it has fewer one-time KeyPackages than this.
pub const LOW_KEY_PACKAGES: u64 = 10;
/// One upload holds at most this many KeyPackages.
pub const MAX_UPLOAD: usize = 100;
/// A device keeps at most this many unclaimed one-time KeyPackages.
pub const MAX_STOCK: i64 = 500;

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

    /// Discards every KeyPackage after a restore (`rows::discard_all_packages` says why);
    /// returns how many.
    pub async fn discard_all_packages(&self) -> Result<u64, MessagingError> {
        Ok(rows::discard_all_packages(&self.storage).await?)
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
        if !rows::insert(&self.storage, &device).await? {
            return Err(MessagingError::Conflict);
        }
        Ok(device)
    }

    /// A device by id, removed or not.
    pub async fn get(&self, id: DeviceId) -> Result<Option<Device>, MessagingError> {
        Ok(rows::get(&self.storage, id).await?)
    }

    /// `user`'s active devices, oldest first.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<Device>, MessagingError> {
        Ok(rows::of_user(&self.storage, user).await?)
    }

    /// Removes a device of `user`: it can no longer attach, claim or be added, and its unclaimed
    /// KeyPackages are deleted. `false` when `user` has no such active device.
    pub async fn remove(&self, user: UserId, id: DeviceId, now_ms: i64) -> Result<bool, MessagingError> {
        Ok(rows::remove(&self.storage, user, id, now_ms).await?)
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
        rows::store_packages(&self.storage, device.id, &valid, MAX_STOCK, now_ms).await?.ok_or(MessagingError::TooMany)
    }

    /// One-time KeyPackages `device` has left.
    pub async fn stock(&self, device: DeviceId) -> Result<u64, MessagingError> {
        Ok(rows::stock(&self.storage, device).await?)
    }

    /// Claims one KeyPackage for each active device of `user`: a one-time package when there
    /// is one (deleted as it is handed out, so no two claims get the same), else the
    /// last-resort one. Devices with neither are left out. The caller decided first that the
    /// claimant may converse with `user` (RFC 9420 section 16.8).
    pub async fn claim(&self, user: UserId) -> Result<Vec<ClaimedPackage>, MessagingError> {
        let mut claimed = Vec::new();
        for device in self.of_user(user).await? {
            if let Some(key_package) = rows::claim_one(&self.storage, device.id).await? {
                claimed.push(ClaimedPackage { device_id: device.id, key_package });
            }
        }
        Ok(claimed)
    }
}
