//! Which acknowledgements a device owes, and when they go out: per conversation one `mls.ack`
//! through the prefix it has processed without a hole (see `cursors.rs`), coalesced over a burst.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::cursors::Cursors;

/// When a device acknowledges: once nothing more is ready to process, and during a long burst
/// at the latest after `every` messages or `within` of the oldest unacknowledged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// Processed messages after which an acknowledgement goes out even mid-burst.
    pub every: usize,
    /// How long the oldest processed message may wait for its acknowledgement mid-burst.
    pub within: Duration,
}

impl Default for AckPolicy {
    /// 64 messages or 200 ms: a burst costs the server one cursor write per conversation per
    /// 64 messages, and a device that stops reading mid-burst is replayed at most that much.
    fn default() -> Self {
        Self { every: 64, within: Duration::from_millis(200) }
    }
}

/// Acknowledgements owed to the server.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    pub(crate) policy: AckPolicy,
    /// Conversations whose position may have moved since their last acknowledgement.
    pending: BTreeSet<Uuid>,
    /// Per conversation, the seq last acknowledged (nothing is sent again for it).
    acknowledged: BTreeMap<Uuid, u64>,
    /// Messages processed since the last acknowledgement went out.
    processed: usize,
    /// When the oldest of them was processed.
    oldest: Option<Instant>,
    /// `mls.ack` frames sent.
    pub(crate) sent: u64,
}

impl Acks {
    /// A message of `conversation` was processed (or found already processed).
    pub(crate) fn owe(&mut self, conversation: Uuid) {
        self.pending.insert(conversation);
        self.processed += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Whether anything is owed.
    pub(crate) fn owed(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the burst has gone on long enough that acknowledgements go out now.
    pub(crate) fn due(&self) -> bool {
        self.owed()
            && (self.processed >= self.policy.every.max(1)
                || self.oldest.is_some_and(|at| at.elapsed() >= self.policy.within))
    }

    /// The acknowledgements to send now, one per conversation: its processed prefix, when that
    /// moved past what was last acknowledged. Each is settled by [`Acks::sent`] once it went out.
    pub(crate) fn to_send(&self, cursors: &Cursors) -> Vec<(Uuid, u64)> {
        self.pending
            .iter()
            .filter_map(|&conversation| {
                let through = cursors.through(conversation)?;
                let before = self.acknowledged.get(&conversation).copied().unwrap_or(0);
                (through > before).then_some((conversation, through))
            })
            .collect()
    }

    /// The acknowledgement of `conversation` through `seq` went out.
    pub(crate) fn sent(&mut self, conversation: Uuid, seq: u64) {
        self.acknowledged.insert(conversation, seq);
        self.sent += 1;
    }

    /// Everything owed was sent (or needed no frame): the next burst starts.
    pub(crate) fn settled(&mut self) {
        self.pending.clear();
        self.processed = 0;
        self.oldest = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_acknowledgement_per_conversation_covers_a_burst() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut cursors = Cursors::default();
        let mut acks = Acks { policy: AckPolicy { every: 100, within: Duration::from_secs(60) }, ..Acks::default() };
        cursors.start(a, 0);
        cursors.start(b, 10);
        for seq in 1..=20 {
            cursors.mark(a, seq);
            acks.owe(a);
        }
        cursors.mark(b, 12); // 11 is missing: b is acknowledged through 10 only
        acks.owe(b);
        assert!(!acks.due(), "no limit reached");
        let mut owed = acks.to_send(&cursors);
        owed.sort();
        let mut expected = vec![(a, 20), (b, 10)];
        expected.sort();
        assert_eq!(owed, expected);
        acks.sent(a, 20);
        acks.sent(b, 10);
        acks.settled();
        acks.owe(b);
        assert!(acks.to_send(&cursors).is_empty(), "b cannot pass the hole");
        acks.owe(a); // a replayed 20
        assert!(acks.to_send(&cursors).is_empty(), "nothing moved");
    }

    #[test]
    fn a_long_burst_is_acknowledged_every_n_messages() {
        let a = Uuid::new_v4();
        let mut acks = Acks { policy: AckPolicy { every: 3, within: Duration::from_secs(60) }, ..Acks::default() };
        acks.owe(a);
        acks.owe(a);
        assert!(!acks.due());
        acks.owe(a);
        assert!(acks.due());
    }
}
