//! `AuthError`: everything sign-in, tokens and accounts can answer instead of success. Bad
//! input, refusals and outages are told apart so the API can answer 400/401/429/503; none of
//! the messages names an account, an email or a secret.

use super::password::{PasswordError, PolicyViolation};
use crate::crypto::CryptoError;
use crate::storage::StorageError;

/// Why an identity operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong email or password, unknown or disabled account: one answer for all, so the
    /// response does not tell which (401).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// The TOTP or recovery code is wrong, already used, or the sign-in flow expired (401).
    #[error("the second-factor code is wrong or was already used")]
    InvalidMfa,
    /// Too many failures for this account or address: wait (429 with Retry-After).
    #[error("too many failed attempts; try again later")]
    Throttled {
        /// Seconds until the next attempt is considered.
        retry_after_secs: u64,
    },
    /// No valid access token: missing, unknown, expired or revoked (401).
    #[error("sign in again")]
    Unauthenticated,
    /// The session ended on its idle or absolute limit (401).
    #[error("the session expired; sign in again")]
    SessionExpired,
    /// An OAuth 2.0 error with its RFC 6749 section 5.2 code (`invalid_grant`,
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`) (400, or 401 for
    /// `invalid_client`).
    #[error("{description}")]
    OAuth {
        /// The RFC 6749 error code.
        code: &'static str,
        /// What was wrong, for the developer (no secrets).
        description: &'static str,
    },
    /// A new password breaks the password policy (400).
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(&'static str),
    /// No such account or invitation (404).
    #[error("not found")]
    NotFound,
    /// The audit record could not be written, so the operation was not done (503).
    #[error("the audit trail is unavailable")]
    AuditUnavailable,
    /// Hashing failed (our bug, or a corrupt stored hash).
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A sealed value failed to open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl AuthError {
    /// An OAuth 2.0 `invalid_grant`: the code, refresh token or verifier is wrong, expired or used.
    pub const fn invalid_grant(description: &'static str) -> Self {
        AuthError::OAuth { code: "invalid_grant", description }
    }

    /// An OAuth 2.0 `invalid_request`: a parameter is missing or malformed.
    pub const fn invalid_request(description: &'static str) -> Self {
        AuthError::OAuth { code: "invalid_request", description }
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        AuthError::Storage(StorageError::Query(error))
    }
}
