//! A sealed file: AES-256-GCM under a 32-byte key the application keeps (for instance in the OS
//! keychain), a 12-byte nonce then the ciphertext; replaced so that a crash leaves the old content
//! or the new, never half of one, and durable once written.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::ClientError;

/// Associated data: binds the ciphertext to the state file's format.
const AAD: &[u8] = b"confidant.client.state.v1";

/// Where a sealed file is kept, and the key it is sealed under.
pub(crate) struct SealedFile {
    pub(crate) path: PathBuf,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl SealedFile {
    /// The file at `path`, sealed under `key`.
    pub(crate) fn new(path: &Path, key: &[u8; 32]) -> Self {
        Self { path: path.to_owned(), key: Zeroizing::new(*key) }
    }
}

/// `plain` sealed under `key`: nonce, then ciphertext.
pub(crate) fn seal(plain: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, ClientError> {
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: plain, aad: AAD })
        .map_err(|_| ClientError::State("seal"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The content of the file at `path`, sealed under `key`. A wrong key or a changed file is
/// refused.
pub(crate) fn open(path: &Path, key: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let bytes = std::fs::read(path).map_err(|_| ClientError::State("read"))?;
    let (nonce, sealed) = bytes.split_first_chunk::<12>().ok_or(ClientError::State("truncated"))?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let plain = cipher
        .decrypt(&Nonce::from(*nonce), aes_gcm::aead::Payload { msg: sealed, aad: AAD })
        .map_err(|_| ClientError::State("wrong key or altered file"))?;
    Ok(Zeroizing::new(plain))
}

/// Replaces the file at `path` by `sealed`: a temporary file, flushed, renamed over the old one,
/// and the rename flushed. Blocking.
pub(crate) fn replace(path: &Path, sealed: &[u8]) -> Result<(), ClientError> {
    let temporary = path.with_extension("tmp");
    write_synced(&temporary, sealed)?;
    std::fs::rename(&temporary, path).map_err(|_| ClientError::State("rename"))?;
    sync_directory_of(path)
}

/// Writes `bytes` to a new file at `path`, readable by its owner only, and waits until they are
/// on disk (a write alone may sit in the page cache when the machine goes down).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    use std::io::Write as _;
    // A temporary left by a crash may have other permissions; the state is made afresh.
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|_| ClientError::State("write"))?;
    file.write_all(bytes).map_err(|_| ClientError::State("write"))?;
    file.sync_all().map_err(|_| ClientError::State("sync"))
}

/// Makes a rename into `path`'s directory durable: on Unix the directory entry is flushed by
/// syncing the directory itself (elsewhere the rename is as durable as the platform makes it).
fn sync_directory_of(path: &Path) -> Result<(), ClientError> {
    #[cfg(unix)]
    {
        let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(directory).and_then(|d| d.sync_all()).map_err(|_| ClientError::State("sync"))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
