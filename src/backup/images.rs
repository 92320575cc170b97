//! Store images as a backup holds them, and their way in and out of a database: the pool a
//! backup's stores are opened with, the PostgreSQL client tools (`pg_dump`, `pg_restore`) run
//! with the password kept out of their arguments, and the loading of an image into a store.

use std::fs;
use std::path::Path;

use super::BackupError;
use super::manifest::{self, StoreImage};
use super::store;
use crate::settings::{DatabaseSettings, DatabaseUrl};
use crate::storage::Location;

/// PostgreSQL tables whose rows a backup holds apart from the `pg_dump` archive, in the binary
/// `COPY` format: those whose bulk is `bytea`. `pg_dump` writes `bytea` as hex text, twice
/// its size, and at that a PostgreSQL backup of a practice whose bulk is attachments ran at
/// 59 MB/s, against 100 wanted (docs/PERFORMANCE.md). A restore loads them after `pg_restore`.
pub(crate) const COPIED_APART: &[&str] = &["attachments"];

/// The pool a backup, verification or restore opens a store with.
pub(crate) const POOL: DatabaseSettings = DatabaseSettings { max_connections: 2, acquire_timeout_secs: 30 };

/// Loads the staged `image` into `location`: a SQLite file moved into place; a PostgreSQL dump
/// restored with `pg_restore` in one transaction, then each table file loaded with one `COPY`
/// (a failure there leaves the tables made, and the restore reports it). A backup restores
/// onto the backend it was taken from; `confidant store copy` moves a practice from SQLite to
/// PostgreSQL.
pub(crate) async fn load_image(image: &StoreImage, dir: &Path, location: &Location) -> Result<(), BackupError> {
    let staged = dir.join(&image.file);
    match (image.backend.as_str(), location) {
        (manifest::SQLITE, Location::Sqlite(path)) => {
            if fs::rename(&staged, path).is_err() {
                fs::copy(&staged, path).map_err(BackupError::file(path))?;
            }
            fs::File::open(path).and_then(|f| f.sync_all()).map_err(BackupError::file(path))?;
            Ok(())
        }
        (manifest::POSTGRES, Location::Postgres(url)) => {
            let mut command = pg_command("pg_restore", url)?;
            command.args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]).arg(&staged);
            run_tool("pg_restore", command).await?;
            for part in &image.table_files {
                // The manifest is the backup's word, not ours: only a table we copy apart is
                // named in a statement.
                let Some(table) = COPIED_APART.iter().find(|t| **t == part.table) else {
                    return Err(BackupError::Malformed(format!("{} is not a table copied apart", part.table)));
                };
                store::copy_in(url, table, &dir.join(&part.file)).await?;
            }
            Ok(())
        }
        (backend, _) => Err(BackupError::Usage(format!(
            "this backup's {} store is {backend}: restore it onto {backend} (then `confidant store copy` moves SQLite onto PostgreSQL)",
            image.store
        ))),
    }
}

/// A PostgreSQL client command for `url`: the URL without its password as `--dbname`, the
/// password in the child's environment (never in its arguments, which other users can see).
pub(crate) fn pg_command(program: &str, url: &DatabaseUrl) -> Result<std::process::Command, BackupError> {
    let mut parsed = url::Url::parse(url.expose()).map_err(|e| BackupError::Usage(e.to_string()))?;
    let password = parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let _ = parsed.set_password(None);
    let mut command = std::process::Command::new(program);
    command.arg("--dbname").arg(parsed.as_str()).stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    Ok(command)
}

/// Runs a PostgreSQL client to completion (on the blocking pool); its last line of standard
/// error names a failure.
pub(crate) async fn run_tool(tool: &'static str, mut command: std::process::Command) -> Result<(), BackupError> {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| BackupError::Tool { tool, detail: e.to_string() })?
        .map_err(|e| BackupError::Tool { tool, detail: e.to_string() })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned();
    Err(BackupError::Tool { tool, detail: format!("{}: {last}", output.status) })
}
