//! One audit record per account for a live push that reaches several of its sessions on this
//! node at the same moment. Each session puts the PHI it is about to push on record first
//! (`ports.rs` `record_pushes`, reason `live_push`); when the same change reaches many sessions of
//! one account (a front desk with the practice's schedule open in several tabs, a benchmark's
//! thousand sessions of one clinician), the first session's record stands for all of them: the
//! others wait for its outcome instead of writing the same read again. The record names the
//! account, the patient and the first session. A different account, or the same account later,
//! records anew.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use tokio::sync::watch;

/// What is being recorded: whose sessions, and which pushes.
type Key = (UserId, Vec<(Topic, PatientId)>);

/// The records being made right now on this node, each with a channel that says how it ended.
#[derive(Default)]
pub struct PushRecords {
    in_flight: Mutex<HashMap<Key, watch::Receiver<Option<bool>>>>,
}

impl PushRecords {
    /// Runs `record` for `key`, unless a record of the same key is being made: then its outcome
    /// is this one's. If that record's session stopped before it ended, this one records itself.
    pub async fn once<F: Future<Output = bool>>(self: &Arc<Self>, key: Key, record: impl FnOnce() -> F) -> bool {
        let joined = {
            let mut in_flight = self.lock();
            match in_flight.get(&key) {
                Some(outcome) => Err(outcome.clone()),
                None => {
                    let (tell, outcome) = watch::channel(None);
                    in_flight.insert(key.clone(), outcome);
                    Ok(tell)
                }
            }
        };
        match joined {
            Ok(tell) => {
                let owner = Owner { records: self.clone(), key, tell };
                let recorded = record().await;
                owner.finish(recorded);
                recorded
            }
            Err(mut outcome) => {
                let ended = outcome.wait_for(Option::is_some).await.map(|done| done.unwrap_or(false));
                match ended {
                    Ok(recorded) => recorded,
                    Err(_) => record().await,
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, watch::Receiver<Option<bool>>>> {
        // The map is only ever changed whole-entry; a panic elsewhere cannot leave it half-written.
        self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session making a record: it tells the waiting ones how it ended, and takes the entry out
/// even when its session stops first (the waiting ones then record themselves).
struct Owner {
    records: Arc<PushRecords>,
    key: Key,
    tell: watch::Sender<Option<bool>>,
}

impl Owner {
    fn finish(self, recorded: bool) {
        let _ = self.tell.send(Some(recorded));
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let mut in_flight = self.records.lock();
        if in_flight.get(&self.key).is_some_and(|outcome| outcome.same_channel(&self.tell.subscribe())) {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use uuid::Uuid;

    use super::*;

    fn key(user: UserId) -> Key {
        (user, vec![(Topic::PracticeSchedule, PatientId::from_uuid(Uuid::nil()))])
    }

    #[tokio::test]
    async fn sessions_of_one_account_share_the_record_being_made_and_others_make_their_own() {
        let records = Arc::new(PushRecords::default());
        let made = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let record = || {
            let (made, mut gate) = (made.clone(), gate.clone());
            async move {
                made.fetch_add(1, Ordering::SeqCst);
                let _ = gate.wait_for(|open| *open).await;
                true
            }
        };
        let (ana, ben) = (UserId::from_uuid(Uuid::new_v4()), UserId::from_uuid(Uuid::new_v4()));
        let first = tokio::spawn({
            let records = records.clone();
            let record = record();
            async move { records.once(key(ana), || record).await }
        });
        tokio::task::yield_now().await;
        let same = tokio::spawn({
            let records = records.clone();
            let record = record();
            async move { records.once(key(ana), || record).await }
        });
        let other = tokio::spawn({
            let records = records.clone();
            let record = record();
            async move { records.once(key(ben), || record).await }
        });
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        assert!(first.await.unwrap() && same.await.unwrap() && other.await.unwrap());
        assert_eq!(made.load(Ordering::SeqCst), 2, "one record for ana's two sessions, one for ben");
        assert!(records.lock().is_empty(), "nothing left in flight");

        // Later, the same account's next push is recorded anew.
        assert!(records.once(key(ana), || async { made.fetch_add(1, Ordering::SeqCst) < 10 }).await);
        assert_eq!(made.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_record_is_its_outcome_and_a_stopped_one_leaves_nothing_behind() {
        let records = Arc::new(PushRecords::default());
        let ana = UserId::from_uuid(Uuid::new_v4());
        assert!(!records.once(key(ana), || async { false }).await);

        // A session that stops while recording (its future dropped) leaves nothing behind.
        let stopped = records.once(key(ana), std::future::pending::<bool>);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(10), stopped).await;
        assert!(records.lock().is_empty());
        assert!(records.once(key(ana), || async { true }).await);
    }
}
