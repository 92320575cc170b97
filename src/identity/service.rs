//! [`Identity`]: the account, session, grant and throttle tables with the password hasher, the
//! clock and the audit writer, so each identity operation (in [`super::sign_in`] and
//! [`super::enrollment`]) is one method that checks, acts and audits.

use std::net::IpAddr;
use std::sync::Arc;

use actix::Addr;
use confidant_actors::audit::{Action, AuditActor, AuditEvent, AuditWriter, Outcome, ResourceType, Role, record};
use confidant_actors::clock::Clock;
use confidant_actors::ids::{NodeId, RequestId, SessionId, UserId};

use super::accounts::Accounts;
use super::error::AuthError;
use super::oauth::Grants;
use super::password::PasswordHasher;
use super::sessions::Sessions;
use super::throttle::Throttle;
use crate::crypto::Keyring;
use crate::server::{AUDIT_ACK_TIMEOUT, reason};
use crate::settings::IdentitySettings;

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    /// The HTTP request.
    pub request_id: Option<RequestId>,
    /// The peer address.
    pub source_ip: Option<IpAddr>,
    /// The session, when the caller is signed in.
    pub session_id: Option<SessionId>,
}

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
    audit: Addr<AuditWriter>,
    node_id: NodeId,
}

impl Identity {
    /// The identity layer over `keyring`'s store, auditing through `audit`.
    pub fn new(
        keyring: Arc<Keyring>,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        settings: &IdentitySettings,
        audit: Addr<AuditWriter>,
        node_id: NodeId,
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
            audit,
            node_id,
        }
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
        let mut event = AuditEvent::new(self.node_id, actor, action, outcome).because(reason(code));
        if let Some(request) = origin.request_id {
            event = event.from_request(request, origin.source_ip);
        } else {
            event.source_ip = origin.source_ip;
        }
        if let Some(session) = origin.session_id {
            event = event.in_session(session);
        }
        event
    }

    /// Records `event` and waits until it is durable; if it cannot be, the operation fails.
    pub(super) async fn audit(&self, event: AuditEvent) -> Result<(), AuthError> {
        record(&self.audit, event, AUDIT_ACK_TIMEOUT).await.map_err(|error| {
            tracing::error!(%error, "could not write an identity audit event");
            AuthError::AuditUnavailable
        })
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
