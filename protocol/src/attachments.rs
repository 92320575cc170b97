//! Encrypted attachments (docs/MESSAGING.md, "Attachments"): the sizes client and server agree
//! on. A file is encrypted on the device and uploaded as `nonce || ciphertext || tag`; its key
//! travels only inside the MLS message that names it.

/// Bytes an encrypted attachment has beyond its file: the 12-byte AES-GCM nonce in front and the
/// 16-byte tag at the end.
pub const CIPHERTEXT_OVERHEAD: usize = 12 + 16;

/// The most attachments one `mls.send` may name.
pub const MAX_PER_MESSAGE: usize = 16;
