//! The identity of this server process across restarts: a random id kept in the data directory.
//! Logs, the `nodes` table and (later) each node's audit hash chain are keyed by it.

use std::io::Write;
use std::path::Path;

pub use confidant_actors::ids::NodeId;

/// File in the data directory holding the node id.
const NODE_ID_FILE: &str = "node-id";

/// Errors reading or creating the node id.
#[derive(Debug, thiserror::Error)]
pub enum NodeIdError {
    /// The file cannot be read or written.
    #[error("cannot read or create {NODE_ID_FILE} in the data directory")]
    Io(#[from] std::io::Error),
    /// The file exists but holds no UUID: someone edited it, or the disk is corrupt.
    #[error("{NODE_ID_FILE} in the data directory does not hold a UUID")]
    Corrupt,
}

/// Reads the node id from `data_dir`, creating it on first run.
pub fn load_or_create(data_dir: &Path) -> Result<NodeId, NodeIdError> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| NodeIdError::Corrupt),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::generate();
            // create_new: if another process raced us, its id wins and we read it back.
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    writeln!(file, "{id}")?;
                    file.sync_all()?;
                    Ok(id)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(data_dir),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_id_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn a_corrupt_node_id_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_ID_FILE), "garbage").unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(NodeIdError::Corrupt)));
    }
}
