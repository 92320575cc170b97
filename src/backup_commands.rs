//! The bodies of the `confidant backup ...` commands: each run is recorded on the command
//! line's own audit chain (`audit_commands.rs` `record_cli_event`), a backup before it is
//! taken (so the backup holds its own record), a restore in the restored trail once it holds.

use std::path::Path;

use confidant_actors::audit::{Action, ResourceType};

use crate::audit_commands::record_cli_event;
use crate::backup::copy::{Copied, Stores};
use crate::backup::create::Source;
use crate::backup::restore::Target;
use crate::backup::verify::VerifyWith;
use crate::backup::{self, BackupError, Created, Identities, Recipients, Restored, Verified};
use crate::crypto::MasterKey;
use crate::crypto::master;
use crate::node;
use crate::settings::{DatabaseUrl, Settings};
use crate::startup::{ServerError, open_keyring, open_stores, prepare_data_dir};
use crate::storage::{Location, Storage, Store};

/// `confidant backup create --to FILE`: a backup of the running practice, encrypted to
/// `recipients` (else `backup.recipients`).
pub async fn create(settings: &Settings, recipients: &[String], to: &Path) -> Result<Created, ServerError> {
    let recipients = if recipients.is_empty() { &settings.backup.recipients[..] } else { recipients };
    let recipients = Recipients::parse(recipients)?;
    prepare_data_dir(&settings.data_dir)?;
    let (main, audit) = open_stores(settings).await?;
    main.migrate().await?;
    audit.migrate().await?;
    let keyring = open_keyring(settings, &main).await?;
    record_cli_event(settings, &audit, Action::Export, (ResourceType::Server, None), "backup_created").await?;
    let source = Source {
        main: &main,
        audit: &audit,
        checkpoint_dir: settings.audit_checkpoint_dir(),
        local_chains: node::local_chains(&settings.data_dir),
        master_key_fingerprint: keyring.master().fingerprint().to_owned(),
        staging_in: settings.data_dir.clone(),
    };
    let created = backup::create(source, &recipients, to).await;
    main.close().await;
    audit.close().await;
    Ok(created?)
}

/// The empty PostgreSQL databases a PostgreSQL backup is restored into to be verified.
pub struct Scratch {
    /// For the main store's dump.
    pub main: Option<String>,
    /// For the audit store's dump.
    pub audit: Option<String>,
}

/// `confidant backup verify FILE --identity KEY`: every check of `backup/verify.rs`, with the
/// master key of the settings when there is one. Recorded (as a read of the backup) first.
pub async fn verify(
    settings: &Settings,
    file: &Path,
    identity: &Path,
    scratch: Scratch,
) -> Result<Verified, ServerError> {
    let identities = Identities::from_file(identity)?;
    let scratch = match (scratch.main, scratch.audit) {
        (Some(main), Some(audit)) => Some((database_url(main)?, database_url(audit)?)),
        (None, None) => None,
        _ => return Err(ServerError::Usage("give both --scratch-database and --scratch-audit-database, or neither")),
    };
    prepare_data_dir(&settings.data_dir)?;
    let audit =
        crate::storage::Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database)
            .await?;
    audit.migrate().await?;
    record_cli_event(settings, &audit, Action::Read, (ResourceType::Server, None), "backup_verified").await?;
    audit.close().await;
    let with = VerifyWith {
        identities: &identities,
        master: existing_master_key(settings)?,
        pinned: settings.pinned_audit_keys(),
        scratch,
        work_in: std::env::temp_dir(),
    };
    Ok(backup::verify(file, with).await?)
}

/// `confidant backup restore FILE --identity KEY`: into the stores and data directory of the
/// settings, which must be empty; then migrated and the restore recorded in the restored trail.
pub async fn restore(settings: &Settings, file: &Path, identity: &Path) -> Result<Restored, ServerError> {
    let identities = Identities::from_file(identity)?;
    let target = Target {
        data_dir: settings.data_dir.clone(),
        main: Location::of(Store::Main, settings),
        audit: Location::of(Store::Audit, settings),
        checkpoint_dir: settings.audit_checkpoint_dir(),
    };
    let restored = backup::restore(file, &identities, &target).await?;
    let (main, audit) = &restored.stores;
    main.migrate().await?;
    audit.migrate().await?;
    record_cli_event(settings, audit, Action::Create, (ResourceType::Server, None), "backup_restored").await?;
    main.close().await;
    audit.close().await;
    Ok(restored)
}

/// `confidant store copy --to URL --audit-to URL`: the SQLite stores of the settings onto two
/// empty PostgreSQL databases (`backup/copy.rs`). Recorded first, so the copy carries its own
/// record.
pub async fn copy_store(settings: &Settings, to: String, audit_to: String) -> Result<Copied, ServerError> {
    let (to, audit_to) = (database_url(to)?, database_url(audit_to)?);
    prepare_data_dir(&settings.data_dir)?;
    let (main, audit) = open_stores(settings).await?;
    main.migrate().await?;
    audit.migrate().await?;
    // The master key must open the source: the copy is useless to a server without it.
    open_keyring(settings, &main).await?;
    let to_main = Storage::connect(Store::Main, &Location::Postgres(to), &settings.database).await?;
    let to_audit = Storage::connect(Store::Audit, &Location::Postgres(audit_to), &settings.database).await?;
    if main.backend() == crate::storage::Backend::Sqlite {
        record_cli_event(settings, &audit, Action::Export, (ResourceType::Server, None), "store_copied").await?;
    }
    let stores = Stores { from_main: &main, from_audit: &audit, to_main: &to_main, to_audit: &to_audit };
    let copied = backup::copy::copy(
        stores,
        settings.audit_checkpoint_dir(),
        node::local_chains(&settings.data_dir),
        settings.pinned_audit_keys(),
    )
    .await;
    for storage in [main, audit, to_main, to_audit] {
        storage.close().await;
    }
    Ok(copied?)
}

/// The master key the settings name, if they name one or the generated file exists: never
/// generated here (a verification must not make a key).
fn existing_master_key(settings: &Settings) -> Result<Option<MasterKey>, ServerError> {
    let named = settings.master_key.is_some() || settings.keys.master_key_file.is_some();
    if !named && !settings.generated_master_key_file().exists() {
        return Ok(None);
    }
    Ok(Some(master::locate(settings)?.0))
}

fn database_url(text: String) -> Result<DatabaseUrl, ServerError> {
    DatabaseUrl::try_from(text).map_err(|e| ServerError::Backup(BackupError::Usage(format!("scratch database: {e}"))))
}
