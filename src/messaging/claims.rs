//! KeyPackage claims are rate-limited per account (RFC 9420 section 16.8: a claimant could
//! otherwise drain a device's one-time packages and force everyone onto its last-resort one).
//! A window of `per_minute` claims per account per node; with several nodes the budget is per
//! node, which bounds an account at nodes x budget.

use std::collections::HashMap;
use std::sync::Mutex;

use confidant_actors::ids::UserId;

/// Claims an account may make per minute on one node.
pub const CLAIMS_PER_MINUTE: u32 = 60;

/// Per-account claim counts in the current minute.
#[derive(Debug)]
pub struct ClaimLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<UserId, (i64, u32)>>,
}

impl ClaimLimiter {
    /// A limiter allowing `per_minute` claims per account.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts a claim by `user` at `now_ms`; `Err(seconds to wait)` when over the budget.
    pub fn take(&self, user: UserId, now_ms: i64) -> Result<(), u64> {
        let minute = now_ms.div_euclid(60_000);
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let (window, count) = windows.entry(user).or_insert((minute, 0));
        if *window != minute {
            (*window, *count) = (minute, 0);
        }
        if *count >= self.per_minute {
            let wait_ms = (minute + 1) * 60_000 - now_ms;
            return Err(u64::try_from((wait_ms + 999) / 1000).unwrap_or(60).max(1));
        }
        *count += 1;
        Ok(())
    }
}

impl Default for ClaimLimiter {
    fn default() -> Self {
        Self::new(CLAIMS_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_over_its_budget_waits_for_the_next_minute() {
        let limiter = ClaimLimiter::new(2);
        let user = UserId::generate();
        assert!(limiter.take(user, 60_000).is_ok());
        assert!(limiter.take(user, 60_500).is_ok());
        assert_eq!(limiter.take(user, 61_000), Err(59));
        assert!(limiter.take(UserId::generate(), 61_000).is_ok(), "others are not affected");
        assert!(limiter.take(user, 120_000).is_ok());
    }
}
