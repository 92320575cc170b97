//! How a path setting is read: an empty string means "not set", so an environment variable can
//! clear a path the defaults give.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// An optional path where an empty string means "not set".
pub(super) fn optional_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.trim().is_empty()).map(PathBuf::from))
}
