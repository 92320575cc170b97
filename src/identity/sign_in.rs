//! Sign-in and sessions, as the OAuth endpoints use them: password (then a second factor when
//! one is enrolled) yields an authorization code; the code with its PKCE verifier yields
//! tokens; refresh tokens rotate; access tokens are checked on every request. Each step is
//! throttled where it can be guessed and audited (success and failure) before it answers.

use confidant_actors::audit::{Action, AuditActor, Outcome, ResourceType};
use confidant_actors::ids::{SessionId, UserId};

use super::accounts::{AccountStatus, Email};
use super::attacks::{Pattern, SignInAttack};
use super::error::AuthError;
use super::oauth::{AuthorizationRequest, Redeemed};
use super::service::Identity;
use super::sessions::{AccessLifetime, EndReason, Issued, Lookup, RefreshFailure, SessionOwner};
use super::throttle::{Subject, Tripped};
use super::tokens::Token;
use super::{recovery, totp};
use crate::auditor::Origin;

/// What the password step gives.
pub enum Authorized {
    /// Signed in: exchange this code at the token endpoint.
    Code {
        /// The one-time authorization code.
        code: Token,
        /// The client's `state`, unchanged.
        state: Option<String>,
    },
    /// The account has TOTP: prove it with this flow token.
    SecondFactorRequired {
        /// The sign-in flow.
        flow: Token,
    },
}

