//! Brute-force limits on sign-in and second factors, per account and per source address, kept
//! in the database so every node sees the same counts. After the free failures, each further
//! failure locks the subject for a doubling delay up to a maximum; failures are forgotten after
//! a quiet period. Keys are HMACs under the index key: the table holds no email or address.
//! The statements are in `store/throttles.rs`.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::clock::Clock;
use confidant_actors::ids::UserId;

use super::accounts::Email;
use super::error::AuthError;
use super::store::throttles as rows;
use crate::crypto::Keyring;
use crate::settings::IdentitySettings;
use crate::storage::StorageError;

/// What failures are counted against.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// Sign-ins naming this email (whether or not the account exists).
    Account(&'a Email),
    /// Sign-ins from this address.
    Address(IpAddr),
    /// Second-factor attempts for this account.
    SecondFactor(UserId),
}

/// The throttle table and its rules.
#[derive(Clone)]
pub struct Throttle {
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    rules: Rules,
}

#[derive(Debug, Clone, Copy)]
struct Rules {
    account_free: u32,
    address_free: u32,
    base_ms: i64,
    max_ms: i64,
    memory_ms: i64,
}

impl Throttle {
    /// Throttling by `settings`, keyed with `keyring`'s index key.
    pub fn new(keyring: Arc<Keyring>, clock: Arc<dyn Clock>, settings: &IdentitySettings) -> Self {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let rules = Rules {
            account_free: settings.account_free_failures,
            address_free: settings.address_free_failures,
            base_ms: ms(settings.lock_base_secs),
            max_ms: ms(settings.lock_max_secs),
            memory_ms: ms(settings.failure_memory_secs),
        };
        Self { keyring, clock, rules }
    }

    fn key(&self, subject: Subject<'_>) -> Vec<u8> {
        match subject {
            Subject::Account(email) => self.keyring.blind_index("throttles", "account", email.expose()),
            Subject::Address(ip) => self.keyring.blind_index("throttles", "address", &ip.to_string()),
            Subject::SecondFactor(user) => self.keyring.blind_index("throttles", "second_factor", &user.to_string()),
        }
    }

    fn free(&self, subject: Subject<'_>) -> u32 {
        match subject {
            Subject::Address(_) => self.rules.address_free,
            Subject::Account(_) | Subject::SecondFactor(_) => self.rules.account_free,
        }
    }

    /// Refuses with [`AuthError::Throttled`] while any of `subjects` is locked.
    pub async fn check(&self, subjects: &[Subject<'_>]) -> Result<(), AuthError> {
        let now = self.clock.now_ms();
        let mut wait_ms = 0i64;
        for &subject in subjects {
            let locked = rows::locked_until(self.keyring.storage(), self.key(subject)).await?;
            wait_ms = wait_ms.max(locked.unwrap_or(0) - now);
        }
        if wait_ms > 0 {
            let retry_after_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000);
            return Err(AuthError::Throttled { retry_after_secs });
        }
        Ok(())
    }

    /// Counts a failure against each subject and locks those past their free failures.
    pub async fn failed(&self, subjects: &[Subject<'_>]) -> Result<(), StorageError> {
        let now = self.clock.now_ms();
        let storage = self.keyring.storage();
        for &subject in subjects {
            let key = self.key(subject);
            let failures = rows::count_failure(storage, &key, now, now.saturating_sub(self.rules.memory_ms)).await?;
            let delay = lock_ms(self.rules, self.free(subject), failures);
            if delay > 0 {
                rows::lock(storage, &key, now.saturating_add(delay)).await?;
            }
        }
        Ok(())
    }

    /// Forgets the failures of `subject` (after a success).
    pub async fn succeeded(&self, subject: Subject<'_>) -> Result<(), StorageError> {
        rows::forget(self.keyring.storage(), self.key(subject)).await
    }
}

/// The lock after the `failures`-th failure: none within the free ones, then the base delay
/// doubling per failure, capped.
fn lock_ms(rules: Rules, free: u32, failures: i64) -> i64 {
    let over = failures - i64::from(free);
    if over <= 0 {
        return 0;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(40);
    rules.base_ms.saturating_mul(1i64 << doublings).min(rules.max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules { account_free: 5, address_free: 20, base_ms: 2000, max_ms: 900_000, memory_ms: 1 };

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        let delays: Vec<i64> = (1..=8).map(|n| lock_ms(RULES, 5, n)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 2000, 4000, 8000]);
        assert_eq!(lock_ms(RULES, 5, 30), 900_000);
        assert_eq!(lock_ms(RULES, 5, i64::MAX), 900_000);
    }
}
