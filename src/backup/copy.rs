//! Moving a practice from the embedded SQLite stores onto PostgreSQL (`confidant store copy`):
//! every row of every table, ciphertext as stored (nothing is decrypted), in an order that
//! respects the target's foreign keys, each audit chain in sequence; then the target is checked:
//! the same rows per table, the same chain heads, and the chains verified against the same
//! checkpoint files. Run it with the server stopped: the copy refuses a source that changed
//! while it ran.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;

use super::BackupError;
use super::store::{self, Description};
use crate::audit::{Evidence, Witnesses, verify_trail};
use crate::storage::{Backend, Storage};

/// Rows read and written per transaction.
const BATCH: u32 = 1_000;

/// The SQLite stores copied from and the PostgreSQL stores copied to.
pub struct Stores<'a> {
    /// Source main store (SQLite).
    pub from_main: &'a Storage,
    /// Source audit store (SQLite).
    pub from_audit: &'a Storage,
    /// Target main store (PostgreSQL, empty).
    pub to_main: &'a Storage,
    /// Target audit store (PostgreSQL, empty).
    pub to_audit: &'a Storage,
}

/// What the copy did.
#[derive(Debug)]
pub struct Copied {
    /// Tables copied.
    pub tables: usize,
    /// Rows copied.
    pub rows: i64,
    /// Audit chains verified on the target.
    pub chains: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Copies `stores`, then checks the target against the source and verifies its audit chains
/// with the checkpoint files of `checkpoint_dir`.
#[tracing::instrument(skip_all)]
pub async fn copy(
    stores: Stores<'_>,
    checkpoint_dir: PathBuf,
    local_chains: Vec<String>,
    pinned: Vec<VerifyingKey>,
) -> Result<Copied, BackupError> {
    let started = Instant::now();
    if stores.from_main.backend() != Backend::Sqlite || stores.from_audit.backend() != Backend::Sqlite {
        return Err(BackupError::Usage("the practice is already on PostgreSQL: nothing to copy".to_owned()));
    }
    if stores.to_main.backend() != Backend::Postgres || stores.to_audit.backend() != Backend::Postgres {
        return Err(BackupError::Usage("copy onto PostgreSQL: --to and --audit-to are postgres:// URLs".to_owned()));
    }
    for (target, name) in [(stores.to_main, "the target main"), (stores.to_audit, "the target audit")] {
        if !store::is_empty(target).await? {
            return Err(BackupError::NotEmpty(format!("{name} database")));
        }
        target.migrate().await?;
    }
    let before =
        (store::describe_store(stores.from_main, false).await?, store::describe_store(stores.from_audit, true).await?);
    let mut rows = 0;
    let mut tables = 0;
    for (from, to) in [(stores.from_main, stores.to_main), (stores.from_audit, stores.to_audit)] {
        for table in store::postgres_tables_in_reference_order(to).await? {
            if table == "_sqlx_migrations" {
                continue;
            }
            rows += copy_table(from, to, &table).await?;
            tables += 1;
        }
    }
    let after =
        (store::describe_store(stores.from_main, false).await?, store::describe_store(stores.from_audit, true).await?);
    if before.0.tables != after.0.tables || before.1.tables != after.1.tables {
        return Err(BackupError::Mismatch(
            "the SQLite stores changed during the copy: stop the server, empty the targets and copy again".to_owned(),
        ));
    }
    let target =
        (store::describe_store(stores.to_main, false).await?, store::describe_store(stores.to_audit, true).await?);
    for (source, copied, name) in [(&before.0, &target.0, "main"), (&before.1, &target.1, "audit")] {
        let differences = differences(source, copied);
        if !differences.is_empty() {
            return Err(BackupError::Mismatch(format!("the {name} store's copy: {}", differences.join("; "))));
        }
    }
    let witnesses = Witnesses::new([], Some(stores.to_main.clone()));
    let evidence = Evidence { checkpoint_dir, witnesses: &witnesses, heads: Vec::new(), pinned, local_chains };
    let report = verify_trail(stores.to_audit, evidence)
        .await
        .map_err(|e| BackupError::Mismatch(format!("the copied audit trail cannot be verified: {e}")))?;
    if let Some(broken) = report.broken {
        return Err(BackupError::Mismatch(format!("the copied audit trail: {broken}")));
    }
    let elapsed = started.elapsed();
    tracing::info!(tables, rows, elapsed_ms = elapsed.as_millis() as u64, "store copied onto PostgreSQL");
    Ok(Copied { tables, rows, chains: report.chains.len(), elapsed })
}

/// How the copy differs from its source: rows per table of the target (a table only SQLite's
/// migrations make, such as its purge guard, is how that dialect works, not data), chain heads.
fn differences(source: &Description, copied: &Description) -> Vec<String> {
    let mut found = Vec::new();
    for table in copied.tables.keys().filter(|t| *t != "_sqlx_migrations") {
        let (a, b) = (source.tables.get(table), copied.tables.get(table));
        if a != b {
            found.push(format!("{table}: {a:?} rows in the source, {b:?} in the copy"));
        }
    }
    if source.audit_heads != copied.audit_heads {
        found.push("the audit chains' heads differ".to_owned());
    }
    found
}

async fn copy_table(from: &Storage, to: &Storage, table: &str) -> Result<i64, BackupError> {
    let columns = store::postgres_columns(to, table).await?;
    let mut after = 0;
    let mut copied = 0;
    loop {
        let (rows, last) = store::sqlite_rows(from, table, &columns, after, BATCH).await?;
        let count = rows.len();
        if count == 0 {
            break;
        }
        store::postgres_insert(to, table, &columns, rows).await?;
        copied += count as i64;
        after = last;
        if count < BATCH as usize {
            break;
        }
    }
    for column in columns.iter().filter(|c| c.serial) {
        store::postgres_advance_sequence(to, table, &column.name).await?;
    }
    Ok(copied)
}
