//! The portal's backend-for-frontend sign-in (IETF "OAuth 2.0 for Browser-Based Applications",
//! the BFF pattern): the server plays the OAuth client for the browser. It makes the PKCE pair,
//! runs the password and second-factor steps of [`super::sign_in`] for the registered `portal`
//! client, exchanges the code itself, and hands the browser only an HttpOnly cookie holding an
//! access token that lives as long as the session. Every step is throttled and audited exactly
//! as for any other client.

use zeroize::Zeroizing;

use super::error::AuthError;
use super::oauth::{AuthorizationRequest, pkce_pair};
use super::service::Identity;
use super::sessions::{AccessLifetime, Issued, SessionOwner};
use super::sign_in::{Authorized, SecondFactor};
use crate::auditor::Origin;

/// The OAuth client the portal signs in as; it must be registered in `identity.clients`.
pub const PORTAL_CLIENT: &str = "portal";

/// Where a browser sign-in stands.
pub enum BrowserSignIn {
    /// Signed in: set the session cookie to `issued.access`.
    SignedIn(SessionOwner, Issued),
    /// The second factor is due. `pending` (the flow token and the PKCE verifier) goes into a
    /// short-lived HttpOnly cookie and comes back with the code.
    SecondFactor {
        /// `{flow token}.{verifier}`.
        pending: Zeroizing<String>,
    },
}

impl Identity {
    /// The password step of a browser sign-in.
    pub async fn browser_sign_in(
        &self,
        email: &str,
        password: &str,
        origin: Origin,
    ) -> Result<BrowserSignIn, AuthError> {
        let (verifier, request) = self.portal_request()?;
        match self.authorize(&request, email, password, origin).await? {
            Authorized::Code { code, .. } => self.browser_session(code.expose(), &request, &verifier, origin).await,
            Authorized::SecondFactorRequired { flow } => {
                Ok(BrowserSignIn::SecondFactor { pending: Zeroizing::new(format!("{}.{}", flow.expose(), *verifier)) })
            }
        }
    }

    /// The second-factor step of a browser sign-in, with the `pending` value of the first.
    pub async fn browser_second_factor(
        &self,
        pending: &str,
        factor: SecondFactor<'_>,
        origin: Origin,
    ) -> Result<BrowserSignIn, AuthError> {
        let (flow, verifier) = pending.split_once('.').ok_or(AuthError::InvalidMfa)?;
        // The challenge was stored with the flow; the exchange needs only client and redirect URI.
        let request = self.portal_request_for("")?;
        match self.second_factor(flow, factor, None, origin).await? {
            Authorized::Code { code, .. } => self.browser_session(code.expose(), &request, verifier, origin).await,
            Authorized::SecondFactorRequired { .. } => Err(AuthError::InvalidMfa),
        }
    }

    async fn browser_session(
        &self,
        code: &str,
        request: &AuthorizationRequest,
        verifier: &str,
        origin: Origin,
    ) -> Result<BrowserSignIn, AuthError> {
        let (owner, issued) = self
            .exchange_code(code, &request.client_id, &request.redirect_uri, verifier, AccessLifetime::Session, origin)
            .await?;
        Ok(BrowserSignIn::SignedIn(owner, issued))
    }

    /// A fresh PKCE pair and the portal's authorization request.
    fn portal_request(&self) -> Result<(Zeroizing<String>, AuthorizationRequest), AuthError> {
        let (verifier, challenge) = pkce_pair();
        Ok((verifier, self.portal_request_for(&challenge)?))
    }

    fn portal_request_for(&self, challenge: &str) -> Result<AuthorizationRequest, AuthError> {
        let client =
            self.settings.clients.iter().find(|c| c.id == PORTAL_CLIENT).ok_or(AuthError::OAuth {
                code: "invalid_client",
                description: "the portal client is not registered",
            })?;
        let redirect_uri = client.redirect_uris.first().cloned().unwrap_or_default();
        Ok(AuthorizationRequest {
            client_id: PORTAL_CLIENT.to_owned(),
            redirect_uri,
            code_challenge: challenge.to_owned(),
            state: None,
        })
    }
}
