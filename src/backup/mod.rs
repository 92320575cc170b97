//! Encrypted backups of a practice and their restore (docs/OPERATIONS.md, "Backups"): a
//! consistent copy of the main store, the audit store and the audit checkpoint files, described
//! by a manifest and encrypted to age recipients. The master key is never inside a backup; the
//! manifest names its fingerprint so a restore can say which key it needs.
//!
//! `create.rs` takes one while the server serves, `verify.rs` proves one restorable, `restore.rs`
//! puts one back into empty stores; `archive.rs` is the file (tar inside age), `manifest.rs` what
//! it says about itself, `images.rs` how a store's image goes in and out of a database,
//! `store.rs` every statement. `copy.rs` moves a practice from SQLite onto PostgreSQL.
//! `schedule.rs` is the server's own backups on a schedule, `retention.rs` which of them stay.

pub mod archive;
pub mod copy;
pub mod create;
pub mod images;
pub mod manifest;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod store;
pub mod verify;

use std::path::PathBuf;

pub use archive::{Identities, Recipients};
pub use create::{Created, create};
pub use manifest::Manifest;
pub use restore::{Restored, restore};
pub use verify::{Fault, Verified, verify};

use crate::storage::StorageError;

/// The archive's name for the manifest, first in the archive.
pub const MANIFEST: &str = "manifest.json";
/// The folder inside the archive holding the audit checkpoint files.
pub const CHECKPOINTS: &str = "audit-checkpoints";

/// Why a backup, its verification or its restore could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A recipient or identity given by the operator is unusable.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("cannot use {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A store could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The file is not an age file any identity given opens, or it was damaged (age
    /// authenticates every chunk, so a changed byte stops decryption).
    #[error("cannot decrypt the backup: {0}")]
    Decrypt(String),
    /// The archive inside is not one this version wrote (a file missing, unexpected, or a
    /// manifest it cannot read).
    #[error("the backup is malformed: {0}")]
    Malformed(String),
    /// `pg_dump` or `pg_restore` failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its exit status and the last line it printed.
        detail: String,
    },
    /// A restore was pointed at a store or data directory that already holds data.
    #[error("refused: {0} is not empty (a restore never overwrites)")]
    NotEmpty(String),
    /// Restored or copied databases do not hold what their source does (the manifest, the
    /// SQLite stores).
    #[error("check failed: {0}")]
    Mismatch(String),
}

impl BackupError {
    /// A `File` error for `path`.
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BackupError::File { path, source }
    }

    /// Whether the operator must fix the command (exit 2) rather than something failing (1).
    pub fn is_usage(&self) -> bool {
        matches!(self, BackupError::Usage(_) | BackupError::NotEmpty(_))
    }
}