/// A second factor as presented.
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    /// A 6-digit TOTP code.
    Totp(&'a str),
    /// A one-time recovery code.
    RecoveryCode(&'a str),
}

impl Identity {
    /// The password step of `POST /oauth/authorize`. Unknown, invited and disabled accounts get
    /// the same answer as a wrong password, after the same argon2id work.
    pub async fn authorize(
        &self,
        request: &AuthorizationRequest,
        email: &str,
        password: &str,
        origin: Origin,
    ) -> Result<Authorized, AuthError> {
        let email = Email::parse(email);
        // Checked: this account from this address, this address, and (unless the account
        // signed in from here lately) the account from anywhere. Counted: all three.
        let mut checked = Vec::with_capacity(3);
        let mut counted = Vec::with_capacity(3);
        if let Some(email) = &email {
            match origin.source_ip {
                Some(ip) => {
                    checked.push(Subject::AccountFrom(email, ip));
                    if !self.throttle.is_known_source(email, ip).await? {
                        checked.push(Subject::Account(email));
                    }
                    counted.push(Subject::AccountFrom(email, ip));
                }
                None => checked.push(Subject::Account(email)),
            }
            counted.push(Subject::Account(email));
        }
        if let Some(ip) = origin.source_ip {
            checked.push(Subject::Address(ip));
            counted.push(Subject::Address(ip));
        }
        let credentials = match &email {
            Some(email) => self.accounts.credentials(email).await?,
            None => None,
        };
        let actor =
            credentials.as_ref().map_or(AuditActor::Anonymous, |c| Self::user(c.account.user_id, c.account.role));
        if let Err(throttled) = self.throttle.check(&checked).await {
            self.audit(self.event(actor, Action::LoginFailure, Outcome::Denied, origin, "throttled")).await?;
            return Err(throttled);
        }

        let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
        let password_ok = self.hasher.verify_or_dummy(password, stored.as_deref()).await?;
        let failure = match &credentials {
            None => Some("unknown_account"),
            Some(_) if !password_ok => Some("wrong_password"),
            Some(c) if c.account.status == AccountStatus::Disabled => Some("account_disabled"),
            Some(c) if c.account.status == AccountStatus::Invited => Some("account_not_activated"),
            Some(_) => None,
        };
        if let Some(code) = failure {
            let tripped = self.throttle.failed(&counted).await?;
            let mut event = self.event(actor, Action::LoginFailure, Outcome::Denied, origin, code);
            if let Some(c) = &credentials {
                event = Self::on_account(event, c.account.user_id);
            }
            self.audit(event).await?;
            let account = credentials.as_ref().map(|c| c.account.user_id);
            self.attacks_noticed(tripped, actor, account, origin).await?;
            return Err(AuthError::InvalidCredentials);
        }
        let Some(credentials) = credentials else { return Err(AuthError::InvalidCredentials) };
        let account = credentials.account;
        if let Some(email) = &email {
            self.throttle.succeeded(Subject::Account(email)).await?;
            if let Some(ip) = origin.source_ip {
                self.throttle.succeeded(Subject::AccountFrom(email, ip)).await?;
                self.throttle.remember_source(email, ip).await?;
            }
        }
        if let Some(stored) = &stored
            && self.hasher.needs_rehash(stored)
        {
            let upgraded = self.hasher.hash(password).await?;
            self.accounts.set_password_hash(account.user_id, &upgraded, self.now_ms()).await?;
        }

        if account.totp_enabled {
            let flow =
                self.grants.start_flow(account.user_id, request, Self::ms(self.settings.sign_in_flow_secs)).await?;
            return Ok(Authorized::SecondFactorRequired { flow });
        }
        let event = self.event(
            Self::user(account.user_id, account.role),
            Action::LoginSuccess,
            Outcome::Success,
            origin,
            "password",
        );
        self.audit(Self::on_account(event, account.user_id)).await?;
        let code = self
            .grants
            .issue_code(account.user_id, request, None, Self::ms(self.settings.authorization_code_secs))
            .await?;
        Ok(Authorized::Code { code, state: request.state.clone() })
    }

    /// The patterns a failure revealed: each is audited as its own `login_failure` (reason
    /// `credential_stuffing` or `account_guessing`) and logged at warn, then handed to the
    /// attack alarm, which alerts the practice's owners. No address goes to the log: an IP
    /// address is an identifier under HIPAA; the audit record keeps it, as for every sign-in
    /// attempt, and the owners' alert names it (sealed at rest like every alert).
    async fn attacks_noticed(
        &self,
        tripped: Vec<Tripped>,
        actor: AuditActor,
        account: Option<UserId>,
        origin: Origin,
    ) -> Result<(), AuthError> {
        for trip in tripped {
            let code = trip.pattern.code();
            tracing::warn!(pattern = code, user_id = account.map(|u| u.to_string()), "sign-in attack pattern: locked");
            let event = self.event(actor, Action::LoginFailure, Outcome::Denied, origin, code);
            self.audit(match account {
                Some(user) => Self::on_account(event, user),
                None => event,
            })
            .await?;
            let Some(alarm) = &self.alarm else { continue };
            // Stuffing is told by its address (over many accounts); guessing by its account
            // (from many addresses).
            let (source_ip, named) = match trip.pattern {
                Pattern::CredentialStuffing => (origin.source_ip, None),
                Pattern::AccountGuessing => (None, account),
            };
            let attack = SignInAttack {
                pattern: trip.pattern,
                source_ip,
                account: named,
                failures: trip.failures,
                threshold: trip.threshold,
                source_key: trip.key,
                at_ms: self.now_ms(),
            };
            alarm.raise(attack).await;
        }
        Ok(())
    }

    /// The second-factor step: a TOTP code (each accepted once, across nodes) or a recovery
    /// code (each usable once) completes the sign-in flow.
    pub async fn second_factor(
        &self,
        flow_token: &str,
        factor: SecondFactor<'_>,
        state: Option<String>,
        origin: Origin,
    ) -> Result<Authorized, AuthError> {
        let Some(flow) = self.grants.flow(flow_token).await? else {
            self.audit(self.event(
                AuditActor::Anonymous,
                Action::MfaFailure,
                Outcome::Denied,
                origin,
                "unknown_sign_in_flow",
            ))
            .await?;
            return Err(AuthError::InvalidMfa);
        };
        let Some(account) = self.accounts.get(flow.user_id).await? else { return Err(AuthError::InvalidMfa) };
        let actor = Self::user(account.user_id, account.role);
        let mut subjects = vec![Subject::SecondFactor(account.user_id)];
        if let Some(ip) = origin.source_ip {
            subjects.push(Subject::Address(ip));
        }
        if let Err(throttled) = self.throttle.check(&subjects).await {
            self.audit(Self::on_account(
                self.event(actor, Action::MfaFailure, Outcome::Denied, origin, "throttled"),
                account.user_id,
            ))
            .await?;
            return Err(throttled);
        }

        let (proved, failure) = match factor {
            SecondFactor::Totp(code) => match self.check_totp(account.user_id, code).await? {
                TotpCheck::Accepted => (Some("totp"), ""),
                TotpCheck::Replayed => (None, "totp_replayed"),
                TotpCheck::Wrong => (None, "wrong_totp"),
            },
            SecondFactor::RecoveryCode(code) => {
                let used = match recovery::hash(&account.user_id, code) {
                    Some(hash) => self.accounts.use_recovery_code(account.user_id, &hash, self.now_ms()).await?,
                    None => false,
                };
                if used { (Some("recovery_code"), "") } else { (None, "wrong_recovery_code") }
            }
        };
        let Some(method) = proved else {
            // Wrong codes count against the address too, so they can complete a credential
            // stuffing pattern (an account's own second factor has its own lock, no pattern).
            let tripped = self.throttle.failed(&subjects).await?;
            self.audit(Self::on_account(
                self.event(actor, Action::MfaFailure, Outcome::Denied, origin, failure),
                account.user_id,
            ))
            .await?;
            self.attacks_noticed(tripped, actor, Some(account.user_id), origin).await?;
            return Err(AuthError::InvalidMfa);
        };
        if !self.grants.finish_flow(flow_token).await? {
            return Err(AuthError::InvalidMfa);
        }
        self.throttle.succeeded(Subject::SecondFactor(account.user_id)).await?;
        self.audit(Self::on_account(
            self.event(actor, Action::LoginSuccess, Outcome::Success, origin, method),
            account.user_id,
        ))
        .await?;
        let request = AuthorizationRequest { state, ..flow.request };
        let code = self
            .grants
            .issue_code(account.user_id, &request, Some(self.now_ms()), Self::ms(self.settings.authorization_code_secs))
            .await?;
        Ok(Authorized::Code { code, state: request.state })
    }

    /// Checks a TOTP code against the account's confirmed secret and uses its time step.
    pub(super) async fn check_totp(&self, user: UserId, code: &str) -> Result<TotpCheck, AuthError> {
        let Some((secret, _, last_step)) = self.accounts.totp(user).await? else { return Ok(TotpCheck::Wrong) };
        let now_secs = u64::try_from(self.now_ms() / 1000).unwrap_or(0);
        if let Some(step) = totp::verify(&secret, code, now_secs, last_step) {
            return Ok(if self.accounts.use_totp_step(user, step).await? {
                TotpCheck::Accepted
            } else {
                TotpCheck::Replayed
            });
        }
        // Tell a replay (a code valid now but already used) from a wrong code, for the audit.
        Ok(if last_step.is_some() && totp::verify(&secret, code, now_secs, None).is_some() {
            TotpCheck::Replayed
        } else {
            TotpCheck::Wrong
        })
    }

    /// `grant_type=authorization_code`: a valid code with its verifier starts a session. A code
    /// presented twice revokes the session the first exchange started.
    pub async fn exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        lifetime: AccessLifetime,
        origin: Origin,
    ) -> Result<(SessionOwner, Issued), AuthError> {
        match self.grants.redeem_code(code, client_id, redirect_uri, verifier).await? {
            Redeemed::Invalid => Err(AuthError::invalid_grant("the code is invalid, expired, used, or does not match")),
            Redeemed::Reused(session) => {
                if self.sessions.end(session, EndReason::CodeReuse).await? {
                    let event = self.event(
                        AuditActor::Anonymous,
                        Action::Logout,
                        Outcome::Success,
                        origin,
                        EndReason::CodeReuse.as_str(),
                    );
                    self.audit(event.on(ResourceType::Session, Some(*session.as_uuid()))).await?;
                }
                Err(AuthError::invalid_grant("the code was already used"))
            }
            Redeemed::Fresh(pending, session_id) => {
                let account =
                    self.accounts.get(pending.user_id).await?.ok_or(AuthError::invalid_grant("no such account"))?;
                if account.status != AccountStatus::Active {
                    return Err(AuthError::invalid_grant("the account is not active"));
                }
                let origin = Origin { session_id: Some(session_id), ..origin };
                let event = self.event(
                    Self::user(account.user_id, account.role),
                    Action::Create,
                    Outcome::Success,
                    origin,
                    "authorization_code",
                );
                self.audit(event.on(ResourceType::Session, Some(*session_id.as_uuid()))).await?;
                let issued =
                    self.sessions.start(session_id, account.user_id, client_id, pending.mfa_at_ms, lifetime).await?;
                let owner = SessionOwner {
                    session_id,
                    user_id: account.user_id,
                    role: account.role,
                    patient_id: account.patient_id,
                    mfa: pending.mfa_at_ms.is_some(),
                    expires_at_ms: issued.session_expires_at_ms,
                };
                Ok((owner, issued))
            }
        }
    }

    /// `grant_type=refresh_token`: rotates the refresh token. Reuse of a rotated one ends the
    /// session (the whole token family) and is audited.
    pub async fn refresh(&self, refresh_token: &str, client_id: &str, origin: Origin) -> Result<Issued, AuthError> {
        match self.sessions.refresh(refresh_token, client_id).await {
            Ok((_, issued)) => Ok(issued),
            Err(RefreshFailure::Invalid) => Err(AuthError::invalid_grant("the refresh token is invalid or expired")),
            Err(RefreshFailure::Failed(error)) => Err(error),
            Err(RefreshFailure::Reused(owner)) => {
                let origin = Origin { session_id: Some(owner.session_id), ..origin };
                let event = self.event(
                    Self::user(owner.user_id, owner.role),
                    Action::Logout,
                    Outcome::Success,
                    origin,
                    EndReason::RefreshTokenReuse.as_str(),
                );
                self.audit(event.on(ResourceType::Session, Some(*owner.session_id.as_uuid()))).await?;
                Err(AuthError::invalid_grant("the refresh token was already used; the session is revoked"))
            }
            Err(RefreshFailure::TimedOut(owner, reason)) => {
                self.audit_timeout(owner, reason, origin).await?;
                Err(AuthError::invalid_grant("the session expired"))
            }
        }
    }

    /// Checks an access token on an API request. A session found past its idle or absolute
    /// limit is ended now and the timeout audited.
    pub async fn authenticate(&self, access_token: &str, origin: Origin) -> Result<SessionOwner, AuthError> {
        match self.sessions.authenticate(access_token).await? {
            Lookup::Valid(owner) => Ok(owner),
            Lookup::Invalid => Err(AuthError::Unauthenticated),
            Lookup::TimedOut(owner, reason) => {
                self.audit_timeout(owner, reason, origin).await?;
                Err(AuthError::SessionExpired)
            }
        }
    }

    /// Ends a session that reached a limit elsewhere (its WebSocket) and audits the timeout;
    /// nothing is recorded if it had already ended.
    /// With `idle_for`, only a session with no request for that long is ended (a socket that
    /// idled out does not end a session still in use over HTTP; that socket's timeout is
    /// audited as `socket_idle_timeout`).
    pub async fn end_on_limit(
        &self,
        owner: SessionOwner,
        reason: EndReason,
        idle_for: Option<i64>,
        origin: Origin,
    ) -> Result<(), AuthError> {
        let ended = match idle_for {
            Some(idle_ms) => self.sessions.end_if_idle(owner.session_id, idle_ms, reason).await?,
            None => self.sessions.end(owner.session_id, reason).await?,
        };
        if ended {
            self.audit_timeout(owner, reason, origin).await?;
        } else if idle_for.is_some() {
            // Only the socket idled out; the session lives on over HTTP. Still a timeout.
            let origin = Origin { session_id: Some(owner.session_id), ..origin };
            let event = self.event(
                Self::user(owner.user_id, owner.role),
                Action::SessionTimeout,
                Outcome::Success,
                origin,
                "socket_idle_timeout",
            );
            self.audit(event.on(ResourceType::Session, Some(*owner.session_id.as_uuid()))).await?;
        }
        Ok(())
    }

    async fn audit_timeout(&self, owner: SessionOwner, reason: EndReason, origin: Origin) -> Result<(), AuthError> {
        let origin = Origin { session_id: Some(owner.session_id), ..origin };
        let action = match reason {
            EndReason::IdleTimeout | EndReason::AbsoluteTimeout => Action::SessionTimeout,
            _ => Action::Logout,
        };
        let event =
            self.event(Self::user(owner.user_id, owner.role), action, Outcome::Success, origin, reason.as_str());
        self.audit(event.on(ResourceType::Session, Some(*owner.session_id.as_uuid()))).await
    }

    /// Signs out of one session, or of every session of the account.
    pub async fn sign_out(&self, owner: &SessionOwner, everywhere: bool, origin: Origin) -> Result<u64, AuthError> {
        let reason = if everywhere { EndReason::SignOutEverywhere } else { EndReason::SignOut };
        let event = self.event(
            Self::user(owner.user_id, owner.role),
            Action::Logout,
            Outcome::Success,
            origin,
            reason.as_str(),
        );
        self.audit(event.on(ResourceType::Session, Some(*owner.session_id.as_uuid()))).await?;
        if everywhere {
            self.sessions.end_all(owner.user_id, reason).await
        } else {
            Ok(u64::from(self.sessions.end(owner.session_id, reason).await?))
        }
    }

    /// RFC 7009 revocation: ends the session the token belongs to. Unknown tokens are not an
    /// error (the client's goal, no usable token, is met).
    /// Returns the session ended, so its sockets can be closed.
    pub async fn revoke(&self, token: &str, origin: Origin) -> Result<Option<(SessionId, UserId)>, AuthError> {
        let Some((session, user)) = self.sessions.session_of(token).await? else { return Ok(None) };
        if let Some(account) = self.accounts.get(user).await? {
            let origin = Origin { session_id: Some(session), ..origin };
            let event =
                self.event(Self::user(user, account.role), Action::Logout, Outcome::Success, origin, "token_revoked");
            self.audit(event.on(ResourceType::Session, Some(*session.as_uuid()))).await?;
        }
        self.sessions.end(session, EndReason::SignOut).await?;
        Ok(Some((session, user)))
    }
}

/// What a TOTP check found.
pub(super) enum TotpCheck {
    /// Right, and its time step is now used.
    Accepted,
    /// A code that was right but whose step was already used.
    Replayed,
    /// Wrong.
    Wrong,
}
