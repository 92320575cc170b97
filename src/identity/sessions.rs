//! Server-side sessions and their tokens. A session starts when an authorization code is
//! exchanged and ends on sign-out, on its idle or absolute limit, when a rotated refresh
//! token is presented again (the whole family dies), or when its account is disabled. Every
//! API request looks its access token up here, so an ended session is refused at once, on
//! every node. The statements are in `store/sessions.rs`.

use std::sync::Arc;

use confidant_actors::clock::Clock;
use confidant_actors::ids::{SessionId, UserId};

use super::error::AuthError;
use super::store::sessions::{self as rows, NewSession, NewToken, RefreshRow, SessionState};
use super::tokens::{self, Token, TokenKind};
use crate::settings::IdentitySettings;
use crate::storage::Storage;

pub use super::store::sessions::SessionOwner;

/// Why a session ended (stored, and the audit reason code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The user signed out of this session.
    SignOut,
    /// The user signed out of every session.
    SignOutEverywhere,
    /// No request within the idle limit.
    IdleTimeout,
    /// The absolute lifetime passed.
    AbsoluteTimeout,
    /// A rotated refresh token was presented again: it may have been stolen.
    RefreshTokenReuse,
    /// An authorization code was exchanged twice (RFC 6749 section 4.1.2).
    CodeReuse,
    /// The account was disabled.
    AccountDisabled,
}

impl EndReason {
    /// The stored text, also the audit reason code.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::SignOut => "sign_out",
            EndReason::SignOutEverywhere => "sign_out_everywhere",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::AbsoluteTimeout => "absolute_timeout",
            EndReason::RefreshTokenReuse => "refresh_token_reuse",
            EndReason::CodeReuse => "authorization_code_reuse",
            EndReason::AccountDisabled => "account_disabled",
        }
    }
}

/// How long a session's access token lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLifetime {
    /// `access_token_secs`: an OAuth client holds it and refreshes.
    Short,
    /// As long as the session: the portal's HttpOnly cookie, which script never reads and which
    /// has no refresh token. The session's idle and absolute limits still end it.
    Session,
}

/// Tokens handed out for a session (shown once).
pub struct Issued {
    /// The session.
    pub session_id: SessionId,
    /// Bearer token for API requests.
    pub access: Token,
    /// For `grant_type=refresh_token`; used once.
    pub refresh: Token,
    /// Seconds the access token lives.
    pub expires_in_secs: u64,
    /// When the session ends at the latest (UTC ms).
    pub session_expires_at_ms: i64,
}

/// What looking up an access token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A live session; its last activity is now.
    Valid(SessionOwner),
    /// The session just reached a limit and was ended now (audit the timeout).
    TimedOut(SessionOwner, EndReason),
    /// No such token, an expired one, or an ended session.
    Invalid,
}

/// Lifetimes, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    idle_ms: i64,
    absolute_ms: i64,
    access_ms: i64,
}

/// The session tables.
#[derive(Clone)]
pub struct Sessions {
    storage: Storage,
    clock: Arc<dyn Clock>,
    limits: Limits,
}

impl Sessions {
    /// Sessions of `storage` with the limits of `settings`.
    pub fn new(storage: Storage, clock: Arc<dyn Clock>, settings: &IdentitySettings) -> Self {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let limits = Limits {
            idle_ms: ms(settings.session_idle_secs),
            absolute_ms: ms(settings.session_absolute_secs),
            access_ms: ms(settings.access_token_secs),
        };
        Self { storage, clock, limits }
    }

    /// Starts session `session_id` for `user` through `client` (with `mfa_at_ms` when a second
    /// factor was proved) and issues its first tokens.
    pub async fn start(
        &self,
        session_id: SessionId,
        user: UserId,
        client_id: &str,
        mfa_at_ms: Option<i64>,
        lifetime: AccessLifetime,
    ) -> Result<Issued, AuthError> {
        let now = self.clock.now_ms();
        let expires = now.saturating_add(self.limits.absolute_ms);
        let access_ms = match lifetime {
            AccessLifetime::Short => self.limits.access_ms,
            AccessLifetime::Session => self.limits.absolute_ms,
        };
        let (issued, tokens) = self.issue(session_id, now, expires, access_ms);
        let session =
            NewSession { session_id, user_id: user, client_id, mfa_at_ms, now_ms: now, expires_at_ms: expires };
        rows::insert(&self.storage, &session, &tokens).await?;
        Ok(issued)
    }

    /// New access and refresh tokens of `session_id`, and the rows that store them.
    fn issue(&self, session_id: SessionId, now: i64, session_expires: i64, access_ms: i64) -> (Issued, [NewToken; 2]) {
        let access = Token::generate(TokenKind::Access);
        let refresh = Token::generate(TokenKind::Refresh);
        let access_expires = now.saturating_add(access_ms).min(session_expires);
        let rows = [
            NewToken { hash: access.hash(), kind: "access", created_at_ms: now, expires_at_ms: access_expires },
            NewToken { hash: refresh.hash(), kind: "refresh", created_at_ms: now, expires_at_ms: session_expires },
        ];
        let expires_in_secs = u64::try_from((access_expires - now) / 1000).unwrap_or(0);
        (Issued { session_id, access, refresh, expires_in_secs, session_expires_at_ms: session_expires }, rows)
    }

