//! `confidant audit purge`: removes entries older than the retention period (six years at least,
//! 45 CFR 164.316(b)(2)) from the start of each chain. The last removed entry's seq and hash are
//! kept as a signed anchor in `audit_purges`, so what remains still verifies from there. The
//! statements are in `store/purges.rs`.

use ed25519_dalek::SigningKey;

use super::chain::ChainHead;
use super::checkpoint::Checkpoint;
use super::store::chains::entry_hash;
use super::store::purges::{bounds, chain_nodes, remove_prefix};
use crate::storage::{Storage, StorageError};

pub use super::store::purges::anchors;

/// What a purge removed from one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Whose chain.
    pub node_id: String,
    /// Entries removed now.
    pub entries: u64,
    /// The chain now starts after this seq.
    pub up_to_seq: i64,
}

/// Removes, from the start of every chain, the entries recorded before `before_ms` (stopping at
/// the first newer one, so a chain only ever loses a prefix), in one transaction per chain.
/// The caller has already checked the retention period and audited the purge.
pub async fn purge_before(
    storage: &Storage,
    key: &SigningKey,
    before_ms: i64,
    now_ms: i64,
) -> Result<Vec<Purged>, StorageError> {
    let mut report = Vec::new();
    for node_id in chain_nodes(storage).await? {
        let (first, last, first_kept) = bounds(storage, &node_id, before_ms).await?;
        let up_to_seq = first_kept.map_or(last, |kept| kept - 1);
        if up_to_seq < first {
            continue;
        }
        let hash = entry_hash(storage, &node_id, up_to_seq).await?;
        let anchor = Checkpoint::sign(key, &node_id, ChainHead::from_stored(up_to_seq, &hash), now_ms);
        let removed = remove_prefix(storage, &anchor).await?;
        report.push(Purged { node_id, entries: removed, up_to_seq });
    }
    Ok(report)
}

/// The newest instant (ms) a purge may reach: `years` calendar years before `now` (29 February
/// becomes 28 February in a non-leap year).
pub fn retention_cutoff_ms(now: time::OffsetDateTime, years: u16) -> i64 {
    let year = now.year() - i32::from(years);
    let cutoff =
        now.replace_year(year).or_else(|_| now.replace_day(28).and_then(|d| d.replace_year(year))).unwrap_or(now);
    i64::try_from(cutoff.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_cutoff_is_whole_calendar_years_back() {
        let cutoff = retention_cutoff_ms(datetime!(2026-11-23 12:00 UTC), 6);
        assert_eq!(cutoff, datetime!(2020-11-23 12:00 UTC).unix_timestamp() * 1000);
        let leap = retention_cutoff_ms(datetime!(2024-02-29 00:00 UTC), 7);
        assert_eq!(leap, datetime!(2017-02-28 00:00 UTC).unix_timestamp() * 1000);
    }
}
