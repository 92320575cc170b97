//! Proving a backup restorable before it is needed: decrypt it into a private temporary
//! directory, check every checksum, open both databases, compare them with the manifest,
//! verify the audit chains against the backup's own checkpoint files (`audit/trail.rs`, as
//! `confidant audit verify` does), and, given the master key, open every encrypted value
//! (`crypto/check.rs`). Every fault found is reported; none stops the others being looked for
//! unless the one before made them impossible to check.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::archive::{self, Identities, Unpacked};
use super::images::{POOL, load_image};
use super::manifest::{self, Manifest, StoreImage};
use super::store::{self, Description};
use super::{BackupError, CHECKPOINTS, MANIFEST};
use crate::audit::{Evidence, Witnesses, verify_trail};
use crate::crypto::check::open_every_value;
use crate::crypto::{Keyring, MasterKey};
use crate::settings::DatabaseUrl;
use crate::storage::{Location, Storage, Store};

/// One thing wrong with a backup, in words for the operator (names, counts and ids; never
/// content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub String);

/// What a verification found.
#[derive(Debug, Default)]
pub struct Verified {
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// What was checked and held, one line each.
    pub passed: Vec<String>,
    /// What did not hold.
    pub faults: Vec<Fault>,
}

impl Verified {
    /// Whether the backup passed every check made.
    pub fn is_sound(&self) -> bool {
        self.faults.is_empty() && self.manifest.is_some()
    }
}

/// What a verification needs besides the file.
pub struct VerifyWith<'a> {
    /// The age identities that open it.
    pub identities: &'a Identities,
    /// The master key, to open every encrypted value; `None` skips that check (and says so).
    pub master: Option<MasterKey>,
    /// Audit keys to trust; empty: the keys registered in the backup's audit store.
    pub pinned: Vec<VerifyingKey>,
    /// Empty PostgreSQL databases (main, audit) to restore a PostgreSQL backup's dumps into,
    /// since a dump can only be opened by restoring it. Unused for SQLite images.
    pub scratch: Option<(DatabaseUrl, DatabaseUrl)>,
    /// Where the private temporary directory is made.
    pub work_in: PathBuf,
}

/// Verifies the backup `file`.
#[tracing::instrument(skip_all)]
pub async fn verify(file: &Path, with: VerifyWith<'_>) -> Result<Verified, BackupError> {
    let work = tempfile::Builder::new()
        .prefix(".backup-verify-")
        .tempdir_in(&with.work_in)
        .map_err(BackupError::file(&with.work_in))?;
    let dir = work.path().to_owned();
    let mut verified = Verified::default();
    let manifest = match unpack(file, with.identities, &dir).await? {
        (Some(manifest), faults) => {
            verified.faults.extend(faults);
            manifest
        }
        (None, faults) => {
            verified.faults.extend(faults);
            return Ok(verified);
        }
    };
    if verified.faults.is_empty() {
        verified.passed.push(format!("{} files, every checksum matches", manifest.files.len()));
    }
    verified.passed.push(format!(
        "taken by confidant {} at {} ms; master key {}",
        manifest.confidant_version, manifest.created_at_ms, manifest.master_key_fingerprint
    ));
    let (main, audit) = match open_images(&manifest, &dir, with.scratch.as_ref()).await {
        Ok(stores) => stores,
        Err(error) => {
            verified.faults.push(Fault(format!("the databases cannot be opened: {error}")));
            verified.manifest = Some(manifest);
            return Ok(verified);
        }
    };
    for (storage, name) in [(&main, manifest::MAIN), (&audit, manifest::AUDIT)] {
        let Some(image) = manifest.store(name) else { continue };
        let found = store::describe_store(storage, name == manifest::AUDIT).await?;
        match compare(image, &found) {
            Ok(line) => verified.passed.push(line),
            Err(fault) => verified.faults.push(fault),
        }
    }
    check_trail(&manifest, &dir, &main, &audit, with.pinned, &mut verified).await;
    match with.master {
        None => verified.passed.push("encrypted fields not opened: no master key given".to_owned()),
        Some(master) => check_values(&manifest, master, &main, &mut verified).await,
    }
    main.close().await;
    audit.close().await;
    verified.manifest = Some(manifest);
    Ok(verified)
}

