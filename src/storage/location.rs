//! Which database a `Storage` is (the main store or the audit store) and where it lives: its
//! configured PostgreSQL URL, or its SQLite file in the data directory.

use std::path::PathBuf;

use crate::settings::{DatabaseUrl, Settings};

/// Which of Confidant's databases a `Storage` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Users, patients, schedules, encrypted PHI columns, message ciphertext.
    Main,
    /// The append-only audit trail, kept apart from the data it describes.
    Audit,
}

impl Store {
    /// File name used when the store lives in the data directory.
    pub(super) fn sqlite_file(self) -> &'static str {
        match self {
            Store::Main => "confidant.db",
            Store::Audit => "audit.db",
        }
    }

    /// Name used in logs and readiness reports.
    pub fn name(self) -> &'static str {
        match self {
            Store::Main => "database",
            Store::Audit => "audit_database",
        }
    }
}

/// Where a store lives, resolved from the settings.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file, created on first use.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(DatabaseUrl),
}

impl Location {
    /// The configured URL for `store`, or its SQLite file in the data directory.
    pub fn of(store: Store, settings: &Settings) -> Self {
        let url = match store {
            Store::Main => &settings.database_url,
            Store::Audit => &settings.audit_database_url,
        };
        match url {
            Some(url) => Location::Postgres(url.clone()),
            None => Location::Sqlite(settings.data_dir.join(store.sqlite_file())),
        }
    }
}
