//! Putting a backup back: only into stores that hold nothing and a checkpoint directory with no
//! files (a restore never overwrites), then checked against the manifest. KeyPackages in the
//! backup are discarded: some may have been handed out after the backup was taken, and MLS
//! must never see one used twice; devices are asked for fresh ones on their next attach. The
//! lease of a scheduled backup running when the backup was taken is freed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::archive::Identities;
use super::images::{POOL, load_image};
use super::manifest::{self, Manifest};
use super::store;
use super::verify::{compare, unpack};
use super::{BackupError, CHECKPOINTS};
use crate::messaging::Devices;
use crate::storage::{Location, Storage, Store};

/// Where a backup is restored to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The data directory (created 0700 if missing); the staging directory is made in it.
    pub data_dir: PathBuf,
    /// The main store.
    pub main: Location,
    /// The audit store.
    pub audit: Location,
    /// The audit checkpoint files' directory.
    pub checkpoint_dir: PathBuf,
}

/// A restore done.
#[derive(Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// KeyPackages discarded.
    pub key_packages_discarded: u64,
    /// The restored stores, open, for the caller to record the restore in.
    pub stores: (Storage, Storage),
}

/// Restores `file` into `target`; refuses unless every part of the target is empty.
#[tracing::instrument(skip_all)]
pub async fn restore(file: &Path, identities: &Identities, target: &Target) -> Result<Restored, BackupError> {
    ensure_empty(target).await?;
    let staging = tempfile::Builder::new()
        .prefix(".backup-restore-")
        .tempdir_in(&target.data_dir)
        .map_err(BackupError::file(&target.data_dir))?;
    let dir = staging.path();
    let (manifest, faults) = unpack(file, identities, dir).await?;
    let Some(manifest) = manifest.filter(|_| faults.is_empty()) else {
        let faults: Vec<String> = faults.into_iter().map(|f| f.0).collect();
        return Err(BackupError::Mismatch(format!("the backup is damaged: {}", faults.join("; "))));
    };
    for (name, location) in [(manifest::MAIN, &target.main), (manifest::AUDIT, &target.audit)] {
        let image = manifest.store(name).ok_or_else(|| BackupError::Malformed(format!("no {name} store")))?;
        load_image(image, dir, location).await?;
    }
    restore_checkpoints(&manifest, dir, &target.checkpoint_dir)?;
    drop(staging);

    let main = Storage::connect(Store::Main, &target.main, &POOL).await?;
    let audit = Storage::connect(Store::Audit, &target.audit, &POOL).await?;
    for (storage, name) in [(&main, manifest::MAIN), (&audit, manifest::AUDIT)] {
        let Some(image) = manifest.store(name) else { continue };
        let found = store::describe_store(storage, name == manifest::AUDIT).await?;
        compare(image, &found).map_err(|fault| {
            BackupError::Mismatch(format!("the restored data does not match the backup: {}", fault.0))
        })?;
    }
    // A scheduled backup's lease held while this one was taken is no restored node's.
    if manifest.store(manifest::MAIN).is_some_and(|image| image.tables.contains_key("backup_schedule")) {
        store::free_schedule_lease(&main).await?;
    }
    let key_packages_discarded = Devices::new(main.clone())
        .discard_all_packages()
        .await
        .map_err(|e| BackupError::Mismatch(format!("the KeyPackages cannot be discarded: {e}")))?;
    tracing::info!(key_packages_discarded, "backup restored");
    Ok(Restored { manifest, key_packages_discarded, stores: (main, audit) })
}

/// Refuses a target that holds anything: a store with a table, a checkpoint file.
async fn ensure_empty(target: &Target) -> Result<(), BackupError> {
    if !target.data_dir.exists() {
        fs::create_dir_all(&target.data_dir).map_err(BackupError::file(&target.data_dir))?;
        fs::set_permissions(&target.data_dir, fs::Permissions::from_mode(0o700))
            .map_err(BackupError::file(&target.data_dir))?;
    }
    for (kind, location) in [(Store::Main, &target.main), (Store::Audit, &target.audit)] {
        match location {
            Location::Sqlite(path) if path.exists() => {
                return Err(BackupError::NotEmpty(path.display().to_string()));
            }
            Location::Sqlite(_) => {}
            Location::Postgres(_) => {
                let storage = Storage::connect(kind, location, &POOL).await?;
                let empty = store::is_empty(&storage).await;
                storage.close().await;
                if !empty? {
                    return Err(BackupError::NotEmpty(format!("the {} database", kind.name())));
                }
            }
        }
    }
    if let Ok(mut entries) = fs::read_dir(&target.checkpoint_dir)
        && entries.next().is_some()
    {
        return Err(BackupError::NotEmpty(target.checkpoint_dir.display().to_string()));
    }
    Ok(())
}

fn restore_checkpoints(manifest: &Manifest, dir: &Path, into: &Path) -> Result<(), BackupError> {
    let prefix = format!("{CHECKPOINTS}/");
    let files: Vec<&str> = manifest.files.iter().filter_map(|f| f.path.strip_prefix(&prefix)).collect();
    if files.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(into).map_err(BackupError::file(into))?;
    fs::set_permissions(into, fs::Permissions::from_mode(0o700)).map_err(BackupError::file(into))?;
    for name in files {
        let target = into.join(name);
        fs::copy(dir.join(CHECKPOINTS).join(name), &target).map_err(BackupError::file(&target))?;
    }
    Ok(())
}
