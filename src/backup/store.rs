//! Every statement of backups: the consistent snapshot of a store (SQLite `VACUUM INTO`; a
//! PostgreSQL transaction whose snapshot `pg_dump` and the binary `COPY` of bulky tables
//! share), and what the manifest says about a store, read inside that same snapshot: each
//! table's rows, the migration level, the audit chains' heads.

use std::collections::BTreeMap;
use std::path::Path;

use futures_util::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Any, AnyConnection, Connection, Row};
use tokio::io::AsyncWriteExt;

use crate::audit::checkpoint::to_hex;
use crate::storage::{Backend, Storage, StorageError};

use super::BackupError;
use super::manifest::AuditHead;
use crate::settings::DatabaseUrl;

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

/// PostgreSQL: writes `table`'s rows as the exported `snapshot` sees them into `into`, in the
/// binary `COPY` format (a `bytea` column as its bytes, where `pg_dump` writes hex text of twice
/// the size); returns the bytes written. Its own connection, so it runs beside `pg_dump`.
pub async fn copy_out(url: &DatabaseUrl, snapshot: &str, table: &str, into: &Path) -> Result<u64, BackupError> {
    let mut conn = PgConnection::connect(url.expose()).await.map_err(StorageError::from)?;
    sqlx::raw_sql("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(StorageError::from)?;
    // The id comes from `pg_export_snapshot()`; quoted all the same.
    let set = format!("SET TRANSACTION SNAPSHOT '{}'", snapshot.replace('\'', "''"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(set)).execute(&mut conn).await.map_err(StorageError::from)?;
    let file = tokio::fs::File::create(into).await.map_err(BackupError::file(into))?;
    let mut out = tokio::io::BufWriter::with_capacity(COPY_BUFFER, file);
    let statement = format!("COPY {} TO STDOUT (FORMAT binary)", quoted(table));
    let mut written = 0u64;
    {
        let mut rows = conn.copy_out_raw(&statement).await.map_err(StorageError::from)?;
        while let Some(chunk) = rows.next().await {
            let chunk = chunk.map_err(StorageError::from)?;
            out.write_all(&chunk).await.map_err(BackupError::file(into))?;
            written += chunk.len() as u64;
        }
    }
    out.flush().await.map_err(BackupError::file(into))?;
    out.into_inner().sync_all().await.map_err(BackupError::file(into))?;
    sqlx::raw_sql("COMMIT").execute(&mut conn).await.map_err(StorageError::from)?;
    conn.close().await.map_err(StorageError::from)?;
    Ok(written)
}

/// PostgreSQL: loads a file written by [`copy_out`] into `table` (which exists, with the same
/// columns); returns the rows loaded. One statement: it loads all or nothing.
pub async fn copy_in(url: &DatabaseUrl, table: &str, from: &Path) -> Result<u64, BackupError> {
    let mut conn = PgConnection::connect(url.expose()).await.map_err(StorageError::from)?;
    let file = tokio::fs::File::open(from).await.map_err(BackupError::file(from))?;
    let statement = format!("COPY {} FROM STDIN (FORMAT binary)", quoted(table));
    let mut copy = conn.copy_in_raw(&statement).await.map_err(StorageError::from)?;
    let read = copy.read_from(tokio::io::BufReader::with_capacity(COPY_BUFFER, file)).await.map(|_| ());
    if let Err(error) = read {
        // Ends the statement (rolled back) so the connection closes cleanly; the read's error
        // is the one to report.
        let _ = copy.abort("the backup's table file could not be read").await;
        return Err(StorageError::from(error).into());
    }
    let rows = copy.finish().await.map_err(StorageError::from)?;
    conn.close().await.map_err(StorageError::from)?;
    Ok(rows)
}

/// The buffer between a table file and its `COPY`: large enough that a file system call moves
/// many rows' worth at once.
const COPY_BUFFER: usize = 1 << 20;

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

/// A column of a PostgreSQL table, as a store copy writes it.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type as PostgreSQL names it (`bigint`, `integer`, `text`, `bytea`).
    pub data_type: String,
    /// Whether it takes its default from a sequence (a `BIGSERIAL`).
    pub serial: bool,
}

/// The columns of `table` in the PostgreSQL store `storage`, in order.
pub async fn postgres_columns(storage: &Storage, table: &str) -> Result<Vec<Column>, StorageError> {
    let rows = sqlx::query(
        "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT), CAST(COALESCE(column_default, '') AS TEXT) \
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
         ORDER BY ordinal_position",
    )
    .bind(table.to_owned())
    .fetch_all(storage.pool())
    .await?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let default: String = row.try_get(2)?;
        columns.push(Column {
            name: row.try_get(0)?,
            data_type: row.try_get(1)?,
            serial: default.starts_with("nextval("),
        });
    }
    Ok(columns)
}

