//! The encrypted tables of `tables::ALL` as key management sees them: how many values each data
//! key protects, and the rows re-encryption reads and writes back.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::crypto::KeyError;
use crate::crypto::tables::{ALL, EncryptedTable, Protected};
use crate::storage::Storage;

/// A row of an encrypted table, its values as stored (or as re-sealed).
pub struct SealedRow {
    /// Its id.
    pub row_id: String,
    /// The key its values were read under.
    pub key_id: i64,
    /// The patient it belongs to, if any.
    pub patient: Option<String>,
    /// The encrypted columns, in `table.columns` order.
    pub values: Vec<Option<Vec<u8>>>,
}

/// How many rows of `table` are under another key than `key_id`.
pub async fn count_under_other_keys(storage: &Storage, table: &EncryptedTable, key_id: u32) -> Result<i64, KeyError> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {} WHERE key_id <> $1", table.name)))
        .bind(i64::from(key_id))
        .fetch_one(storage.pool())
        .await?)
}

/// Up to `limit` rows of `table` after id `after` (in id order) that are under another key than
/// `key_id`.
pub async fn under_other_keys(
    storage: &Storage,
    table: &EncryptedTable,
    key_id: u32,
    after: &str,
    limit: u32,
) -> Result<Vec<SealedRow>, KeyError> {
    let columns = table.columns.join(", ");
    let select = format!(
        "SELECT {id}, key_id, {patient}, {columns} FROM {name} WHERE key_id <> $1 AND {id} > $2 ORDER BY {id} LIMIT $3",
        id = table.id_column,
        patient = table.patient_column,
        name = table.name
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(i64::from(key_id))
        .bind(after.to_owned())
        .bind(i64::from(limit))
        .fetch_all(storage.pool())
        .await?;
    let mut sealed = Vec::with_capacity(rows.len());
    for row in &rows {
        let values = (0..table.columns.len()).map(|i| row.try_get(3 + i)).collect::<Result<_, _>>()?;
        sealed.push(SealedRow { row_id: row.try_get(0)?, key_id: row.try_get(1)?, patient: row.try_get(2)?, values });
    }
    Ok(sealed)
}

/// Up to `limit` rows of `table` after id `after` (in id order), whatever their key: a backup's
/// verification opens every value.
pub async fn page(
    storage: &Storage,
    table: &EncryptedTable,
    after: &str,
    limit: u32,
) -> Result<Vec<SealedRow>, KeyError> {
    let columns = table.columns.join(", ");
    let select = format!(
        "SELECT {id}, key_id, {patient}, {columns} FROM {name} WHERE {id} > $1 ORDER BY {id} LIMIT $2",
        id = table.id_column,
        patient = table.patient_column,
        name = table.name
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(after.to_owned())
        .bind(i64::from(limit))
        .fetch_all(storage.pool())
        .await?;
    let mut sealed = Vec::with_capacity(rows.len());
    for row in &rows {
        let values = (0..table.columns.len()).map(|i| row.try_get(3 + i)).collect::<Result<_, _>>()?;
        sealed.push(SealedRow { row_id: row.try_get(0)?, key_id: row.try_get(1)?, patient: row.try_get(2)?, values });
    }
    Ok(sealed)
}

/// Writes `rows` back sealed under `key_id`, each only if it is still under the key it was read
/// with, in one transaction; returns how many were written.
pub async fn rewrite(
    storage: &Storage,
    table: &EncryptedTable,
    key_id: u32,
    rows: Vec<SealedRow>,
) -> Result<usize, KeyError> {
    let assignments = table.columns.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 2)).collect::<Vec<_>>();
    let n = table.columns.len();
    let update = format!(
        "UPDATE {name} SET key_id = $1, {assignments} WHERE {id} = ${row} AND key_id = ${old}",
        name = table.name,
        assignments = assignments.join(", "),
        id = table.id_column,
        row = n + 2,
        old = n + 3
    );
    let mut rewritten = 0;
    let mut tx = storage.pool().begin().await?;
    for row in rows {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(i64::from(key_id));
        for value in row.values {
            query = query.bind(value);
        }
        let done = query.bind(row.row_id).bind(row.key_id).execute(&mut *tx).await?;
        rewritten += usize::try_from(done.rows_affected()).unwrap_or(0);
    }
    tx.commit().await?;
    Ok(rewritten)
}

/// Rows and values of `table` per key id.
async fn protected(storage: &Storage, table: &EncryptedTable) -> Result<BTreeMap<u32, Protected>, KeyError> {
    // Identifiers come from the constants of `tables`, never from input.
    let values = table.columns.iter().map(|c| format!("COUNT({c})")).collect::<Vec<_>>().join(" + ");
    let sql = format!("SELECT key_id, COUNT(*), {values} FROM {} GROUP BY key_id", table.name);
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(storage.pool()).await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let key_id: i64 = row.try_get(0)?;
        let count = |i| row.try_get::<i64, _>(i).map(|n| u64::try_from(n).unwrap_or(0));
        let key_id = u32::try_from(key_id).map_err(|_| KeyError::Corrupt { key_id: 0, what: "key id out of range" })?;
        out.insert(key_id, Protected { rows: count(1)?, values: count(2)? });
    }
    Ok(out)
}

/// Rows and values protected by each data key, over every encrypted table.
pub async fn protected_by_key(storage: &Storage) -> Result<BTreeMap<u32, Protected>, KeyError> {
    let mut total: BTreeMap<u32, Protected> = BTreeMap::new();
    for table in ALL {
        for (key_id, p) in protected(storage, table).await? {
            let entry = total.entry(key_id).or_default();
            entry.rows += p.rows;
            entry.values += p.values;
        }
    }
    Ok(total)
}
