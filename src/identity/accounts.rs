//! `users`, `invitations` and `recovery_codes`: accounts, their one role, their state, and the
//! sealed email and TOTP secret. An account is found by the blind index of its email; the
//! email itself and the TOTP secret are sealed like PHI columns (table `users`, AAD row id =
//! user id), so both are re-sealed together whenever either changes. The statements are in
//! `store/accounts.rs`.

use std::sync::Arc;

use confidant_actors::audit::Role;
use confidant_actors::ids::{PatientId, UserId};
use zeroize::Zeroizing;

use super::error::AuthError;
use super::store::accounts::{self as rows, NewRow};
use super::tokens::{self, Token, TokenKind};
use super::totp::TotpSecret;
use crate::crypto::tables::USERS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::email::{is_email, normalized_email};
use crate::phi::PhiText;
use crate::storage::Storage;

pub use super::store::accounts::{Account, AccountStatus, Credentials, StaffName};

/// A sign-in email, checked and normalized (trimmed, lowercased) at the edge.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(PhiText);

impl Email {
    /// Accepts an address of at most 254 characters as sent (so the API document can state the
    /// limit); `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        let normalized = normalized_email(text);
        (text.chars().count() <= 254 && is_email(&normalized)).then(|| Self(PhiText::new(normalized)))
    }

    /// The address.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The part before `@`, which a password must not contain.
    pub fn local_part(&self) -> &str {
        self.expose().split('@').next().unwrap_or_default()
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Email(..)")
    }
}

/// A new account to invite.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its role.
    pub role: Role,
    /// Its sign-in email.
    pub email: Email,
    /// For a patient account, the patient record it is.
    pub patient_id: Option<PatientId>,
    /// For a member of staff, how they appear (their email until given).
    pub name: Option<StaffName>,
}

/// The account tables, through the keyring.
#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    keyring: Arc<Keyring>,
}

impl Accounts {
    /// The accounts of `storage`, sealed by `keyring`.
    pub fn new(storage: Storage, keyring: Arc<Keyring>) -> Self {
        Self { storage, keyring }
    }

    fn email_index(&self, email: &Email) -> Vec<u8> {
        self.keyring.blind_index(USERS.name, "email", email.expose())
    }

    fn seal(&self, user_id: UserId, email: &Email, totp: Option<&TotpSecret>) -> (i64, Vec<u8>, Option<Vec<u8>>) {
        let sealer = self.keyring.sealer();
        let row_id = user_id.to_string();
        let field = |column| Field { table: USERS.name, column, row_id: &row_id };
        let email = sealer.seal(field("email"), email.expose().as_bytes());
        let totp = totp.map(|t| sealer.seal(field("totp_secret"), t.as_bytes()));
        (i64::from(sealer.key_id()), email, totp)
    }

    /// The row of a new account of `new` named `user_id`, its email sealed.
    fn new_row(&self, user_id: UserId, new: &NewAccount) -> NewRow {
        let (key_id, email, _) = self.seal(user_id, &new.email, None);
        NewRow {
            user_id,
            role: new.role,
            key_id,
            email,
            email_index: self.email_index(&new.email),
            patient_id: new.patient_id,
            name: new.name.clone().filter(|_| new.role != Role::Patient),
        }
    }

