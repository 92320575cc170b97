//! Retrying a REST write (docs/API.md, "Retrying a write"): the server keeps the answer of every
//! write sent with an `Idempotency-Key`, except the writes listed here, so a client may retry
//! any other write whose answer it lost, with the same key, and get the first answer instead of
//! writing twice. The server documents the header on exactly the writes not listed; the portal
//! sends a key, and retries, on exactly those.

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The answer header marking a kept answer given again.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// The writes whose answers are never kept, so a lost answer cannot be asked for again:
/// - those before a session (sign-in, tokens, accepting an invitation), which have no account to
///   keep an answer for;
/// - those whose answer is a secret: TOTP enrollment (the secret, then the recovery codes) and an
///   invitation (its one-time code);
/// - a second-factor step (a replay must not stand in for a code), and the sign-outs (they end
///   the session a retry would need).
pub const WRITES_NOT_KEPT: [&str; 13] = [
    "/oauth/authorize",
    "/oauth/authorize/mfa",
    "/oauth/token",
    "/oauth/revoke",
    "/api/v1/browser/sign-in",
    "/api/v1/browser/sign-in/mfa",
    "/api/v1/invitations/accept",
    "/api/v1/me/totp",
    "/api/v1/me/totp/confirm",
    "/api/v1/me/totp/verify",
    "/api/v1/sign-out",
    "/api/v1/sign-out-everywhere",
    "/api/v1/users/invitations",
];

/// Whether the server keeps the answer of a write to `path` (a path without its query).
pub fn keeps_answer(path: &str) -> bool {
    !WRITES_NOT_KEPT.contains(&path)
}
