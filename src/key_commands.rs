//! The bodies of the `confidant keys ...` commands. Each change to the keys is recorded in the
//! audit trail (on the command line's own chain) before it is made, and not made if that fails.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use confidant_actors::audit::{Action, ResourceType};

use crate::audit_commands::record_cli_event;
use crate::crypto::master::{self, MasterKey, MasterKeySource};
use crate::crypto::rotation::{self, KeyStatus};
use crate::crypto::{KeyError, Keyring};
use crate::settings::Settings;
use crate::startup::{ServerError, open_keyring, open_stores, prepare_data_dir};
use crate::storage::{Location, Storage, Store};

/// `confidant keys status`: every data key, its state and what it still protects.
pub async fn status(settings: &Settings) -> Result<Vec<KeyStatus>, ServerError> {
    prepare_data_dir(&settings.data_dir)?;
    let main = Storage::connect(Store::Main, &Location::of(Store::Main, settings), &settings.database).await?;
    main.migrate().await?;
    // Opening the keyring checks the master key (and makes the first keys on a new database).
    let keyring = open_keyring(settings, &main).await?;
    let status = rotation::status(keyring.storage()).await?;
    main.close().await;
    Ok(status)
}

/// `confidant keys rotate`: a new active field key. Running nodes pick it up within
/// `keys.refresh_secs` and re-encrypt older values in the background.
pub async fn rotate(settings: &Settings) -> Result<u32, ServerError> {
    let (main, audit) = connect(settings).await?;
    let keyring = open_keyring(settings, &main).await?;
    let audit_id = uuid::Uuid::now_v7();
    record_cli_event(settings, &audit, Action::KeyRotation, (ResourceType::Key, Some(audit_id)), "data_key_rotated")
        .await?;
    let key = rotation::rotate(keyring.storage(), keyring.master(), audit_id).await?;
    close(main, audit).await;
    Ok(key.key_id)
}

/// `confidant keys retire ID`: deletes a data key that protects nothing any more.
pub async fn retire(settings: &Settings, key_id: u32) -> Result<(), ServerError> {
    let (main, audit) = connect(settings).await?;
    let keyring = open_keyring(settings, &main).await?;
    let grace = Duration::from_secs(settings.keys.retire_grace_secs);
    let key = rotation::retirable(keyring.storage(), key_id, grace).await?;
    record_cli_event(
        settings,
        &audit,
        Action::KeyRotation,
        (ResourceType::Key, Some(key.audit_id)),
        "data_key_retired",
    )
    .await?;
    rotation::retire(keyring.storage(), key).await?;
    close(main, audit).await;
    Ok(())
}

/// What `confidant keys rotate-master` did.
#[derive(Debug)]
pub struct MasterRotation {
    /// Data keys rewrapped.
    pub rewrapped: usize,
    /// Fingerprint of the new master key.
    pub fingerprint: String,
    /// The key file now holding the new master key, when the old one came from a file.
    pub replaced_file: Option<PathBuf>,
}

/// `confidant keys rotate-master`: rewraps every data key under `new_master` (base64, read
/// from standard input). When the current master key came from a file, that file is replaced
/// (atomically, mode 0600); otherwise the operator must give every node the new key.
pub async fn rotate_master(settings: &Settings, new_master: &str) -> Result<MasterRotation, ServerError> {
    let new = MasterKey::from_base64(new_master, "standard input")?;
    let (main, audit) = connect(settings).await?;
    let (old, source) = master::locate(settings)?;
    if old.fingerprint() == new.fingerprint() {
        return Err(ServerError::Usage("the new master key is the one in use"));
    }
    let keyring = Keyring::open(main.clone(), old).await?;
    record_cli_event(settings, &audit, Action::KeyRotation, (ResourceType::Key, None), "master_key_rotated").await?;
    let staged = match &source {
        MasterKeySource::File(path) | MasterKeySource::Generated(path) => Some(stage_key_file(path, &new)?),
        MasterKeySource::Setting => None,
    };
    let rewrapped = match rotation::rewrap(keyring.storage(), keyring.master(), &new).await {
        Ok(rewrapped) => rewrapped,
        Err(error) => {
            // The database still uses the old key: the staged copy of the new one must not linger.
            if let Some((staged, _)) = &staged {
                let _ = std::fs::remove_file(staged);
            }
            return Err(error.into());
        }
    };
    let replaced_file = match staged {
        Some((staged, path)) => {
            std::fs::rename(&staged, &path).map_err(|source| KeyError::MasterKeyFile { path: path.clone(), source })?;
            Some(path)
        }
        None => None,
    };
    close(main, audit).await;
    Ok(MasterRotation { rewrapped, fingerprint: new.fingerprint().to_owned(), replaced_file })
}

/// Writes the new key next to `path` (mode 0600), to be renamed over it once the database has
/// switched: until then the old file still opens the keys.
fn stage_key_file(path: &std::path::Path, key: &MasterKey) -> Result<(PathBuf, PathBuf), KeyError> {
    let staged = path.with_extension("new");
    let fail = |source| KeyError::MasterKeyFile { path: staged.clone(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&staged).map_err(fail)?;
    file.write_all(key.to_base64().as_bytes()).and_then(|()| file.write_all(b"\n")).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok((staged, path.to_owned()))
}

async fn connect(settings: &Settings) -> Result<(Storage, Storage), ServerError> {
    prepare_data_dir(&settings.data_dir)?;
    let (main, audit) = open_stores(settings).await?;
    main.migrate().await?;
    audit.migrate().await?;
    Ok((main, audit))
}

async fn close(main: Storage, audit: Storage) {
    main.close().await;
    audit.close().await;
}
