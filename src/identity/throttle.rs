//! Brute-force limits on sign-in and second factors, kept in the database so every node sees
//! the same counts. After a subject's free failures, each further failure locks it for a
//! doubling delay up to a maximum; failures are forgotten after a quiet period. Keys are HMACs
//! under the index key: the tables hold no email or address. The statements are in
//! `store/throttles.rs`.
//!
//! The subjects are chosen so that a stranger cannot lock an account's owner out:
//! - an account *from one address* locks after `account_free_failures` (5): a guesser stops
//!   themselves, not the owner signing in from elsewhere;
//! - an address locks after `address_free_failures` (20) over all accounts: credential
//!   stuffing from one place;
//! - an account from *all* addresses locks after `account_cap_failures` (100, the most NIST
//!   SP 800-63B 5.2.2 allows) consecutive failures, a guesser spread over many addresses; an
//!   address the account signed in from successfully in the last `known_source_days` is not
//!   held by that lock, so even then the owner signs in from their usual place.
//!
//! The first lock of an address or of a whole account is reported ([`Tripped`]) so that it is
//! audited, logged and alerted to owners as a pattern ([`super::attacks`]), not only as one
//! more failure. A subject locks for the first time once per run of failures: a run of 10,000
//! attempts from one address is one pattern, noticed once.

use std::net::IpAddr;
use std::sync::Arc;

use confidant_actors::clock::Clock;
use confidant_actors::ids::UserId;

use super::accounts::Email;
use super::attacks::Pattern;
use super::error::AuthError;
use super::store::throttles as rows;
use crate::crypto::Keyring;
use crate::settings::IdentitySettings;
use crate::storage::StorageError;

/// What failures are counted against.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// Sign-ins naming this email (whether or not the account exists) from this address.
    AccountFrom(&'a Email, IpAddr),
    /// Sign-ins naming this email from anywhere: the account's cap.
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

/// A subject that has just locked for the first time since its failures were last forgotten:
/// a pattern worth an audit record, a log line and an owners' alert of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tripped {
    /// An address that failed for more accounts, or more often, than one person does
    /// (credential stuffing); or an account that failed more often than its cap, from many
    /// addresses (account guessing).
    pub pattern: Pattern,
    /// Its failures now.
    pub failures: u32,
    /// The failures it was allowed.
    pub threshold: u32,
    /// The subject's key (an HMAC: no address or email in the clear).
    pub key: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Rules {
    account_free: u32,
    account_cap: u32,
    address_free: u32,
    known_source_ms: i64,
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
            account_cap: settings.account_cap_failures,
            address_free: settings.address_free_failures,
            known_source_ms: ms(settings.known_source_days.saturating_mul(86_400)),
            base_ms: ms(settings.lock_base_secs),
            max_ms: ms(settings.lock_max_secs),
            memory_ms: ms(settings.failure_memory_secs),
        };
        Self { keyring, clock, rules }
    }

    fn key(&self, subject: Subject<'_>) -> Vec<u8> {
        match subject {
            Subject::AccountFrom(email, ip) => {
                self.keyring.blind_index("throttles", "account_from", &format!("{}\n{ip}", email.expose()))
            }
            Subject::Account(email) => self.keyring.blind_index("throttles", "account", email.expose()),
            Subject::Address(ip) => self.keyring.blind_index("throttles", "address", &ip.to_string()),
            Subject::SecondFactor(user) => self.keyring.blind_index("throttles", "second_factor", &user.to_string()),
        }
    }

    fn free(&self, subject: Subject<'_>) -> u32 {
        match subject {
            Subject::Address(_) => self.rules.address_free,
            Subject::Account(_) => self.rules.account_cap,
            Subject::AccountFrom(..) | Subject::SecondFactor(_) => self.rules.account_free,
        }
    }

    fn source_key(&self, email: &Email, ip: IpAddr) -> Vec<u8> {
        self.keyring.blind_index("sign_in_sources", "source", &format!("{}\n{ip}", email.expose()))
    }

    /// Whether the account of `email` signed in successfully from `ip` within
    /// `known_source_days`: such an address is not held by the account-wide lock.
    pub async fn is_known_source(&self, email: &Email, ip: IpAddr) -> Result<bool, StorageError> {
        let since = self.clock.now_ms().saturating_sub(self.rules.known_source_ms);
        rows::known_source(self.keyring.storage(), self.source_key(email, ip), since).await
    }

    /// Remembers that the account of `email` signed in successfully from `ip`.
    pub async fn remember_source(&self, email: &Email, ip: IpAddr) -> Result<(), StorageError> {
        rows::remember_source(self.keyring.storage(), self.source_key(email, ip), self.clock.now_ms()).await
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

    /// Counts a failure against each subject and locks those past their free failures; returns
    /// the address and account locks this failure set off for the first time.
    pub async fn failed(&self, subjects: &[Subject<'_>]) -> Result<Vec<Tripped>, StorageError> {
        let now = self.clock.now_ms();
        let storage = self.keyring.storage();
        let mut tripped = Vec::new();
        for &subject in subjects {
            let key = self.key(subject);
            let failures = rows::count_failure(storage, &key, now, now.saturating_sub(self.rules.memory_ms)).await?;
            let free = self.free(subject);
            let delay = lock_ms(self.rules, free, failures);
            if delay > 0 {
                rows::lock(storage, &key, now.saturating_add(delay)).await?;
            }
            if failures == i64::from(free) + 1 {
                let pattern = match subject {
                    Subject::Address(_) => Some(Pattern::CredentialStuffing),
                    Subject::Account(_) => Some(Pattern::AccountGuessing),
                    Subject::AccountFrom(..) | Subject::SecondFactor(_) => None,
                };
                if let Some(pattern) = pattern {
                    let failures = u32::try_from(failures).unwrap_or(u32::MAX);
                    tripped.push(Tripped { pattern, failures, threshold: free, key });
                }
            }
        }
        Ok(tripped)
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

    const RULES: Rules = Rules {
        account_free: 5,
        account_cap: 100,
        address_free: 20,
        known_source_ms: 1,
        base_ms: 2000,
        max_ms: 900_000,
        memory_ms: 1,
    };

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        let delays: Vec<i64> = (1..=8).map(|n| lock_ms(RULES, 5, n)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 2000, 4000, 8000]);
        assert_eq!(lock_ms(RULES, 5, 30), 900_000);
        assert_eq!(lock_ms(RULES, 5, i64::MAX), 900_000);
    }
}
