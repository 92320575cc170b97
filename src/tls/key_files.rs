//! How certificates and their keys reach the disk: in a directory only the node's user can
//! enter (0700), each file written whole through a temporary file and renamed, so a reader (or
//! a crash) never sees half a key. Private keys are 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file here: a private key, an account key, and a certificate too (every file
/// Confidant creates is its owner's alone; a client that must trust the development certificate
/// is given a copy).
pub const PRIVATE: u32 = 0o600;

/// Creates `dir` (and its parents) if needed and makes it the owner's alone, tightening a
/// directory that already exists with a laxer mode.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `contents` to `path` with `mode`, through a temporary file that is flushed and then
/// renamed into place.
pub fn write_whole(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    // An older temporary file keeps its old mode: set it again before writing anything.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_in_a_private_directory_is_the_owners_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("keys");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

        private_dir(&dir).unwrap();
        write_whole(&dir.join("key.pem"), b"secret", PRIVATE).unwrap();

        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("key.pem")), 0o600);
        assert_eq!(fs::read(dir.join("key.pem")).unwrap(), b"secret");
        assert!(!dir.join("key.tmp").exists());
    }
}
