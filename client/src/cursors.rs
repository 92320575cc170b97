//! How far a device has processed each conversation, and which acknowledgements it owes.
//!
//! An acknowledgement is cumulative (`mls.ack` with `seq` N tells the server everything up to N
//! was processed, and the server replays nothing at or below it), so the device may only ever
//! acknowledge a prefix it has processed without a hole. Messages can arrive out of order (two
//! senders' pushes cross, a push is dropped and comes back on the next attach), so each
//! conversation keeps the contiguous prefix and, separately, what it processed beyond a hole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Where a device stands in one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Position {
    /// Every seq up to this one has been processed (or was this device's own).
    through: u64,
    /// Seqs processed above `through` while a lower one is still missing.
    beyond: BTreeSet<u64>,
}

/// Per conversation, what the device has processed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursors {
    conversations: BTreeMap<Uuid, Position>,
}

impl Cursors {
    /// Rebuilds from a state file: the contiguous prefixes and the seqs beyond them.
    pub(crate) fn from_parts(through: BTreeMap<Uuid, u64>, mut beyond: BTreeMap<Uuid, Vec<u64>>) -> Self {
        let conversations = through
            .into_iter()
            .map(|(conversation, through)| {
                let ahead = beyond.remove(&conversation).unwrap_or_default();
                (conversation, Position { through, beyond: ahead.into_iter().filter(|s| *s > through).collect() })
            })
            .collect();
        Self { conversations }
    }

    /// The contiguous prefixes, and the seqs beyond them (for a state file).
    pub(crate) fn to_parts(&self) -> (BTreeMap<Uuid, u64>, BTreeMap<Uuid, Vec<u64>>) {
        let through = self.conversations.iter().map(|(c, p)| (*c, p.through)).collect();
        let beyond = self
            .conversations
            .iter()
            .filter(|(_, p)| !p.beyond.is_empty())
            .map(|(c, p)| (*c, p.beyond.iter().copied().collect()))
            .collect();
        (through, beyond)
    }

    /// The device entered `conversation` at `seq` (0 when it created it; a Welcome's commit
    /// otherwise): nothing before it is for this device.
    pub(crate) fn start(&mut self, conversation: Uuid, seq: u64) {
        self.conversations.insert(conversation, Position { through: seq, beyond: BTreeSet::new() });
    }

    /// Whether the device is in `conversation`.
    pub(crate) fn contains(&self, conversation: Uuid) -> bool {
        self.conversations.contains_key(&conversation)
    }

    /// The device left `conversation`.
    pub(crate) fn remove(&mut self, conversation: Uuid) {
        self.conversations.remove(&conversation);
    }

    /// The conversations the device is in.
    pub(crate) fn conversations(&self) -> Vec<Uuid> {
        self.conversations.keys().copied().collect()
    }

    /// The seq through which everything of `conversation` was processed.
    pub(crate) fn through(&self, conversation: Uuid) -> Option<u64> {
        self.conversations.get(&conversation).map(|p| p.through)
    }

    /// Whether `seq` of `conversation` was processed already (a replay overlapping a push).
    pub(crate) fn seen(&self, conversation: Uuid, seq: u64) -> bool {
        self.conversations.get(&conversation).is_some_and(|p| seq <= p.through || p.beyond.contains(&seq))
    }

    /// Records `seq` of `conversation` as processed; the prefix moves only over what has no
    /// hole below it.
    pub(crate) fn mark(&mut self, conversation: Uuid, seq: u64) {
        let position = self.conversations.entry(conversation).or_default();
        if seq <= position.through {
            return;
        }
        position.beyond.insert(seq);
        while position.beyond.remove(&(position.through + 1)) {
            position.through += 1;
        }
    }
}

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
    fn the_prefix_never_passes_a_hole() {
        let c = Uuid::new_v4();
        let mut cursors = Cursors::default();
        cursors.start(c, 4);
        cursors.mark(c, 6);
        cursors.mark(c, 7);
        assert_eq!(cursors.through(c), Some(4), "5 is missing");
        assert!(cursors.seen(c, 6) && !cursors.seen(c, 5));
        cursors.mark(c, 5);
        assert_eq!(cursors.through(c), Some(7));
        cursors.mark(c, 3);
        assert_eq!(cursors.through(c), Some(7), "an old seq changes nothing");
    }

    #[test]
    fn a_state_file_keeps_what_was_processed_beyond_a_hole() {
        let c = Uuid::new_v4();
        let mut cursors = Cursors::default();
        cursors.start(c, 0);
        cursors.mark(c, 1);
        cursors.mark(c, 3);
        let (through, beyond) = cursors.to_parts();
        assert_eq!(Cursors::from_parts(through, beyond), cursors);
    }

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
