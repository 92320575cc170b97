//! What a backup says about itself: the versions and migration levels it was taken at, each
//! table's row count, each audit chain's head, the checksum of every file, and the fingerprint
//! of the master key its PHI columns are sealed under (never the key).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of this layout. Format 2 added [`StoreImage::table_files`]; a reader refuses
/// any format outside [`READS`].
pub const FORMAT: u32 = 2;

/// The formats this version reads (a format 1 backup simply has no table files).
pub const READS: std::ops::RangeInclusive<u32> = 1..=FORMAT;

/// `manifest.json`, the first file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The `confidant` version that took it.
    pub confidant_version: String,
    /// When it was taken (UTC ms).
    pub created_at_ms: i64,
    /// Fingerprint of the master key that unwraps the data keys inside: the key a restore needs.
    pub master_key_fingerprint: String,
    /// The audit chains of the data directory it was taken from (its node and command line),
    /// whose checkpoint files must be in the backup.
    pub local_chains: Vec<String>,
    /// The main store, then the audit store.
    pub stores: Vec<StoreImage>,
    /// Every other file of the archive with its checksum (the store images included).
    pub files: Vec<FileEntry>,
}

/// One store as the backup holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreImage {
    /// `main` or `audit`.
    pub store: String,
    /// `sqlite` (a database file) or `postgres` (a `pg_dump` custom-format archive).
    pub backend: String,
    /// Its file in the archive.
    pub file: String,
    /// The newest migration applied.
    pub migration_level: i64,
    /// How many migrations were applied.
    pub migrations: i64,
    /// Rows per table, read in the same snapshot as the image.
    pub tables: BTreeMap<String, i64>,
    /// The audit store: each chain's newest entry.
    #[serde(default)]
    pub audit_heads: Vec<AuditHead>,
    /// PostgreSQL: tables whose rows are not in `file` but each in a file of its own, in
    /// PostgreSQL's binary `COPY` format, read in the same snapshot (see `images::COPIED_APART`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_files: Vec<TableFile>,
}

/// A table's rows in a file of their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// The table.
    pub table: String,
    /// Its file in the archive.
    pub file: String,
}

/// The newest entry of one audit chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// The chain (node id).
    pub node_id: String,
    /// Its newest sequence number.
    pub seq: i64,
    /// That entry's hash (hex).
    pub hash: String,
}

/// A file of the archive and its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path in the archive.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of its content (hex).
    pub sha256: String,
}

/// `store` name in the manifest.
pub const MAIN: &str = "main";
/// `store` name in the manifest.
pub const AUDIT: &str = "audit";
/// `backend` name in the manifest.
pub const SQLITE: &str = "sqlite";
/// `backend` name in the manifest.
pub const POSTGRES: &str = "postgres";

impl Manifest {
    /// The image of `store` (`MAIN` or `AUDIT`).
    pub fn store(&self, store: &str) -> Option<&StoreImage> {
        self.stores.iter().find(|s| s.store == store)
    }
}
