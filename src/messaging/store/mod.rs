//! Messaging's tables. Every SQL statement of `messaging` is here: [`conversations`]
//! (`conversations`, `conversation_devices`, `welcomes`), [`messages`]
//! (`conversation_messages`), [`devices`] (`devices`, `key_packages`), [`attachments`]
//! (`attachments`) and [`receipts`] (`conversation_reads`).

pub mod attachments;
pub mod conversations;
pub mod devices;
pub mod messages;
pub mod receipts;

/// A stored seq or epoch (never negative) as the protocol's `u64`.
pub fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A seq or epoch as the `BIGINT` it is stored as.
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