    /// Looks up an access token: a live session is touched (its idle clock restarts); one past
    /// a limit is ended now.
    pub async fn authenticate(&self, presented: &str) -> Result<Lookup, AuthError> {
        if !tokens::looks_like(TokenKind::Access, presented) {
            return Ok(Lookup::Invalid);
        }
        let now = self.clock.now_ms();
        let Some(state) = rows::by_access_token(&self.storage, &tokens::hash(presented), now).await? else {
            return Ok(Lookup::Invalid);
        };
        if state.ended {
            return Ok(Lookup::Invalid);
        }
        if let Some(reason) = self.limit_reached(&state, now) {
            return Ok(if self.end(state.owner.session_id, reason).await? {
                Lookup::TimedOut(state.owner, reason)
            } else {
                Lookup::Invalid
            });
        }
        // Activity; a write per request at most once a second.
        rows::seen(&self.storage, state.owner.session_id, now, now - 1000).await?;
        Ok(Lookup::Valid(state.owner))
    }

    /// Which limit, if any, ends this session at `now` (a disabled account counts).
    fn limit_reached(&self, state: &SessionState, now: i64) -> Option<EndReason> {
        if !state.active_account {
            Some(EndReason::AccountDisabled)
        } else if now >= state.expires_at_ms {
            Some(EndReason::AbsoluteTimeout)
        } else if now - state.last_seen_at_ms >= self.limits.idle_ms {
            Some(EndReason::IdleTimeout)
        } else {
            None
        }
    }

    /// Exchanges a refresh token for new tokens; the old one is used up. Presenting a used one
    /// ends the session (every token of the family). The refresh does not count as activity:
    /// a client refreshing in the background does not keep an idle session alive.
    pub async fn refresh(&self, presented: &str, client_id: &str) -> Result<(SessionOwner, Issued), RefreshFailure> {
        let invalid = RefreshFailure::Invalid;
        if !tokens::looks_like(TokenKind::Refresh, presented) {
            return Err(invalid);
        }
        let now = self.clock.now_ms();
        let found = rows::by_refresh_token(&self.storage, &tokens::hash(presented)).await.map_err(AuthError::from)?;
        let Some(RefreshRow { state, used_at_ms, client_id: session_client }) = found else { return Err(invalid) };
        if state.ended || session_client != client_id {
            return Err(invalid);
        }
        if used_at_ms.is_some() {
            self.end(state.owner.session_id, EndReason::RefreshTokenReuse).await?;
            return Err(RefreshFailure::Reused(state.owner));
        }
        if let Some(reason) = self.limit_reached(&state, now) {
            return Err(if self.end(state.owner.session_id, reason).await? {
                RefreshFailure::TimedOut(state.owner, reason)
            } else {
                invalid
            });
        }
        let (issued, tokens) = self.issue(state.owner.session_id, now, state.expires_at_ms, self.limits.access_ms);
        let rotated = rows::rotate(&self.storage, &tokens::hash(presented), now, state.owner.session_id, &tokens)
            .await
            .map_err(AuthError::from)?;
        if !rotated {
            // Another request rotated it first: two holders of one token.
            self.end(state.owner.session_id, EndReason::RefreshTokenReuse).await?;
            return Err(RefreshFailure::Reused(state.owner));
        }
        Ok((state.owner, issued))
    }

    /// Ends a live session; `false` when it had already ended.
    pub async fn end(&self, session: SessionId, reason: EndReason) -> Result<bool, AuthError> {
        Ok(rows::end(&self.storage, session, self.clock.now_ms(), reason.as_str()).await?)
    }

    /// Ends a live session that saw no request for `idle_ms`; `false` when it had ended or is
    /// in use.
    pub async fn end_if_idle(&self, session: SessionId, idle_ms: i64, reason: EndReason) -> Result<bool, AuthError> {
        let now = self.clock.now_ms();
        Ok(rows::end_if_unseen_since(&self.storage, session, now, reason.as_str(), now.saturating_sub(idle_ms)).await?)
    }

    /// Ends every live session of `user`; returns how many.
    pub async fn end_all(&self, user: UserId, reason: EndReason) -> Result<u64, AuthError> {
        Ok(rows::end_all(&self.storage, user, self.clock.now_ms(), reason.as_str()).await?)
    }

    /// Records activity seen elsewhere (a WebSocket), so the session does not idle out.
    pub async fn touch(&self, session: SessionId) -> Result<(), AuthError> {
        Ok(rows::touch(&self.storage, session, self.clock.now_ms()).await?)
    }

    /// Sessions that ended at or after `since_ms` (any node's sign-out, disable, reuse of a
    /// token), so each node can close their sockets even when no announcement reached it.
    pub async fn ended_since(&self, since_ms: i64) -> Result<Vec<(SessionId, UserId)>, AuthError> {
        Ok(rows::ended_since(&self.storage, since_ms).await?)
    }

    /// Marks a session as having proved a second factor (after TOTP enrollment in it).
    pub async fn mark_mfa(&self, session: SessionId) -> Result<(), AuthError> {
        Ok(rows::mark_mfa(&self.storage, session, self.clock.now_ms()).await?)
    }

    /// The session a refresh or access token belongs to, live or not (for revocation, RFC 7009).
    pub async fn session_of(&self, presented: &str) -> Result<Option<(SessionId, UserId)>, AuthError> {
        Ok(rows::session_of(&self.storage, &tokens::hash(presented)).await?)
    }
}

/// Why a refresh was refused.
#[derive(Debug)]
pub enum RefreshFailure {
    /// Unknown token, another client's, or an ended session.
    Invalid,
    /// A used token was presented again; the session was ended (audit it).
    Reused(SessionOwner),
    /// The session reached a limit and was ended now (audit the timeout).
    TimedOut(SessionOwner, EndReason),
    /// The lookup itself failed.
    Failed(AuthError),
}

impl From<AuthError> for RefreshFailure {
    fn from(error: AuthError) -> Self {
        RefreshFailure::Failed(error)
    }
}
