//! A sealed file on disk: replaced so that a crash leaves the old content or the new, never half
//! of one, and durable once written.

use std::path::Path;

use crate::ClientError;

/// Replaces the state at `path` by `sealed`: a temporary file, flushed, renamed over the old one,
/// and the rename flushed. Blocking.
pub(crate) fn write_state(path: &Path, sealed: &[u8]) -> Result<(), ClientError> {
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
