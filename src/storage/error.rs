//! Errors of the storage layer. None of them carries row data: they hold sqlx errors, whose
//! text names statements and constraints, never bound values.

/// What can go wrong talking to a database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached or refused the connection (dependency down).
    #[error("cannot connect to the {store}")]
    Connect {
        /// Which store.
        store: &'static str,
        /// Driver error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; the store is left at the last good version.
    #[error("migrating the {store} failed")]
    Migrate {
        /// Which store.
        store: &'static str,
        /// Migrator error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The data directory cannot hold the SQLite file.
    #[error("cannot use the data directory")]
    DataDir {
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The connection does not enforce foreign keys (a SQLite build or driver change); running
    /// would let references dangle, so the store is refused.
    #[error("the {store} does not enforce foreign keys")]
    ForeignKeysOff {
        /// Which store.
        store: &'static str,
    },
    /// SQLite file paths must be UTF-8 to go into a connection URL.
    #[error("the data directory path is not valid UTF-8")]
    NonUtf8Path,
    /// Preparing a batch for the database failed (the encoding task panicked: our bug).
    #[error("could not encode the batch")]
    Encode,
    /// A stored value does not have the shape its column promises (a malformed id): a bug or
    /// tampering, never input.
    #[error("malformed stored value in {column}")]
    Corrupt {
        /// The column.
        column: &'static str,
    },
    /// A query failed: a dependency outage (pool timeout, I/O) or a bug (bad SQL, constraint).
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

impl StorageError {
    /// True when the cause is the database being unreachable or overloaded rather than a bug:
    /// callers answer 503 instead of 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StorageError::Connect { .. } => true,
            StorageError::Query(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}
