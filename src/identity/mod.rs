//! Identity: accounts, passwords, second factors, sign-in sessions and the tokens that name them.

pub mod accounts;
pub mod attacks;
pub mod browser;
pub mod enrollment;
mod error;
pub mod oauth;
pub mod password;
pub mod recovery;
pub mod service;
pub mod sessions;
pub mod sign_in;
mod store;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use crate::auditor::Origin;
pub use accounts::{Account, AccountStatus, Accounts, Email, NewAccount, StaffName};
pub use error::AuthError;
pub use service::Identity;
