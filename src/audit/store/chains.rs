//! Reading `audit_entries` back: every chain's span, single entries and hashes, whole chains.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::COLUMNS;
use super::pages::PAGE;
use crate::audit::chain::AuditRow;
use crate::storage::{Storage, StorageError};

/// What the store holds of one node's chain: its lowest and highest seq and how many entries.
pub(in crate::audit) struct Span {
    /// Whose chain.
    pub node_id: String,
    /// Its lowest seq.
    pub first: i64,
    /// Its highest seq.
    pub last: i64,
    /// How many entries it holds.
    pub count: i64,
}

impl Span {
    /// Pages `(node, from, to)` over `count` consecutive seqs from `first`: all of an intact
    /// chain, and at least up to its first gap otherwise.
    pub fn pages(&self) -> impl Iterator<Item = (String, i64, i64)> + '_ {
        let end = self.first + self.count;
        (self.first..end).step_by(PAGE as usize).map(move |from| (self.node_id.clone(), from, (from + PAGE).min(end)))
    }
}

/// The span of every chain, in node order.
pub(in crate::audit) async fn spans(storage: &Storage) -> Result<Vec<Span>, StorageError> {
    let rows = sqlx::query(
        "SELECT node_id, MIN(seq), MAX(seq), COUNT(*) FROM audit_entries GROUP BY node_id ORDER BY node_id",
    )
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Span { node_id: row.try_get(0)?, first: row.try_get(1)?, last: row.try_get(2)?, count: row.try_get(3)? })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StorageError::from)
}

/// The lowest seq above `after` in `node`'s chain.
pub(in crate::audit) async fn next_seq(storage: &Storage, node: &str, after: i64) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar("SELECT MIN(seq) FROM audit_entries WHERE node_id = $1 AND seq > $2")
        .bind(node.to_owned())
        .bind(after)
        .fetch_one(storage.pool())
        .await?)
}

/// The stored hash of entry `seq` of `node_id`'s chain.
pub(in crate::audit) async fn entry_hash(storage: &Storage, node_id: &str, seq: i64) -> Result<Vec<u8>, StorageError> {
    Ok(sqlx::query_scalar("SELECT hash FROM audit_entries WHERE node_id = $1 AND seq = $2")
        .bind(node_id.to_owned())
        .bind(seq)
        .fetch_one(storage.pool())
        .await?)
}

/// Every entry of `node`'s chain, in order (for export and tests).
pub async fn read_chain(
    storage: &Storage,
    node: &confidant_actors::ids::NodeId,
) -> Result<Vec<AuditRow>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM audit_entries WHERE node_id = $1 ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(node.to_string()).fetch_all(storage.pool()).await?;
    Ok(rows.iter().map(decode).collect::<Result<_, _>>()?)
}

/// Reads an `audit_entries` row selected with [`COLUMNS`].
fn decode(row: &AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        node_id: row.try_get(0)?,
        seq: row.try_get(1)?,
        event_id: row.try_get(2)?,
        at_ms: row.try_get(3)?,
        actor_kind: row.try_get(4)?,
        actor_user_id: row.try_get(5)?,
        actor_role: row.try_get(6)?,
        session_id: row.try_get(7)?,
        request_id: row.try_get(8)?,
        source_ip: row.try_get(9)?,
        action: row.try_get(10)?,
        resource_type: row.try_get(11)?,
        resource_id: row.try_get(12)?,
        patient_id: row.try_get(13)?,
        outcome: row.try_get(14)?,
        reason: row.try_get(15)?,
        prev_hash: row.try_get(16)?,
        hash: row.try_get(17)?,
    })
}

/// The entries with `since_ms <= at_ms < until_ms`, oldest first, read as they are needed.
pub(in crate::audit) fn entries_between(
    storage: &Storage,
    since_ms: i64,
    until_ms: i64,
) -> BoxStream<'_, Result<AuditRow, StorageError>> {
    let sql =
        format!("SELECT {COLUMNS} FROM audit_entries WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, node_id, seq");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(since_ms)
        .bind(until_ms)
        .fetch(storage.pool())
        .map(|row| Ok(decode(&row?)?))
        .boxed()
}
