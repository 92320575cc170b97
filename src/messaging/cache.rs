//! A node's short-lived copy of each busy conversation and its membership, so that sending a
//! message does not read both from the database every time.
//!
//! Why it is safe: ordering never depends on it (a message is stored only by the conditional
//! update on the conversation's epoch in the database), and this node's own commits and device
//! retirements drop the entry at once. A change made on another node is seen here within
//! [`TTL`]; until then a device that node removed is still refused (its epoch is over) and a
//! device it added, not found in the copy, makes the copy be read again before it is refused.
//! What the staleness can cost is a live push to a just-added device, which then gets the
//! message when it catches up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use confidant_actors::ids::{ConversationId, DeviceId};

use super::Conversation;

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (the oldest half goes when full).
const CAPACITY: usize = 50_000;

/// When it was read, the conversation, its member devices.
type Entry = (Instant, Conversation, Vec<DeviceId>);

/// Conversation and member devices by conversation id.
#[derive(Default)]
pub struct MembershipCache {
    entries: Mutex<HashMap<ConversationId, Entry>>,
}

impl MembershipCache {
    /// The cached conversation and members, if fresh.
    pub fn get(&self, id: ConversationId) -> Option<(Conversation, Vec<DeviceId>)> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&id).filter(|(at, _, _)| at.elapsed() < TTL).map(|(_, c, m)| (c.clone(), m.clone()))
    }

    /// Remembers a conversation and its members as just read.
    pub fn put(&self, conversation: Conversation, members: Vec<DeviceId>) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _, _)| at.elapsed() < TTL);
        }
        entries.insert(conversation.id, (Instant::now(), conversation, members));
    }

    /// Forgets one conversation (it changed here).
    pub fn forget(&self, id: ConversationId) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }

    /// Forgets everything (a device left every conversation).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
