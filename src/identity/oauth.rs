//! OAuth 2.0 authorization code grant with PKCE (RFC 6749 section 4.1, RFC 7636 with S256
//! only, as RFC 9700 recommends) for public clients: the request checks, the sign-in flows
//! waiting for a second factor, and the one-time authorization codes. The statements are in
//! `store/grants.rs`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant_actors::clock::Clock;
use confidant_actors::ids::UserId;
use sha2::{Digest, Sha256};

use super::error::AuthError;
use super::store::grants::{self as rows, StoredRequest};
use super::tokens::{self, Token, TokenKind};
use crate::settings::OAuthClient;
use crate::storage::Storage;

/// The client's side of an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// A registered public client.
    pub client_id: String,
    /// One of its registered redirect URIs, exactly.
    pub redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)).
    pub code_challenge: String,
    /// Opaque value the client gets back unchanged (CSRF protection on its side).
    pub state: Option<String>,
}

impl AuthorizationRequest {
    /// Checks the request against the registered clients before any credential is looked at
    /// (RFC 6749 section 4.1.2.1: never act on an unregistered redirect URI).
    pub fn check(&self, clients: &[OAuthClient], method: Option<&str>) -> Result<(), AuthError> {
        let registered = clients.iter().any(|c| c.id == self.client_id && c.redirect_uris.contains(&self.redirect_uri));
        if !registered {
            return Err(AuthError::OAuth { code: "invalid_client", description: "unknown client_id or redirect_uri" });
        }
        if method != Some("S256") {
            return Err(AuthError::invalid_request("code_challenge_method must be S256"));
        }
        let challenge_ok = self.code_challenge.len() == 43
            && self.code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !challenge_ok {
            return Err(AuthError::invalid_request("code_challenge must be 43 base64url characters (S256)"));
        }
        if let Some(state) = &self.state
            && (state.len() > 512 || !state.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(AuthError::invalid_request("state must be at most 512 visible ASCII characters"));
        }
        Ok(())
    }
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 section 4.1) hashes to
/// `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// A fresh PKCE verifier (32 random bytes, base64url: 43 characters) and its S256 challenge,
/// for a client the server runs itself (the portal's backend-for-frontend).
pub fn pkce_pair() -> (zeroize::Zeroizing<String>, String) {
    use rand_core::{OsRng, RngCore};
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    let verifier = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A pending sign-in or a code, as stored.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Whose.
    pub user_id: UserId,
    /// The request it answers.
    pub request: AuthorizationRequest,
    /// When a second factor was proved (codes only).
    pub mfa_at_ms: Option<i64>,
}

/// What redeeming a code found.
#[derive(Debug)]
pub enum Redeemed {
    /// Valid and now used: start the session with this id.
    Fresh(Pending, confidant_actors::ids::SessionId),
    /// Already exchanged: revoke the session it made (RFC 6749 section 4.1.2).
    Reused(confidant_actors::ids::SessionId),
    /// Unknown, expired, another client's, another redirect URI, or a wrong verifier.
    Invalid,
}

/// Sign-in flows and authorization codes.
#[derive(Clone)]
pub struct Grants {
    storage: Storage,
    clock: Arc<dyn Clock>,
}

impl Grants {
    /// The grant tables of `storage`.
    pub fn new(storage: Storage, clock: Arc<dyn Clock>) -> Self {
        Self { storage, clock }
    }

    /// Stores a sign-in waiting for its second factor; returns its token.
    pub async fn start_flow(
        &self,
        user: UserId,
        request: &AuthorizationRequest,
        lifetime_ms: i64,
    ) -> Result<Token, AuthError> {
        let now = self.clock.now_ms();
        let token = Token::generate(TokenKind::SignInFlow);
        rows::insert_flow(
            &self.storage,
            &token.hash(),
            &StoredRequest::of(user, request),
            now,
            now.saturating_add(lifetime_ms),
        )
        .await?;
        Ok(token)
    }

