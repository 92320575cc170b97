//! Relational storage through sqlx. One [`Storage`] per database (the main store and, separately,
//! the audit store). Query code is written once against sqlx's `Any` driver with `$N`
//! placeholders, which both SQLite and PostgreSQL accept; everything that differs between the
//! two dialects lives in [`dialect`].

mod dialect;
mod error;
pub mod json_rows;
mod location;
pub mod nodes;
mod writer;

use std::path::Path;
use std::sync::Once;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use dialect::{Backend, MessageBatchSql};
pub use error::StorageError;
pub use location::{Location, Store};
pub(crate) use writer::Writer;

use crate::settings::{DatabaseSettings, DatabaseUrl};

/// A pooled connection to one database.
#[derive(Clone, Debug)]
pub struct Storage {
    pool: AnyPool,
    /// One connection, for a batching writer ([`Storage::writer`]).
    writer: Writer,
    backend: Backend,
    store: Store,
    location: Location,
}

impl Storage {
    /// Connects to `store` at `location` (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(store: Store, location: &Location, pool: &DatabaseSettings) -> Result<Self, StorageError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = match location {
            Location::Sqlite(path) => (Backend::Sqlite, sqlite_url(path)?),
            Location::Postgres(url) => (Backend::Postgres, url.expose().to_owned()),
        };
        let acquire_timeout = pool.acquire_timeout();
        let options = AnyPoolOptions::new().max_connections(pool.max_connections).acquire_timeout(acquire_timeout);
        let connect_error = |source| StorageError::Connect { store: store.name(), source };
        let pool = backend.configure(store, options).connect(&url).await.map_err(connect_error)?;
        let writer = AnyPoolOptions::new().max_connections(1).acquire_timeout(acquire_timeout);
        let writer = backend.configure(store, writer).connect(&url).await.map_err(connect_error)?;
        let writer = Writer::connect(writer).await.map_err(connect_error)?;
        let storage = Self { pool, writer, backend, store, location: location.clone() };
        if !storage.foreign_keys_enforced().await? {
            return Err(StorageError::ForeignKeysOff { store: store.name() });
        }
        Ok(storage)
    }

    /// Applies the store's pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StorageError> {
        let migrator = self.backend.migrator(self.store);
        let applied = self.applied_versions().await?;
        let pending =
            migrator.iter().filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
        if pending.count() == 0 {
            // Nothing to do, so touch nothing: a role without DDL rights (the audit store's
            // insert-only role) can start a node whose schema is current.
            return Ok(0);
        }
        migrator.run(&self.pool).await.map_err(|source| StorageError::Migrate { store: self.store.name(), source })?;
        Ok(self.applied_versions().await?.len().saturating_sub(applied.len()))
    }

    /// Versions of the migrations this database has applied (none before the first run).
    async fn applied_versions(&self) -> Result<Vec<i64>, StorageError> {
        let table_exists: i64 =
            sqlx::query_scalar(self.backend.migrations_table_exists_sql()).fetch_one(&self.pool).await?;
        if table_exists == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Whether the database enforces foreign keys on a pooled connection. Always true on
    /// PostgreSQL; on SQLite it depends on a per-connection pragma, so it is checked at connect.
    pub async fn foreign_keys_enforced(&self) -> Result<bool, StorageError> {
        match self.backend {
            Backend::Postgres => Ok(true),
            Backend::Sqlite => {
                let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&self.pool).await?;
                Ok(on == 1)
            }
        }
    }

    /// The same store on connections of its own, opened on the calling runtime. At shutdown
    /// the pool's PostgreSQL connections may have been opened by the HTTP workers, whose
    /// runtimes are stopped by then: every statement on one fails ("a Tokio 1.x context was
    /// found but it is being shutdown").
    pub async fn reopened(&self) -> Result<Self, StorageError> {
        Self::connect(self.store, &self.location, &DatabaseSettings { max_connections: 1, acquire_timeout_secs: 5 })
            .await
    }

    /// Cheap round trip for readiness checks.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Which dialect this database speaks.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL database this storage connects to, for the one job that needs the native
    /// driver rather than the pool's `Any` driver (audit verification streams its pages with
    /// `COPY`); `None` on SQLite.
    pub(crate) fn postgres_url(&self) -> Option<&DatabaseUrl> {
        match &self.location {
            Location::Postgres(url) => Some(url),
            Location::Sqlite(_) => None,
        }
    }

    /// The pool, for the query modules of this crate.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction on a pooled connection, for a change that writes several tables at once
    /// (an event and the alerts it raises).
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StorageError> {
        Ok(self.pool.begin().await?)
    }

    /// One connection, for a writer that commits batch after batch (the audit writer, the
    /// message ingest), kept out of the pool between batches ([`Writer`]). sqlx hands out idle
    /// connections in turn, and a SQLite connection throws away its page cache whenever another
    /// connection wrote since its last use, so batches spread over the pool re-read their pages
    /// every time (at 6,700 messages/s: ~5 reads from the log per message) and wake a different
    /// worker thread each; on one connection the pages stay cached.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The pool, for tests and benchmarks that inspect the database directly.
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    /// SQLite: copies the write-ahead log back into the database file every `every`, on a pooled
    /// connection and without blocking writers (`PRAGMA wal_checkpoint(PASSIVE)`). SQLite's own
    /// checkpoint runs inside whichever commit crosses its threshold and makes that commit's
    /// callers wait for the whole copy and its fsync: at ~10,000 messages/s that was the message
    /// ingest's p99. Often and small beats seldom and large: on one core a checkpoint's copy and
    /// fsync hold up the commits beside it, so its length is what the p99 pays (at 9,500
    /// messages/s, checkpointing every 50 ms instead of every 250 ms took the delivery p99 from
    /// 11.6 to 5.4 ms), and an empty log costs one trip to the database. The main store keeps the automatic one as a backstop at a higher threshold
    /// (`Backend::configure`). Stops when the pool is closed. Nothing to do on PostgreSQL.
    pub fn start_wal_checkpoints(&self, every: std::time::Duration) {
        let Some(sql) = self.backend.wal_checkpoint_sql() else { return };
        let storage = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !storage.pool.is_closed() {
                ticks.tick().await;
                if let Err(error) = sqlx::query(sql).execute(&storage.pool).await
                    && !storage.pool.is_closed()
                {
                    tracing::warn!(%error, store = storage.store.name(), "background WAL checkpoint failed");
                }
            }
        });
    }

    /// Waits for checked-out connections to return, then closes them (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// `sqlite://` URL for a file, created if missing. The path is percent-encoded so any file
/// name survives the URL round trip.
fn sqlite_url(path: &Path) -> Result<String, StorageError> {
    let absolute = std::path::absolute(path).map_err(|source| StorageError::DataDir { source })?;
    let text = absolute.to_str().ok_or(StorageError::NonUtf8Path)?;
    const UNSAFE_IN_URL_PATH: &AsciiSet =
        &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#').add(b'"').add(b'<').add(b'>');
    Ok(format!("sqlite://{}?mode=rwc", utf8_percent_encode(text, UNSAFE_IN_URL_PATH)))
}

/// Parses a stored id column (a UUID newtype); a malformed value is [`StorageError::Corrupt`].
pub fn parse_id<T: std::str::FromStr>(text: &str, column: &'static str) -> Result<T, StorageError> {
    text.parse().map_err(|_| StorageError::Corrupt { column })
}
