//! The one place that knows SQLite and PostgreSQL apart: connection set-up, the migration trees,
//! and the few statements the two dialects cannot share.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use super::Store;

/// SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded default: one file per store in the data directory.
    Sqlite,
    /// Production: separate databases for the main and audit stores.
    Postgres,
}

static MAIN_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MAIN_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

impl Backend {
    /// Per-connection set-up. SQLite: write-ahead log (readers never block the writer),
    /// `synchronous = NORMAL` (durable across application crashes; WAL makes it safe), foreign
    /// keys enforced. sqlx also enables foreign keys itself; stating it here keeps the
    /// guarantee visible and independent of driver defaults.
    pub(super) fn configure(self, options: AnyPoolOptions) -> AnyPoolOptions {
        match self {
            Backend::Postgres => options,
            Backend::Sqlite => options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            }),
        }
    }

    /// The embedded migrations for `store` in this dialect.
    pub(super) fn migrator(self, store: Store) -> Option<&'static Migrator> {
        match (store, self) {
            (Store::Main, Backend::Sqlite) => Some(&MAIN_SQLITE),
            (Store::Main, Backend::Postgres) => Some(&MAIN_POSTGRES),
            (Store::Audit, _) => None,
        }
    }

    /// A query returning 1 when sqlx's migration table exists, else 0.
    pub(super) fn migrations_table_exists_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        }
    }
}