/// Decrypts and unpacks `file` into `dir`, then checks its files against its manifest: the
/// manifest (if readable) and every fault.
pub(crate) async fn unpack(
    file: &Path,
    identities: &Identities,
    dir: &Path,
) -> Result<(Option<Manifest>, Vec<Fault>), BackupError> {
    let (file, into) = (file.to_owned(), dir.to_owned());
    let identities = identities.clone();
    let unpacked = tokio::task::spawn_blocking(move || archive::open(&file, &identities, &into))
        .await
        .map_err(|e| BackupError::Malformed(format!("the decryption task failed: {e}")))??;
    let text = match fs::read(dir.join(MANIFEST)) {
        Ok(text) => text,
        Err(_) => return Ok((None, vec![Fault("the backup holds no manifest".to_owned())])),
    };
    let manifest: Manifest = match serde_json::from_slice(&text) {
        Ok(manifest) => manifest,
        Err(e) => return Ok((None, vec![Fault(format!("the manifest is unreadable: {e}"))])),
    };
    if !manifest::READS.contains(&manifest.format) {
        let (first, last) = (manifest::READS.start(), manifest::READS.end());
        let fault = Fault(format!("format {} is not one this version reads ({first} to {last})", manifest.format));
        return Ok((None, vec![fault]));
    }
    let faults = check_files(&manifest, &unpacked);
    Ok((Some(manifest), faults))
}

/// Every file the manifest lists is there with its size and checksum, and nothing else is.
fn check_files(manifest: &Manifest, unpacked: &[Unpacked]) -> Vec<Fault> {
    let found: BTreeMap<&str, &Unpacked> = unpacked.iter().map(|u| (u.path.as_str(), u)).collect();
    let mut faults = Vec::new();
    for entry in &manifest.files {
        match found.get(entry.path.as_str()) {
            None => faults.push(Fault(format!("{} is missing", entry.path))),
            Some(u) if u.sha256 != entry.sha256 || u.bytes != entry.bytes => {
                faults.push(Fault(format!("{} does not match its checksum", entry.path)))
            }
            Some(_) => {}
        }
    }
    for u in unpacked {
        if u.path != MANIFEST && !manifest.files.iter().any(|f| f.path == u.path) {
            faults.push(Fault(format!("{} is not in the manifest", u.path)));
        }
    }
    for image in &manifest.stores {
        let parts = std::iter::once(&image.file).chain(image.table_files.iter().map(|t| &t.file));
        for file in parts {
            if !manifest.files.iter().any(|f| &f.path == file) {
                faults.push(Fault(format!("the {} store's image {file} is not in the manifest", image.store)));
            }
        }
    }
    faults
}

/// Opens the main and audit images: SQLite files where they lie, PostgreSQL dumps restored
/// into the scratch databases.
async fn open_images(
    manifest: &Manifest,
    dir: &Path,
    scratch: Option<&(DatabaseUrl, DatabaseUrl)>,
) -> Result<(Storage, Storage), BackupError> {
    let mut opened = Vec::with_capacity(2);
    for (name, kind) in [(manifest::MAIN, Store::Main), (manifest::AUDIT, Store::Audit)] {
        let image = manifest.store(name).ok_or_else(|| BackupError::Malformed(format!("no {name} store")))?;
        let location = match (image.backend.as_str(), scratch) {
            (manifest::SQLITE, _) => Location::Sqlite(dir.join(&image.file)),
            (manifest::POSTGRES, Some((main, audit))) => {
                let url = if kind == Store::Main { main } else { audit };
                let location = Location::Postgres(url.clone());
                load_image(image, dir, &location).await?;
                location
            }
            (manifest::POSTGRES, None) => {
                return Err(BackupError::Usage(
                    "a PostgreSQL backup is opened by restoring it: give --scratch-database and --scratch-audit-database (empty databases)".to_owned(),
                ));
            }
            (other, _) => return Err(BackupError::Malformed(format!("unknown backend {other}"))),
        };
        opened.push(Storage::connect(kind, &location, &POOL).await?);
    }
    let audit = opened.pop().ok_or_else(|| BackupError::Malformed("no audit store".to_owned()))?;
    let main = opened.pop().ok_or_else(|| BackupError::Malformed("no main store".to_owned()))?;
    Ok((main, audit))
}

