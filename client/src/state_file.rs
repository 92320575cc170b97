//! The device's state on disk: its whole state ([`Device::export_state`]: the MLS storage with
//! the signature key pair, group secrets and KeyPackage private keys, and the cursors) in a file
//! sealed with AES-256-GCM under a 32-byte key the application keeps (for instance in the OS
//! keychain). File: 12-byte nonce, then the ciphertext of a JSON document.
//!
//! A device that keeps its state in a file ([`Device::load`], [`Device::use_state_file`]) saves
//! it before every acknowledgement: the server stops replaying what is acknowledged, so what is
//! acknowledged must survive a crash.

use std::path::Path;

use crate::ClientError;
use crate::device::Device;
use crate::sealed::{self, SealedFile};

impl Device {
    /// Writes the device's state to `path`, sealed under `key`, readable by its owner only. It
    /// is written to a temporary file, flushed to disk, renamed over the old one and the rename
    /// flushed too, so a crash leaves the old state or the new, never half of one, and once this
    /// returns the new state survives a crash (it precedes acknowledgements). The state is sealed
    /// here; the file work, two flushes that can take milliseconds, runs on tokio's blocking
    /// threads, so the caller's runtime goes on reading its socket meanwhile.
    pub async fn save(&self, path: &Path, key: &[u8; 32]) -> Result<(), ClientError> {
        let sealed = sealed::seal(&self.export_state()?, key)?;
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || sealed::replace(&path, &sealed))
            .await
            .map_err(|_| ClientError::State("write"))?
    }

    /// Keeps this device's state in `path`, sealed under `key`: it is saved there before each
    /// acknowledgement (and whenever the application calls [`Device::save`]).
    pub fn use_state_file(&mut self, path: &Path, key: &[u8; 32]) {
        self.state_file = Some(SealedFile::new(path, key));
    }

    /// Reads a state written by [`Device::save`]. A wrong key or a changed file is refused.
    /// The device goes on keeping its state there (see [`Device::use_state_file`]).
    pub fn load(path: &Path, key: &[u8; 32]) -> Result<Self, ClientError> {
        let mut device = Device::import_state(&sealed::open(path, key)?)?;
        device.use_state_file(path, key);
        Ok(device)
    }
}
