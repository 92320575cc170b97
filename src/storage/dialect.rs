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
static AUDIT_SQLITE: Migrator = sqlx::migrate!("./migrations/audit/sqlite");
static AUDIT_POSTGRES: Migrator = sqlx::migrate!("./migrations/audit/postgres");

impl Backend {
    /// Per-connection set-up. SQLite: write-ahead log (readers never block the writer) and
    /// foreign keys enforced (sqlx enables them too; stating it keeps the guarantee independent
    /// of driver defaults). `synchronous` is NORMAL for the main store (durable across process
    /// crashes) and FULL for the audit store, whose acknowledgements promise durability even
    /// across a power loss.
    pub(super) fn configure(self, store: Store, options: AnyPoolOptions) -> AnyPoolOptions {
        let pragmas = match store {
            Store::Main => "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            Store::Audit => "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        };
        match self {
            Backend::Postgres => options,
            Backend::Sqlite => options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            }),
        }
    }

    /// The embedded migrations for `store` in this dialect.
    pub(super) fn migrator(self, store: Store) -> &'static Migrator {
        match (store, self) {
            (Store::Main, Backend::Sqlite) => &MAIN_SQLITE,
            (Store::Main, Backend::Postgres) => &MAIN_POSTGRES,
            (Store::Audit, Backend::Sqlite) => &AUDIT_SQLITE,
            (Store::Audit, Backend::Postgres) => &AUDIT_POSTGRES,
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