/// The store `found` holds what `image` says: the same tables with the same rows, the same
/// migrations, the same audit heads.
pub(crate) fn compare(image: &StoreImage, found: &Description) -> Result<String, Fault> {
    let mut differences = Vec::new();
    for (table, rows) in &image.tables {
        match found.tables.get(table) {
            Some(n) if n == rows => {}
            Some(n) => differences.push(format!("{table}: {n} rows, the manifest says {rows}")),
            None => differences.push(format!("{table} is missing")),
        }
    }
    for table in found.tables.keys().filter(|t| !image.tables.contains_key(*t)) {
        differences.push(format!("{table} is not in the manifest"));
    }
    if (found.migration_level, found.migrations) != (image.migration_level, image.migrations) {
        differences.push(format!(
            "migration level {} ({}), the manifest says {} ({})",
            found.migration_level, found.migrations, image.migration_level, image.migrations
        ));
    }
    if found.audit_heads != image.audit_heads {
        differences.push("the audit chains' heads differ from the manifest's".to_owned());
    }
    if differences.is_empty() {
        let rows: i64 = image.tables.values().sum();
        Ok(format!(
            "{} store: {} tables, {rows} rows, migration level {}, as the manifest says",
            image.store,
            image.tables.len(),
            image.migration_level
        ))
    } else {
        Err(Fault(format!("{} store: {}", image.store, differences.join("; "))))
    }
}

async fn check_trail(
    manifest: &Manifest,
    dir: &Path,
    main: &Storage,
    audit: &Storage,
    pinned: Vec<VerifyingKey>,
    verified: &mut Verified,
) {
    let witnesses = Witnesses::new([], Some(main.clone()));
    let evidence = Evidence {
        checkpoint_dir: dir.join(CHECKPOINTS),
        witnesses: &witnesses,
        heads: Vec::new(),
        pinned,
        local_chains: manifest.local_chains.clone(),
    };
    match verify_trail(audit, evidence).await {
        Ok(report) => match report.broken {
            None => {
                let entries: u64 = report.chains.iter().map(|c| c.entries).sum();
                verified.passed.push(format!(
                    "audit trail intact: {} chain(s), {entries} entries, checked against the backup's checkpoint files",
                    report.chains.len()
                ));
            }
            Some(broken) => verified.faults.push(Fault(format!("audit trail: {broken}"))),
        },
        Err(error) => verified.faults.push(Fault(format!("the audit trail cannot be verified: {error}"))),
    }
}

async fn check_values(manifest: &Manifest, master: MasterKey, main: &Storage, verified: &mut Verified) {
    if master.fingerprint() != manifest.master_key_fingerprint {
        verified.faults.push(Fault(format!(
            "the master key given is {}, the backup needs {}",
            master.fingerprint(),
            manifest.master_key_fingerprint
        )));
        return;
    }
    let tables: Vec<String> =
        manifest.store(manifest::MAIN).map(|s| s.tables.keys().cloned().collect()).unwrap_or_default();
    let keyring = match Keyring::open(main.clone(), master).await {
        Ok(keyring) => keyring,
        Err(error) => {
            verified.faults.push(Fault(format!("the data keys do not open: {error}")));
            return;
        }
    };
    match open_every_value(&keyring, &tables).await {
        Ok(check) if check.failed == 0 => {
            verified.passed.push(format!("every encrypted field opens: {} values in {} rows", check.values, check.rows))
        }
        Ok(check) => {
            let listed: Vec<String> = check.failures.iter().map(|(t, c, id)| format!("{t}.{c} of {id}")).collect();
            verified.faults.push(Fault(format!(
                "{} encrypted values do not open (first: {})",
                check.failed,
                listed.join(", ")
            )));
        }
        Err(error) => verified.faults.push(Fault(format!("the encrypted fields cannot be checked: {error}"))),
    }
}
