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
//!
//! One read per conversation at a time ([`MembershipCache::reading`]): when a busy
//! conversation's entry expires, every message then in flight misses together, and each used
//! to read the database itself (at 16,000 messages/s, a pile of reads that held everything up
//! for ~10 ms once a second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;

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
    /// Conversations being read now, each with the lock its readers queue on.
    reads: Mutex<HashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to read one conversation for the cache; others wanting to wait until it is
/// dropped (and then find the entry fresh).
pub struct Reading<'a> {
    cache: &'a MembershipCache,
    id: ConversationId,
    held: OwnedMutexGuard<()>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut reads = self.cache.reads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if reads.get(&self.id).is_some_and(|gate| Arc::ptr_eq(gate, OwnedMutexGuard::mutex(&self.held))) {
            reads.remove(&self.id);
        }
    }
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

    /// Waits until no one else is reading conversation `id` for the cache, then holds that
    /// right until dropped. Look in the cache again after: the one before may have filled it.
    pub async fn reading(&self, id: ConversationId) -> Reading<'_> {
        let gate = {
            let mut reads = self.reads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            reads.entry(id).or_default().clone()
        };
        Reading { cache: self, id, held: gate.lock_owned().await }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> ConversationId {
        ConversationId::from_uuid(uuid::Uuid::new_v4())
    }

    #[tokio::test]
    async fn readers_of_one_conversation_take_turns_and_leave_nothing_behind() {
        let cache = MembershipCache::default();
        let (busy, other) = (conversation(), conversation());
        let first = cache.reading(busy).await;
        let elsewhere = tokio::time::timeout(Duration::from_secs(1), cache.reading(other)).await;
        assert!(elsewhere.is_ok(), "another conversation's read is not held up");

        let waiting = tokio::time::timeout(Duration::from_millis(50), cache.reading(busy)).await;
        assert!(waiting.is_err(), "a second read of the same conversation waits for the first");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), cache.reading(busy)).await;
        assert!(second.is_ok(), "and goes once the first is done");

        drop((second, elsewhere));
        assert!(cache.reads.lock().unwrap().is_empty());
    }
}