    /// Creates an account in state `invited` with a one-time invitation valid until
    /// `expires_at_ms`; returns the account id and the invitation token (shown once).
    pub async fn invite(
        &self,
        new: &NewAccount,
        invited_by: Option<UserId>,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(UserId, Token), AuthError> {
        let user_id = UserId::generate();
        let row = self.new_row(user_id, new);
        let token = Token::generate(TokenKind::Invitation);
        if !rows::insert_invited(&self.storage, &row, &token.hash(), invited_by, now_ms, expires_at_ms).await? {
            return Err(AuthError::Conflict("an account with this email, or for this patient, already exists"));
        }
        Ok((user_id, token))
    }

    /// Removes an account that was just created and never used (its creation could not be
    /// audited, so it must not exist).
    pub async fn withdraw(&self, user_id: UserId) -> Result<(), AuthError> {
        Ok(rows::delete(&self.storage, user_id).await?)
    }

    /// The account an unexpired, unused invitation is for, with its email (for the password
    /// policy); `None` for any other token.
    pub async fn invitation(&self, token: &str, now_ms: i64) -> Result<Option<(UserId, Email)>, AuthError> {
        if !tokens::looks_like(TokenKind::Invitation, token) {
            return Ok(None);
        }
        let Some((user_id, sealed)) = rows::invited(&self.storage, &tokens::hash(token), now_ms).await? else {
            return Ok(None);
        };
        let email = self.open_email(user_id, &sealed).await?;
        Ok(Some((user_id, email)))
    }

    /// Uses the invitation: sets the password and activates the account, once. `false` when the
    /// invitation was used, expired or withdrawn meanwhile.
    pub async fn accept(&self, token: &str, password_hash: &str, now_ms: i64) -> Result<Option<UserId>, AuthError> {
        Ok(rows::accept(&self.storage, &tokens::hash(token), password_hash, now_ms).await?)
    }

    /// Creates an active account directly (the bootstrap owner, from the command line).
    pub async fn create_active(&self, new: &NewAccount, password_hash: &str, now_ms: i64) -> Result<UserId, AuthError> {
        let user_id = UserId::generate();
        let row = self.new_row(user_id, new);
        if !rows::insert_active(&self.storage, &row, password_hash, now_ms).await? {
            return Err(AuthError::Conflict("an account with this email already exists"));
        }
        Ok(user_id)
    }

    /// The account signing in with `email`, with its password hash.
    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, AuthError> {
        Ok(rows::credentials(&self.storage, self.email_index(email)).await?)
    }

    /// One account.
    pub async fn get(&self, user_id: UserId) -> Result<Option<Account>, AuthError> {
        Ok(rows::get(&self.storage, user_id).await?)
    }

    /// The patient account of `patient`, if one was invited.
    pub async fn of_patient(&self, patient: PatientId) -> Result<Option<Account>, AuthError> {
        Ok(rows::of_patient(&self.storage, patient).await?)
    }

    /// The active accounts of `roles` (who an alert or a notice to those roles goes to).
    pub async fn active_of_roles(&self, roles: &[Role]) -> Result<Vec<UserId>, AuthError> {
        Ok(rows::active_of_roles(&self.storage, roles).await?)
    }

    /// Every account, oldest first, each with its email decrypted.
    pub async fn list(&self) -> Result<Vec<(Account, Email)>, AuthError> {
        let rows = rows::list(&self.storage).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (account, sealed) in rows {
            let email = self.open_email(account.user_id, &sealed).await?;
            out.push((account, email));
        }
        Ok(out)
    }

    /// Disables an account; `false` when it was already disabled or does not exist.
    pub async fn disable(&self, user_id: UserId, now_ms: i64) -> Result<bool, AuthError> {
        Ok(rows::disable(&self.storage, user_id, now_ms).await?)
    }

    /// Replaces the password hash (an upgrade to current argon2 parameters at sign-in).
    pub async fn set_password_hash(&self, user_id: UserId, password_hash: &str, now_ms: i64) -> Result<(), AuthError> {
        Ok(rows::set_password_hash(&self.storage, user_id, password_hash, now_ms).await?)
    }

    /// Stores a new, not yet confirmed TOTP secret (replacing an unconfirmed one). Refused once
    /// TOTP is enabled.
    pub async fn begin_totp(&self, user_id: UserId, secret: &TotpSecret, now_ms: i64) -> Result<(), AuthError> {
        let email = self.email(user_id).await?;
        let (key_id, email, totp) = self.seal(user_id, &email, Some(secret));
        if !rows::set_unconfirmed_totp(&self.storage, user_id, key_id, email, totp, now_ms).await? {
            return Err(AuthError::Conflict("TOTP is already enabled for this account"));
        }
        Ok(())
    }

    /// The account's TOTP secret, whether it is confirmed, and the last step used.
    pub async fn totp(&self, user_id: UserId) -> Result<Option<(TotpSecret, bool, Option<u64>)>, AuthError> {
        let Some(stored) = rows::totp(&self.storage, user_id).await? else { return Ok(None) };
        let row_id = user_id.to_string();
        let plain = self
            .keyring
            .open_value(Field { table: USERS.name, column: "totp_secret", row_id: &row_id }, &stored.secret)
            .await?;
        let secret = TotpSecret::from_bytes(&plain).ok_or(CryptoError::Integrity)?;
        Ok(Some((secret, stored.enabled_at_ms.is_some(), stored.last_step.and_then(|s| u64::try_from(s).ok()))))
    }

    /// Records that TOTP `step` was used, if no later or equal step was: the atomic half of
    /// replay protection (two nodes cannot both accept one code). `false`: a replay.
    pub async fn use_totp_step(&self, user_id: UserId, step: u64) -> Result<bool, AuthError> {
        let step = i64::try_from(step).map_err(|_| AuthError::InvalidMfa)?;
        Ok(rows::use_totp_step(&self.storage, user_id, step).await?)
    }

    /// Confirms enrollment: TOTP on, the confirming step used, the recovery codes stored
    /// (hashes only), in one transaction. `false` when it was confirmed meanwhile.
    pub async fn confirm_totp(
        &self,
        user_id: UserId,
        step: u64,
        recovery_hashes: &[[u8; 32]],
        now_ms: i64,
    ) -> Result<bool, AuthError> {
        let step = i64::try_from(step).map_err(|_| AuthError::InvalidMfa)?;
        Ok(rows::confirm_totp(&self.storage, user_id, step, recovery_hashes, now_ms).await?)
    }

    /// Uses a recovery code once; `false` when it is unknown or was used.
    pub async fn use_recovery_code(&self, user_id: UserId, hash: &[u8; 32], now_ms: i64) -> Result<bool, AuthError> {
        Ok(rows::use_recovery_code(&self.storage, user_id, hash, now_ms).await?)
    }

    /// Names (or renames) a member of staff; `NotFound` for no such staff account.
    pub async fn set_name(&self, user_id: UserId, name: &StaffName, now_ms: i64) -> Result<(), AuthError> {
        if rows::set_name(&self.storage, user_id, name, now_ms).await? { Ok(()) } else { Err(AuthError::NotFound) }
    }

    /// How `account` appears to others: a member of staff by name ("Dr. Ana Ruiz, PsyD") once
    /// given, otherwise by email.
    pub async fn shown(&self, account: &Account) -> Result<String, AuthError> {
        match &account.name {
            Some(name) => Ok(name.shown()),
            None => Ok(self.email(account.user_id).await?.expose().to_owned()),
        }
    }

    /// The account's email, decrypted.
    pub async fn email(&self, user_id: UserId) -> Result<Email, AuthError> {
        let sealed = rows::sealed_email(&self.storage, user_id).await?.ok_or(AuthError::NotFound)?;
        self.open_email(user_id, &sealed).await
    }

    async fn open_email(&self, user_id: UserId, sealed: &[u8]) -> Result<Email, AuthError> {
        let row_id = user_id.to_string();
        let plain: Zeroizing<Vec<u8>> =
            self.keyring.open_value(Field { table: USERS.name, column: "email", row_id: &row_id }, sealed).await?;
        let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Integrity)?;
        Ok(Email::parse(text).ok_or(CryptoError::Integrity)?)
    }
}