    /// The live flow `token` names (the client's `state` is not stored: it comes back with the
    /// second factor).
    pub async fn flow(&self, token: &str) -> Result<Option<Pending>, AuthError> {
        if !tokens::looks_like(TokenKind::SignInFlow, token) {
            return Ok(None);
        }
        let stored = rows::flow(&self.storage, &tokens::hash(token), self.clock.now_ms()).await?;
        Ok(stored.map(|stored| stored.pending(None)))
    }

    /// Ends a flow (its second factor was proved); `false` if another request ended it first.
    pub async fn finish_flow(&self, token: &str) -> Result<bool, AuthError> {
        Ok(rows::delete_flow(&self.storage, &tokens::hash(token)).await?)
    }

    /// Issues a one-time authorization code.
    pub async fn issue_code(
        &self,
        user: UserId,
        request: &AuthorizationRequest,
        mfa_at_ms: Option<i64>,
        lifetime_ms: i64,
    ) -> Result<Token, AuthError> {
        let now = self.clock.now_ms();
        let code = Token::generate(TokenKind::Code);
        let stored = StoredRequest::of(user, request);
        rows::insert_code(&self.storage, &code.hash(), &stored, mfa_at_ms, now, now.saturating_add(lifetime_ms))
            .await?;
        Ok(code)
    }

    /// Redeems a code once. It must be live, for this client and redirect URI, and match the
    /// verifier; a code that fails any check is deleted, so a verifier cannot be guessed.
    pub async fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Redeemed, AuthError> {
        if !tokens::looks_like(TokenKind::Code, code) {
            return Ok(Redeemed::Invalid);
        }
        let hash = tokens::hash(code);
        let Some(stored) = rows::code_by_hash(&self.storage, &hash).await? else { return Ok(Redeemed::Invalid) };
        if let Some(session) = stored.session_id {
            return Ok(Redeemed::Reused(session));
        }
        let expires_at_ms = stored.expires_at_ms;
        let pending = stored.request.pending(stored.mfa_at_ms);
        let valid = expires_at_ms > self.clock.now_ms()
            && pending.request.client_id == client_id
            && pending.request.redirect_uri == redirect_uri
            && pkce_matches(verifier, &pending.request.code_challenge);
        if !valid {
            rows::delete_unclaimed_code(&self.storage, &hash).await?;
            return Ok(Redeemed::Invalid);
        }
        let session = confidant_actors::ids::SessionId::generate();
        if !rows::claim_code(&self.storage, &hash, session).await? {
            return Ok(Redeemed::Invalid);
        }
        Ok(Redeemed::Fresh(pending, session))
    }
}

impl StoredRequest {
    /// What is stored of `request` from `user`.
    fn of(user: UserId, request: &AuthorizationRequest) -> Self {
        Self {
            user_id: user,
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
        }
    }

    /// The pending sign-in or code it is (its `state` is not stored).
    fn pending(self, mfa_at_ms: Option<i64>) -> Pending {
        Pending {
            user_id: self.user_id,
            request: AuthorizationRequest {
                client_id: self.client_id,
                redirect_uri: self.redirect_uri,
                code_challenge: self.code_challenge,
                state: None,
            },
            mfa_at_ms,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn clients() -> Vec<OAuthClient> {
        vec![OAuthClient { id: "portal".into(), redirect_uris: vec!["https://example.org/portal/".into()] }]
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "portal".into(),
            redirect_uri: "https://example.org/portal/".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            state: Some("xyz".into()),
        }
    }

    #[test]
    fn the_rfc_7636_example_verifier_matches_its_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn only_s256_registered_clients_and_exact_redirect_uris_are_accepted() {
        assert!(request().check(&clients(), Some("S256")).is_ok());
        let code = |r: Result<(), AuthError>| match r {
            Err(AuthError::OAuth { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(request().check(&clients(), Some("plain"))), "invalid_request");
        assert_eq!(code(request().check(&clients(), None)), "invalid_request");
        let other_uri = AuthorizationRequest { redirect_uri: "https://example.org/portal/x".into(), ..request() };
        assert_eq!(code(other_uri.check(&clients(), Some("S256"))), "invalid_client");
        let other_client = AuthorizationRequest { client_id: "evil".into(), ..request() };
        assert_eq!(code(other_client.check(&clients(), Some("S256"))), "invalid_client");
    }
}
