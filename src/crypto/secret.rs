//! Key material in memory: wiped when dropped, never printed.

use std::fmt;

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 bytes of key material (a master or data key). `Debug` shows nothing of it; the bytes
/// are overwritten when the value is dropped.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes([u8; 32]);

impl KeyBytes {
    /// Fresh random key material from the operating system.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Exactly 32 bytes, or `None`.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// The bytes, for a cipher's constructor.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_never_prints() {
        let key = KeyBytes::from_slice(&[7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "KeyBytes(..)");
    }

    #[test]
    fn only_32_bytes_make_a_key() {
        assert!(KeyBytes::from_slice(&[0; 31]).is_none());
        assert!(KeyBytes::from_slice(&[0; 33]).is_none());
        assert_ne!(KeyBytes::random(), KeyBytes::random());
    }
}
