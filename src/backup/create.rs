//! Taking a backup while the server serves: the checkpoint files first, then the main store,
//! then the audit store, each in one consistent snapshot. In that order every signed checkpoint
//! and every head the main store witnesses is covered by the audit entries copied after it, so
//! the backup's trail verifies on its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confidant_actors::clock::now_ms;

use super::archive::{self, Recipients};
use super::images::{COPIED_APART, POOL, pg_command, run_tool};
use super::manifest::{self, FileEntry, Manifest, StoreImage, TableFile};
use super::store::{self, Description};
use super::{BackupError, CHECKPOINTS, MANIFEST};
use crate::settings::DatabaseUrl;
use crate::storage::{Backend, Location, Storage, Store};

/// A backup written.
#[derive(Debug)]
pub struct Created {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// What it says about itself.
    pub manifest: Manifest,
    /// How long it took.
    pub elapsed: Duration,
}

/// What a backup is taken of.
pub struct Source<'a> {
    /// The main store.
    pub main: &'a Storage,
    /// The audit store.
    pub audit: &'a Storage,
    /// The audit checkpoint files' directory.
    pub checkpoint_dir: PathBuf,
    /// The chains of this data directory (`node::local_chains`).
    pub local_chains: Vec<String>,
    /// The fingerprint of the master key in use.
    pub master_key_fingerprint: String,
    /// Where the unencrypted copies are staged before encryption (a 0700 directory is made
    /// inside it and removed after): the data directory, already as private as the stores.
    pub staging_in: PathBuf,
}

/// Takes a backup of `source` encrypted to `recipients` into `out`.
#[tracing::instrument(skip_all)]
pub async fn create(source: Source<'_>, recipients: &Recipients, out: &Path) -> Result<Created, BackupError> {
    let started = Instant::now();
    let staging = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(&source.staging_in)
        .map_err(BackupError::file(&source.staging_in))?;
    let dir = staging.path();
    let mut names = copy_checkpoints(&source.checkpoint_dir, dir)?;
    let main = image(source.main, manifest::MAIN, dir).await?;
    let audit = image(source.audit, manifest::AUDIT, dir).await?;
    for image in [&main, &audit] {
        names.push(image.file.clone());
        names.extend(image.table_files.iter().map(|part| part.file.clone()));
    }
    let mut files = Vec::with_capacity(names.len());
    for name in &names {
        let (bytes, sha256) = archive::checksum(&dir.join(name))?;
        files.push(FileEntry { path: name.clone(), bytes, sha256 });
    }
    let manifest = Manifest {
        format: manifest::FORMAT,
        confidant_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at_ms: now_ms(),
        master_key_fingerprint: source.master_key_fingerprint,
        local_chains: source.local_chains,
        stores: vec![main, audit],
        files,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Malformed(e.to_string()))?;
    fs::write(dir.join(MANIFEST), text).map_err(BackupError::file(dir.join(MANIFEST)))?;
    let mut order = vec![MANIFEST.to_owned()];
    order.extend(names);

    let (dir, out_path) = (dir.to_owned(), out.to_owned());
    let recipients = recipients.clone();
    let bytes = tokio::task::spawn_blocking(move || archive::seal(&dir, &order, &recipients, &out_path))
        .await
        .map_err(|e| BackupError::Malformed(format!("the encryption task failed: {e}")))??;
    drop(staging);
    let elapsed = started.elapsed();
    tracing::info!(bytes, elapsed_ms = elapsed.as_millis() as u64, "backup written");
    Ok(Created { path: out.to_owned(), bytes, manifest, elapsed })
}

/// Copies every checkpoint file's complete lines (a line being appended is left for the next
/// backup) into `dir`/audit-checkpoints; returns their archive paths.
fn copy_checkpoints(from: &Path, dir: &Path) -> Result<Vec<String>, BackupError> {
    let into = dir.join(CHECKPOINTS);
    fs::create_dir(&into).map_err(BackupError::file(&into))?;
    let mut names = Vec::new();
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(BackupError::File { path: from.to_owned(), source: e }),
    };
    for entry in entries {
        let entry = entry.map_err(BackupError::file(from))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !entry.file_type().map_err(BackupError::file(entry.path()))?.is_file() {
            continue;
        }
        let text = fs::read(entry.path()).map_err(BackupError::file(entry.path()))?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let target = into.join(&name);
        fs::write(&target, text.get(..complete).unwrap_or_default()).map_err(BackupError::file(&target))?;
        names.push(format!("{CHECKPOINTS}/{name}"));
    }
    names.sort();
    Ok(names)
}

/// Writes a consistent image of `storage` into `dir` and describes it from the same snapshot.
async fn image(storage: &Storage, name: &str, dir: &Path) -> Result<StoreImage, BackupError> {
    let audit = name == manifest::AUDIT;
    let (backend, file, description, table_files) = match storage.postgres_url() {
        None => {
            let file = format!("{name}.db");
            let path = dir.join(&file);
            store::vacuum_into(storage, &path).await?;
            let kind = if audit { Store::Audit } else { Store::Main };
            let copy = Storage::connect(kind, &Location::Sqlite(path.clone()), &POOL).await?;
            let description = store::describe_store(&copy, audit).await;
            copy.close().await;
            (manifest::SQLITE, file, description?, Vec::new())
        }
        Some(url) => {
            let file = format!("{name}.pgdump");
            let (mut conn, snapshot) = store::begin_snapshot(storage).await?;
            let description = store::describe(&mut conn, Backend::Postgres, audit).await?;
            let apart: Vec<TableFile> = COPIED_APART
                .iter()
                .filter(|table| description.tables.contains_key(**table))
                .map(|table| TableFile { table: (*table).to_owned(), file: format!("{name}.{table}.pgcopy") })
                .collect();
            // The dump and the binary copies read the one snapshot side by side.
            let (dump_path, part_paths) =
                (dir.join(&file), apart.iter().map(|part| dir.join(&part.file)).collect::<Vec<_>>());
            let copies =
                apart.iter().zip(&part_paths).map(|(part, path)| store::copy_out(url, &snapshot, &part.table, path));
            let (dumped, copied) =
                tokio::join!(pg_dump(url, &snapshot, &apart, &dump_path), futures_util::future::try_join_all(copies));
            dumped?;
            copied?;
            store::end_snapshot(conn).await?;
            (manifest::POSTGRES, file, description, apart)
        }
    };
    let Description { tables, migration_level, migrations, audit_heads } = description;
    Ok(StoreImage {
        store: name.to_owned(),
        backend: backend.to_owned(),
        file,
        migration_level,
        migrations,
        tables,
        audit_heads,
        table_files,
    })
}

/// `pg_dump` of `url` in its custom format, in the exported `snapshot`, without the rows of the
/// tables copied `apart` (their definitions, indexes and constraints stay in the dump).
async fn pg_dump(url: &DatabaseUrl, snapshot: &str, apart: &[TableFile], into: &Path) -> Result<(), BackupError> {
    let mut command = pg_command("pg_dump", url)?;
    command.args(["--format=custom", "--no-owner", "--no-privileges", "--compress=0"]);
    for part in apart {
        command.arg(format!("--exclude-table-data={}", part.table));
    }
    command.arg(format!("--snapshot={snapshot}")).arg("--file").arg(into);
    run_tool("pg_dump", command).await
}
