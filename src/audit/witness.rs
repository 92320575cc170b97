//! Witnesses: places outside the audit store and the node's own checkpoint files that also
//! keep each chain's signed heads, so that deleting the newest entries together with every
//! checkpoint that covers them still leaves a signed head the chain no longer reaches.
//!
//! Two kinds: directories (`audit.witness_dirs`, meant for other storage: a mounted share, a
//! disk of another machine), which get every checkpoint line as the checkpoint files do, and the
//! main store (`audit_witness`), which keeps each chain's newest head. A node writes to every
//! witness after each seal; a witness that cannot be written is logged and catches up with the
//! next seal (a newer head vouches for everything before it).

use std::io;
use std::path::PathBuf;

use super::checkpoint::{Checkpoint, CheckpointLog};
use super::store::witness::{heads, record_head};
use crate::storage::{Storage, StorageError};

/// One witness.
#[derive(Clone)]
enum Witness {
    /// A directory of checkpoint files on other storage.
    Dir(PathBuf),
    /// The main store's `audit_witness` table.
    MainStore(Storage),
}

impl Witness {
    fn name(&self) -> String {
        match self {
            Self::Dir(dir) => format!("witness directory {}", dir.display()),
            Self::MainStore(_) => "the main store's witness table".to_owned(),
        }
    }
}

/// What one witness holds.
#[derive(Debug, Clone)]
pub struct WitnessHeads {
    /// Which witness, in words.
    pub name: String,
    /// The checkpoints it keeps.
    pub heads: Vec<Checkpoint>,
}

/// A witness could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A witness directory is missing or unreadable (not mounted?).
    #[error("{name} cannot be read")]
    Dir {
        /// Which.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The main store could not be read.
    #[error("the main store's witness table cannot be read")]
    MainStore(#[source] StorageError),
}

/// The witnesses a node writes to and a verification reads.
#[derive(Clone, Default)]
pub struct Witnesses {
    list: Vec<Witness>,
}

impl Witnesses {
    /// The directories `dirs` and, when given, the main store.
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>, main: Option<Storage>) -> Self {
        let mut list: Vec<Witness> = dirs.into_iter().map(Witness::Dir).collect();
        list.extend(main.map(Witness::MainStore));
        Self { list }
    }

    /// Whether there is no witness at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Gives `checkpoint` to every witness; a failure is logged (the next seal catches up).
    pub async fn record(&self, checkpoint: &Checkpoint) {
        for witness in &self.list {
            let written = match witness {
                Witness::Dir(dir) => {
                    CheckpointLog::new(dir.clone()).append(checkpoint).await.map_err(|e| e.to_string())
                }
                Witness::MainStore(main) => record_head(main, checkpoint).await.map_err(|e| e.to_string()),
            };
            if let Err(error) = written {
                tracing::error!(witness = %witness.name(), seq = checkpoint.seq, %error, "audit witness not written");
            }
        }
    }

    /// What every witness holds. A witness directory that does not exist is an error: a
    /// verification must not pass because a share was not mounted.
    pub async fn read(&self) -> Result<Vec<WitnessHeads>, WitnessError> {
        let mut out = Vec::with_capacity(self.list.len());
        for witness in &self.list {
            let name = witness.name();
            let heads = match witness {
                Witness::Dir(dir) => {
                    let dir = dir.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        std::fs::read_dir(&dir)?;
                        CheckpointLog::new(dir).read_all()
                    })
                    .await
                    .map_err(io::Error::other)
                    .and_then(|r| r);
                    read.map_err(|source| WitnessError::Dir { name: name.clone(), source })?
                }
                Witness::MainStore(main) => heads(main).await.map_err(WitnessError::MainStore)?,
            };
            out.push(WitnessHeads { name, heads });
        }
        Ok(out)
    }
}
