//! How far a device has processed each conversation.
//!
//! An acknowledgement is cumulative (`mls.ack` with `seq` N tells the server everything up to N
//! was processed, and the server replays nothing at or below it), so the device may only ever
//! acknowledge a prefix it has processed without a hole. Messages can arrive out of order (two
//! senders' pushes cross, a push is dropped and comes back on the next attach), so each
//! conversation keeps the contiguous prefix and, separately, what it processed beyond a hole.

use std::collections::{BTreeMap, BTreeSet};

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
}
