//! A secret setting (the master key): kept out of `Debug`, wiped from memory when dropped.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string from the configuration. Its `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value, for the one place that needs it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A key made only of digits would arrive as a number; only strings are keys.
        let value = String::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("must be a string (base64 of 32 bytes)"))?;
        Ok(Self::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("c2VjcmV0LXZhbHVlLXNlY3JldC12YWx1ZS0xMjM0NTY=".into());
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }
}
