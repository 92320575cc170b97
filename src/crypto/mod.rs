//! Application-level encryption of PHI at rest. Every PHI column is sealed with AES-256-GCM
//! before it reaches sqlx, under a data key that the master key (key-encryption key) wraps;
//! lookups on encrypted values use a keyed blind index. The formats are specified in
//! docs/SECURITY.md.
//!
//! - [`master`]: the master key, where it comes from, wrapping data keys.
//! - [`envelope`]: the ciphertext format and the AAD that binds a value to its row and column.
//! - [`keyring`]: the data keys in the database, loaded and unwrapped; seal, open, blind index.
//! - [`tables`]: which tables and columns hold ciphertext (status counts, re-encryption).
//! - [`rotation`]: rotate, retire, rewrap, and the background re-encryption actor.
//! - `store`: every SQL statement of this module, on `data_keys` and on the encrypted tables.

pub mod check;
pub mod envelope;
pub mod error;
pub mod keyring;
pub mod master;
pub mod rotation;
pub mod secret;
mod store;
pub mod tables;

pub use envelope::Field;
pub use error::{CryptoError, KeyError};
pub use keyring::{KeyState, Keyring, Purpose, Sealer};
pub use master::MasterKey;
pub use secret::KeyBytes;
