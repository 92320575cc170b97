//! Sign-in attack patterns as identity reports them, and the port through which it does. The
//! throttle notices a pattern when a subject locks for the first time since its failures were
//! last forgotten ([`super::throttle::Tripped`]); sign-in audits it and hands it to the
//! [`AttackAlarm`] the node was built with, which alerts the practice's owners (the alerts
//! service implements it). Identity declares the port so it needs nothing of the alerts layer.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use confidant_actors::ids::UserId;

/// Which pattern a lock revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// One address failed past its limit over any accounts: credentials tried in bulk.
    CredentialStuffing,
    /// One account failed past its cap from many addresses: its password guessed.
    AccountGuessing,
}

impl Pattern {
    /// The audit reason code and wire name.
    pub const fn code(self) -> &'static str {
        match self {
            Pattern::CredentialStuffing => "credential_stuffing",
            Pattern::AccountGuessing => "account_guessing",
        }
    }
}

/// One sign-in attack pattern, noticed at its first lock. Holds no email and no password: the
/// source is the address (credential stuffing) or the account (guessing), and `source_key` is
/// the throttle's HMAC of that subject, which names it without either in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInAttack {
    /// Which pattern.
    pub pattern: Pattern,
    /// For credential stuffing, the address the failures came from.
    pub source_ip: Option<IpAddr>,
    /// For account guessing, the account, when the email tried is an account's.
    pub account: Option<UserId>,
    /// Failures counted when it locked.
    pub failures: u32,
    /// The failures the subject was allowed before it locked.
    pub threshold: u32,
    /// The throttle's key of the subject (an HMAC under the index key): the same source gives
    /// the same key, so alerts can be told apart by source without naming it.
    pub source_key: Vec<u8>,
    /// When it locked (UTC ms).
    pub at_ms: i64,
}

impl std::fmt::Debug for SignInAttack {
    /// No address: an IP address is an identifier.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInAttack")
            .field("pattern", &self.pattern)
            .field("account", &self.account)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// Who hears of sign-in attack patterns. Raising must not fail the sign-in that revealed the
/// pattern (its answer is a 401 either way), so the alarm reports its own failures (logged).
pub trait AttackAlarm: Send + Sync {
    /// Tells of `attack`; returns once it is dealt with (stored and pushed, or found to be a
    /// repeat of one already raised).
    fn raise(&self, attack: SignInAttack) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