/// The PostgreSQL store's tables in an order that inserts every referenced row before the rows
/// referring to it (its foreign keys, from the catalogue).
pub async fn postgres_tables_in_reference_order(storage: &Storage) -> Result<Vec<String>, StorageError> {
    let mut conn = storage.pool().acquire().await?;
    let mut left = tables(&mut conn, Backend::Postgres).await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(c.relname AS TEXT), CAST(p.relname AS TEXT) FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype = 'f' AND n.nspname = current_schema() AND c.relname <> p.relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ordered = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| !edges.iter().any(|(child, parent)| child == *t && left.contains(parent)))
            .cloned()
            .collect();
        if ready.is_empty() {
            // A cycle of references: insert the rest as they come (none exists today).
            ordered.append(&mut left);
            break;
        }
        left.retain(|t| !ready.contains(t));
        ordered.extend(ready);
    }
    Ok(ordered)
}

/// One value of a row being copied, typed by its PostgreSQL column.
#[derive(Debug, Clone)]
pub enum Value {
    /// `bigint`, `integer`, `smallint`.
    Integer(Option<i64>),
    /// `bytea`.
    Bytes(Option<Vec<u8>>),
    /// Everything else, as text (cast by PostgreSQL on insert).
    Text(Option<String>),
}

/// Up to `limit` rows of the SQLite `table` after `after_rowid` in insertion order, each value
/// read as its PostgreSQL column's type; returns the rows and the last rowid read.
pub async fn sqlite_rows(
    storage: &Storage,
    table: &str,
    columns: &[Column],
    after_rowid: i64,
    limit: u32,
) -> Result<(Vec<Vec<Value>>, i64), StorageError> {
    let list = columns.iter().map(|c| quoted(&c.name)).collect::<Vec<_>>().join(", ");
    let select = format!("SELECT rowid, {list} FROM {} WHERE rowid > $1 ORDER BY rowid LIMIT $2", quoted(table));
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(after_rowid)
        .bind(i64::from(limit))
        .fetch_all(storage.pool())
        .await?;
    let mut last = after_rowid;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        last = row.try_get(0)?;
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            values.push(match column.data_type.as_str() {
                "bigint" | "integer" | "smallint" => Value::Integer(row.try_get(i + 1)?),
                "bytea" => Value::Bytes(row.try_get(i + 1)?),
                _ => Value::Text(row.try_get(i + 1)?),
            });
        }
        out.push(values);
    }
    Ok((out, last))
}

