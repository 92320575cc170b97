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
    #[error("cannot read or create the node id file in the data directory")]
    Io(#[from] std::io::Error),
    /// The file exists but holds no UUID: someone edited it, or the disk is corrupt.
    #[error("a node id file in the data directory does not hold a UUID")]
    Corrupt,
}

/// File holding the id of the command-line tools' own audit chain, so an audited CLI command
/// (an export) never competes with the running server for the next seq of its chain.
const CLI_NODE_ID_FILE: &str = "cli-node-id";

/// Reads the node id from `data_dir`, creating it on first run.
pub fn load_or_create(data_dir: &Path) -> Result<NodeId, NodeIdError> {
    load_or_create_file(&data_dir.join(NODE_ID_FILE))
}

/// The id under which this data directory's command-line tools append audit events.
pub fn load_or_create_cli(data_dir: &Path) -> Result<NodeId, NodeIdError> {
    load_or_create_file(&data_dir.join(CLI_NODE_ID_FILE))
}

/// The chains this data directory has written (its node's and its command line's), as far as
/// their id files exist; reads only. Their checkpoint files are expected beside them.
pub fn local_chains(data_dir: &Path) -> Vec<String> {
    [NODE_ID_FILE, CLI_NODE_ID_FILE]
        .iter()
        .filter_map(|file| std::fs::read_to_string(data_dir.join(file)).ok())
        .filter_map(|text| text.trim().parse::<NodeId>().ok())
        .map(|id| id.to_string())
        .collect()
}

fn load_or_create_file(path: &Path) -> Result<NodeId, NodeIdError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| NodeIdError::Corrupt),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::generate();
            // create_new: if another process raced us, its id wins and we read it back.
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    writeln!(file, "{id}")?;
                    file.sync_all()?;
                    Ok(id)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_file(path),
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
