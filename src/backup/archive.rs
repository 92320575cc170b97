//! The backup file: a tar archive of the staged files, encrypted as one age stream to every
//! recipient given. The standard `age` tool decrypts it (`age -d -i KEY FILE | tar x`). Files
//! are written whole under a temporary name and renamed, so a backup that failed half-way never
//! looks like one that succeeded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::BackupError;
use crate::audit::checkpoint::to_hex;

/// The age recipients a backup is encrypted to (`age1...` public keys), at least one.
#[derive(Clone)]
pub struct Recipients(Vec<age::x25519::Recipient>);

impl Recipients {
    /// Parses `age1...` public keys; none, or any that is malformed, is a usage error.
    pub fn parse<S: AsRef<str>>(keys: &[S]) -> Result<Self, BackupError> {
        if keys.is_empty() {
            return Err(BackupError::Usage("name at least one age recipient (--recipient age1...)".to_owned()));
        }
        keys.iter()
            .map(|k| age::x25519::Recipient::from_str(k.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
            .map_err(|_| BackupError::Usage("an age recipient must be an age1... public key".to_owned()))
    }
}

/// The age identities that may open a backup, read from an identity file (as `age-keygen`
/// writes it). The file is secret: keep it apart from the backups and the master key. Held as
/// text (zeroized when dropped) and parsed where it is used, so it can cross into the blocking
/// task that decrypts.
#[derive(Clone)]
pub struct Identities(std::sync::Arc<zeroize::Zeroizing<Vec<u8>>>);

impl Identities {
    /// Reads the identities of `path`; a file holding none is a usage error.
    pub fn from_file(path: &Path) -> Result<Self, BackupError> {
        let text = zeroize::Zeroizing::new(fs::read(path).map_err(BackupError::file(path))?);
        let identities = Self(std::sync::Arc::new(text));
        identities
            .parse()
            .map_err(|_| BackupError::Usage(format!("{} holds no usable age identity", path.display())))?;
        Ok(identities)
    }

    fn parse(&self) -> Result<Vec<Box<dyn age::Identity>>, BackupError> {
        let file = age::IdentityFile::from_buffer(self.0.as_slice())
            .map_err(|_| BackupError::Usage("the age identity file is malformed".to_owned()))?;
        let identities =
            file.into_identities().map_err(|_| BackupError::Usage("the age identity file is unusable".to_owned()))?;
        if identities.is_empty() {
            return Err(BackupError::Usage("the age identity file holds no identity".to_owned()));
        }
        Ok(identities)
    }
}

/// Writes `names` (paths relative to `dir`, in order) as a tar archive encrypted to
/// `recipients` into `out` (mode 0600), through `out` + `.partial` renamed at the end. Returns
/// the file's size. Blocking: run it off the async runtime.
pub fn seal(dir: &Path, names: &[String], recipients: &Recipients, out: &Path) -> Result<u64, BackupError> {
    let partial = out.with_extension("partial");
    let result = write_sealed(dir, names, recipients, &partial);
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result?;
    fs::rename(&partial, out).map_err(BackupError::file(out))?;
    Ok(fs::metadata(out).map_err(BackupError::file(out))?.len())
}

fn write_sealed(dir: &Path, names: &[String], recipients: &Recipients, partial: &Path) -> Result<(), BackupError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(partial)
        .map_err(BackupError::file(partial))?;
    let encryptor = age::Encryptor::with_recipients(recipients.0.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| BackupError::Usage(format!("cannot encrypt to these recipients: {e}")))?;
    let stream = encryptor.wrap_output(BufWriter::with_capacity(1 << 20, file)).map_err(BackupError::file(partial))?;
    let mut tar = tar::Builder::new(stream);
    tar.mode(tar::HeaderMode::Deterministic);
    // Every file goes in whole, as a plain regular entry: a SQLite file past 1 GiB has a hole
    // (SQLite never writes its lock-byte page, at offset 2^30), and the tar crate would
    // otherwise write such a file as a GNU sparse entry.
    tar.sparse(false);
    for name in names {
        let path = dir.join(name);
        let mut source = File::open(&path).map_err(BackupError::file(&path))?;
        tar.append_file(name, &mut source).map_err(BackupError::file(&path))?;
    }
    let stream = tar.into_inner().map_err(BackupError::file(partial))?;
    let mut buffered = stream.finish().map_err(BackupError::file(partial))?;
    buffered.flush().map_err(BackupError::file(partial))?;
    let file =
        buffered.into_inner().map_err(|e| BackupError::File { path: partial.to_owned(), source: e.into_error() })?;
    file.sync_all().map_err(BackupError::file(partial))?;
    Ok(())
}

/// A file unpacked from a backup, with the checksum of what was written.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Its path in the archive.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// Decrypts `file` with `identities` and unpacks it into `into` (which must exist, mode 0700),
/// hashing each file as it is written. Only regular files with plain relative paths are
/// accepted; a GNU sparse entry counts as a regular file (backups of a store past 1 GiB were
/// written so before `seal` turned sparse entries off), its holes read back as zeros.
/// Blocking: run it off the async runtime.
pub fn open(file: &Path, identities: &Identities, into: &Path) -> Result<Vec<Unpacked>, BackupError> {
    let input = BufReader::with_capacity(1 << 20, File::open(file).map_err(BackupError::file(file))?);
    let identities = identities.parse()?;
    let decryptor = age::Decryptor::new(input).map_err(|e| BackupError::Decrypt(e.to_string()))?;
    let stream = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| BackupError::Decrypt(e.to_string()))?;
    let mut archive = tar::Archive::new(stream);
    let mut unpacked = Vec::new();
    let entries = archive.entries().map_err(|e| BackupError::Decrypt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| BackupError::Decrypt(e.to_string()))?;
        let path = entry.path().map_err(|e| BackupError::Malformed(e.to_string()))?.into_owned();
        let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
        let name = path.to_str().filter(|_| plain).map(str::to_owned);
        let kind = entry.header().entry_type();
        let Some(name) = name.filter(|_| kind.is_file() || kind.is_gnu_sparse()) else {
            return Err(BackupError::Malformed(format!("unexpected entry {}", path.display())));
        };
        let target = into.join(&name);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(BackupError::file(parent))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(BackupError::file(&target))?;
        let (bytes, sha256) = copy_hashing(&mut entry, &mut out).map_err(|e| BackupError::Decrypt(e.to_string()))?;
        out.sync_all().map_err(BackupError::file(&target))?;
        unpacked.push(Unpacked { path: name, bytes, sha256 });
    }
    Ok(unpacked)
}

/// The size and SHA-256 of the file at `path`.
pub fn checksum(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(BackupError::file(path))?;
    copy_hashing(&mut file, &mut io::sink()).map_err(BackupError::file(path))
}

fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let read = from.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let chunk = buffer.get(..read).unwrap_or_default();
        hasher.update(chunk);
        to.write_all(chunk)?;
        total += read as u64;
    }
    Ok((total, to_hex(&hasher.finalize())))
}
