//! Every statement of backups: the consistent snapshot of a store (SQLite `VACUUM INTO`; a
//! PostgreSQL transaction whose snapshot `pg_dump` shares), and what the manifest says about a
//! store, read inside that same snapshot: each table's rows, the migration level, the audit
//! chains' heads.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Row};

use crate::audit::checkpoint::to_hex;
use crate::storage::{Backend, Storage, StorageError};

use super::manifest::AuditHead;

/// What the manifest records of one store, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Description {
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
    /// The newest migration applied.
    pub migration_level: i64,
    /// How many were applied.
    pub migrations: i64,
    /// Each audit chain's newest entry (the audit store only).
    pub audit_heads: Vec<AuditHead>,
}

/// SQLite: writes a consistent copy of the whole database to `into` (which must not exist),
/// inside one read transaction, while writers go on.
pub async fn vacuum_into(storage: &Storage, into: &Path) -> Result<(), StorageError> {
    let path = into.to_str().ok_or(StorageError::NonUtf8Path)?;
    let literal = path.replace('\'', "''");
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{literal}'"))).execute(storage.pool()).await?;
    Ok(())
}

/// PostgreSQL: a connection holding a read-only repeatable-read transaction, and the id of its
/// exported snapshot for `pg_dump --snapshot`. Keep the connection until the dump is done.
pub async fn begin_snapshot(storage: &Storage) -> Result<(PoolConnection<Any>, String), StorageError> {
    let mut conn = storage.pool().acquire().await?;
    sqlx::query("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *conn).await?;
    let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *conn).await?;
    Ok((conn, id))
}

/// Ends a snapshot begun by [`begin_snapshot`].
pub async fn end_snapshot(mut conn: PoolConnection<Any>) -> Result<(), StorageError> {
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}

/// The store's own tables, by name.
pub async fn tables(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<String>, StorageError> {
    Ok(sqlx::query_scalar(backend.tables_sql()).fetch_all(conn).await?)
}

/// Describes the store `conn` reaches (inside its current transaction, if any); `audit`: also
/// the chains' heads.
pub async fn describe(conn: &mut AnyConnection, backend: Backend, audit: bool) -> Result<Description, StorageError> {
    let mut description = Description::default();
    for table in tables(conn, backend).await? {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", quoted(&table))))
            .fetch_one(&mut *conn)
            .await?;
        description.tables.insert(table, rows);
    }
    if description.tables.contains_key("_sqlx_migrations") {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0), COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await?;
        description.migration_level = row.try_get(0)?;
        description.migrations = row.try_get(1)?;
    }
    if audit && description.tables.contains_key("audit_entries") {
        let rows = sqlx::query(
            "SELECT e.node_id, e.seq, e.hash FROM audit_entries e \
             JOIN (SELECT node_id, MAX(seq) AS seq FROM audit_entries GROUP BY node_id) h \
             ON e.node_id = h.node_id AND e.seq = h.seq ORDER BY e.node_id",
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let hash: Vec<u8> = row.try_get(2)?;
            description.audit_heads.push(AuditHead {
                node_id: row.try_get(0)?,
                seq: row.try_get(1)?,
                hash: to_hex(&hash),
            });
        }
    }
    Ok(description)
}

/// Describes the store outside any transaction (a SQLite copy nobody else writes, a restored
/// database).
pub async fn describe_store(storage: &Storage, audit: bool) -> Result<Description, StorageError> {
    let mut conn = storage.pool().acquire().await?;
    describe(&mut conn, storage.backend(), audit).await
}

/// Whether the store holds no table at all (a restore's target must not).
pub async fn is_empty(storage: &Storage) -> Result<bool, StorageError> {
    let mut conn = storage.pool().acquire().await?;
    Ok(tables(&mut conn, storage.backend()).await?.is_empty())
}

/// A table name as an SQL identifier. Names come from the engine's own catalogue, never from
/// input; quoting keeps any name a later migration picks a single identifier.
pub fn quoted(table: &str) -> String {
    format!("\"{}\"", table.replace('"', "\"\""))
}
