//! [`Identity`]: the account, session, grant and throttle tables with the password hasher, the
//! clock and the auditor, so each identity operation (in [`super::sign_in`] and
//! [`super::enrollment`]) is one method that checks, acts and audits.

use std::sync::Arc;

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::ids::UserId;

use super::accounts::Accounts;
use super::attacks::AttackAlarm;
use super::error::AuthError;
use super::oauth::Grants;
use super::password::PasswordHasher;
use super::sessions::Sessions;
use super::throttle::Throttle;
use crate::auditor::{Auditor, Origin};
use crate::crypto::Keyring;
use crate::settings::IdentitySettings;

/// The identity layer of one node.
#[derive(Clone)]
pub struct Identity {
    /// Accounts, invitations, TOTP secrets and recovery codes.
    pub accounts: Accounts,
    /// Sessions and their tokens.
    pub sessions: Sessions,
    /// Sign-in flows and authorization codes.
    pub grants: Grants,
    /// Brute-force limits.
    pub throttle: Throttle,
    /// argon2id on the blocking pool.
    pub hasher: PasswordHasher,
    /// Time, injectable for tests.
    pub clock: Arc<dyn Clock>,
    pub(super) settings: IdentitySettings,
    auditor: Auditor,
    /// Who hears of sign-in attack patterns (the owners' alerts); none for the command line.
    pub(super) alarm: Option<Arc<dyn AttackAlarm>>,
}

impl Identity {
    /// The identity layer over `keyring`'s store, auditing through `auditor`.
    pub fn new(
        keyring: Arc<Keyring>,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        settings: &IdentitySettings,
        auditor: Auditor,
    ) -> Self {
        let storage = keyring.storage().clone();
        Self {
            accounts: Accounts::new(storage.clone(), keyring.clone()),
            sessions: Sessions::new(storage.clone(), clock.clone(), settings),
            grants: Grants::new(storage, clock.clone()),
            throttle: Throttle::new(keyring, clock.clone(), settings),
            hasher,
            clock,
            settings: settings.clone(),
            auditor,
            alarm: None,
        }
    }

    /// This layer, telling `alarm` of every sign-in attack pattern it notices (the node wires
    /// the alerts service in here once it is built over these accounts).
    pub fn with_alarm(mut self, alarm: Arc<dyn AttackAlarm>) -> Self {
        self.alarm = Some(alarm);
        self
    }

    /// The settings this layer runs with.
    pub fn settings(&self) -> &IdentitySettings {
        &self.settings
    }

    /// Now, from the injected clock.
    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Milliseconds of a `*_secs` setting.
    pub(super) fn ms(secs: u64) -> i64 {
        i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// An event about an account, from `origin`.
    pub(super) fn event(
        &self,
        actor: AuditActor,
        action: Action,
        outcome: Outcome,
        origin: Origin,
        code: &'static str,
    ) -> AuditEvent {
        self.auditor.event(actor, &origin, action, outcome, code)
    }

    /// Records `event` and waits until it is durable; if it cannot be, the operation fails.
    pub(super) async fn audit(&self, event: AuditEvent) -> Result<(), AuthError> {
        self.auditor.record(event).await.map_err(|_| AuthError::AuditUnavailable)
    }

    /// An audit actor for a known account.
    pub(super) fn user(user_id: UserId, role: Role) -> AuditActor {
        AuditActor::User { id: user_id, role }
    }

    /// Tags `event` as being about `user`'s account.
    pub(super) fn on_account(event: AuditEvent, user: UserId) -> AuditEvent {
        event.on(ResourceType::User, Some(*user.as_uuid()))
    }
}