/// Inserts `rows` into the PostgreSQL `table` in one transaction, each value cast to its
/// column's type.
pub async fn postgres_insert(
    storage: &Storage,
    table: &str,
    columns: &[Column],
    rows: Vec<Vec<Value>>,
) -> Result<(), StorageError> {
    let names = columns.iter().map(|c| quoted(&c.name)).collect::<Vec<_>>().join(", ");
    let params =
        columns.iter().enumerate().map(|(i, c)| format!("CAST(${} AS {})", i + 1, c.data_type)).collect::<Vec<_>>();
    let insert = format!("INSERT INTO {} ({names}) VALUES ({})", quoted(table), params.join(", "));
    let mut tx = storage.begin().await?;
    for row in rows {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
        for value in row {
            query = match value {
                Value::Integer(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
            };
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves the sequence behind a `BIGSERIAL` column past the values copied into it.
pub async fn postgres_advance_sequence(storage: &Storage, table: &str, column: &str) -> Result<(), StorageError> {
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
        quoted(column),
        quoted(table)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(table.to_owned())
        .bind(column.to_owned())
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// The `backup_schedule` row: how the scheduled backups went (times, a file name, a size, a
/// reason code; no PHI).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleRow {
    /// When the newest scheduled backup started (UTC ms).
    pub last_started_at_ms: Option<i64>,
    /// When the newest one that succeeded ended.
    pub last_success_at_ms: Option<i64>,
    /// Its file's name, in the backup directory.
    pub last_success_file: Option<String>,
    /// Its size.
    pub last_success_bytes: Option<i64>,
    /// When the newest one that failed ended.
    pub last_failure_at_ms: Option<i64>,
    /// Why, as a reason code (`file`, `storage`, `tool`, ...).
    pub last_failure: Option<String>,
}

/// Takes the scheduled backup that is due for `owner`: succeeds (true) only if none started at
/// or after `due_before` and no other node's lease runs past `now_ms`. One conditional update, so
/// of several nodes asking at once, one wins.
pub async fn claim_scheduled(
    storage: &Storage,
    owner: &str,
    now_ms: i64,
    due_before: i64,
    lease_until_ms: i64,
) -> Result<bool, StorageError> {
    // The row is made by the first claim of a practice (migrations seed no rows).
    sqlx::query("INSERT INTO backup_schedule (schedule_id) VALUES (1) ON CONFLICT (schedule_id) DO NOTHING")
        .execute(storage.pool())
        .await?;
    let claimed = sqlx::query(
        "UPDATE backup_schedule SET lease_owner = $1, lease_until_ms = $2, last_started_at_ms = $3 \
         WHERE schedule_id = 1 AND (last_started_at_ms IS NULL OR last_started_at_ms < $4) \
         AND (lease_until_ms IS NULL OR lease_until_ms < $3)",
    )
    .bind(owner)
    .bind(lease_until_ms)
    .bind(now_ms)
    .bind(due_before)
    .execute(storage.pool())
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Records that `owner`'s scheduled backup succeeded, into `file` of `bytes`, and frees the lease.
pub async fn record_scheduled_success(
    storage: &Storage,
    owner: &str,
    at_ms: i64,
    file: &str,
    bytes: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE backup_schedule SET last_success_at_ms = $2, last_success_file = $3, last_success_bytes = $4, \
         lease_owner = NULL, lease_until_ms = NULL WHERE schedule_id = 1 AND lease_owner = $1",
    )
    .bind(owner)
    .bind(at_ms)
    .bind(file)
    .bind(bytes)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Records that `owner`'s scheduled backup failed for `reason` (a reason code), and frees the
/// lease.
pub async fn record_scheduled_failure(
    storage: &Storage,
    owner: &str,
    at_ms: i64,
    reason: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE backup_schedule SET last_failure_at_ms = $2, last_failure = $3, lease_owner = NULL, \
         lease_until_ms = NULL WHERE schedule_id = 1 AND lease_owner = $1",
    )
    .bind(owner)
    .bind(at_ms)
    .bind(reason)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The `backup_schedule` row (all empty before the first scheduled backup).
pub async fn scheduled(storage: &Storage) -> Result<ScheduleRow, StorageError> {
    let row = sqlx::query(
        "SELECT last_started_at_ms, last_success_at_ms, last_success_file, last_success_bytes, \
         last_failure_at_ms, last_failure FROM backup_schedule WHERE schedule_id = 1",
    )
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(ScheduleRow::default()) };
    Ok(ScheduleRow {
        last_started_at_ms: row.try_get(0)?,
        last_success_at_ms: row.try_get(1)?,
        last_success_file: row.try_get(2)?,
        last_success_bytes: row.try_get(3)?,
        last_failure_at_ms: row.try_get(4)?,
        last_failure: row.try_get(5)?,
    })
}

/// After a restore: the lease a scheduled backup held while the backup was taken belongs to no
/// node of the restored practice.
pub async fn free_schedule_lease(storage: &Storage) -> Result<(), StorageError> {
    sqlx::query("UPDATE backup_schedule SET lease_owner = NULL, lease_until_ms = NULL WHERE schedule_id = 1")
        .execute(storage.pool())
        .await?;
    Ok(())
}
