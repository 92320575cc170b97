//! What every command does before its own work, and why a command fails: the data directory
//! (created readable by this user only), the two stores, and the keyring of the main store with
//! its master key. `ServerError` is the error of `serve`, `migrate` and every other command; its
//! exit code tells configuration the operator must fix (2) from everything else (1).

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::auditor::AuditUnavailable;
use crate::crypto::master::{self, MasterKeySource};
use crate::crypto::{KeyError, Keyring};
use crate::node::NodeIdError;
use crate::redis_link::RedisError;
use crate::settings::Settings;
use crate::storage::{Location, Storage, StorageError, Store};
use crate::tls::TlsError;

/// Why the node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be created or used.
    #[error("cannot use the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The node id cannot be read or created.
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
    /// A store cannot be reached or migrated.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Redis is misconfigured.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listen address cannot be bound (in use, or not ours).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The audit trail cannot record the start, so the node must not serve.
    #[error("cannot write to the audit trail")]
    Audit(#[from] AuditUnavailable),
    /// The field-encryption keyring cannot be opened (no, malformed or wrong master key).
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// An account operation was refused or failed.
    #[error(transparent)]
    Auth(#[from] crate::identity::AuthError),
    /// The audit signing key cannot be read or created.
    #[error("cannot use the audit signing key")]
    AuditKey(#[source] io::Error),
    /// The checkpoint files cannot be read.
    #[error("cannot read the audit checkpoint files")]
    Checkpoints(#[source] io::Error),
    /// A verification could not be completed (a store, the checkpoint files or a witness
    /// could not be read).
    #[error("cannot verify the audit trail")]
    Verification(#[from] crate::audit::TrailError),
    /// A command's output could not be written.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    /// A purge would remove entries younger than the retention period.
    #[error(
        "refused: audit entries younger than {years} years are kept (audit.retention_years); choose an earlier --before"
    )]
    Retention {
        /// The configured retention.
        years: u16,
    },
    /// A command was given arguments it cannot use.
    #[error("{0}")]
    Usage(&'static str),
    /// A backup could not be taken, verified or restored.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// Reminders cannot be set up (an SMTP, template or DKIM setting is unusable).
    #[error(transparent)]
    Reminders(#[from] crate::reminders::ReminderError),
    /// SIGTERM/SIGINT handlers cannot be installed, so the node could not stop gracefully.
    #[error("cannot install signal handlers")]
    Signals(#[source] io::Error),
    /// The HTTP server failed while running.
    #[error("the HTTP server failed")]
    Run(#[source] io::Error),
}

impl ServerError {
    /// Process exit code: 2 for configuration the operator must fix, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Tls(e) if e.is_configuration() => 2,
            ServerError::Keys(e) if e.is_configuration() => 2,
            ServerError::Auth(crate::identity::AuthError::Policy(_) | crate::identity::AuthError::Conflict(_)) => 2,
            ServerError::Redis(RedisError::Url(_)) | ServerError::Usage(_) | ServerError::Retention { .. } => 2,
            ServerError::Reminders(crate::reminders::ReminderError::Configuration(_)) => 2,
            ServerError::Backup(e) if e.is_usage() => 2,
            _ => 1,
        }
    }
}

/// Finds the master key and opens the keyring of the main store.
pub async fn open_keyring(settings: &Settings, storage: &Storage) -> Result<Keyring, KeyError> {
    let (master_key, source) = master::locate(settings)?;
    match &source {
        MasterKeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            fingerprint = master_key.fingerprint(),
            "generated a master key for field encryption: back it up apart from the database (without it the PHI is unreadable), and set CONFIDANT_MASTER_KEY in production"
        ),
        MasterKeySource::File(path) => {
            tracing::info!(path = %path.display(), fingerprint = master_key.fingerprint(), "master key loaded")
        }
        MasterKeySource::Setting => tracing::info!(fingerprint = master_key.fingerprint(), "master key loaded"),
    }
    Keyring::open(storage.clone(), master_key).await
}

/// Connects the main and audit stores.
pub async fn open_stores(settings: &Settings) -> Result<(Storage, Storage), ServerError> {
    let main = Storage::connect(Store::Main, &Location::of(Store::Main, settings), &settings.database).await?;
    let audit = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    Ok((main, audit))
}

/// Creates the data directory on first run, readable by this user only.
pub fn prepare_data_dir(path: &Path) -> Result<(), ServerError> {
    let fail = |source| ServerError::DataDir { path: path.to_owned(), source };
    if !path.exists() {
        fs::create_dir_all(path).map_err(fail)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(fail)?;
        tracing::info!(path = %path.display(), "created the data directory");
    } else if !path.is_dir() {
        return Err(fail(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
    } else if fs::metadata(path).map_err(fail)?.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the data directory is readable by other users; chmod 700 it");
    }
    Ok(())
}
