//! Identity's tables. Every SQL statement of `identity` is here: [`accounts`] (`users`,
//! `invitations`, `recovery_codes`), [`sessions`] (`sessions`, `session_tokens`), [`grants`]
//! (`sign_in_flows`, `authorization_codes`) and [`throttles`].

pub mod accounts;
pub mod grants;
pub mod sessions;
pub mod throttles;
