//! `users`, `invitations` and `recovery_codes`: accounts with their email and TOTP secret stored
//! sealed (the caller seals and opens them) and found by the email's blind index.

use confidant_actors::audit::Role;
use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::storage::{Storage, StorageError, parse_id};

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Invited; no password yet.
    Invited,
    /// Can sign in.
    Active,
    /// Cannot sign in; its sessions were ended.
    Disabled,
}

impl AccountStatus {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Invited => "invited",
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Result<Self, StorageError> {
        match text {
            "invited" => Ok(AccountStatus::Invited),
            "active" => Ok(AccountStatus::Active),
            "disabled" => Ok(AccountStatus::Disabled),
            _ => Err(StorageError::Corrupt { column: "status" }),
        }
    }
}

/// How a member of staff appears on screen and in reminders: "Dr. Ana Ruiz" with credentials
/// "PsyD" reads "Dr. Ana Ruiz, PsyD". Patients have none (their patient record names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffName {
    /// The name, with any title.
    pub display_name: String,
    /// Degrees or licences, e.g. "PsyD" or "LCSW".
    pub credentials: Option<String>,
}

impl StaffName {
    /// The longest display name, in characters.
    pub const MAX_NAME: usize = 100;
    /// The longest credentials, in characters.
    pub const MAX_CREDENTIALS: usize = 40;

    /// Trims both parts and checks them; the error names the field and the rule broken. Empty
    /// credentials are none.
    pub fn parse(display_name: &str, credentials: Option<&str>) -> Result<Self, (&'static str, &'static str)> {
        let display_name = display_name.trim();
        if display_name.is_empty() {
            return Err(("display_name", "is required"));
        }
        if display_name.chars().count() > Self::MAX_NAME {
            return Err(("display_name", "is longer than 100 characters"));
        }
        if let Err(refusal) = crate::plain_text::check(display_name, false) {
            return Err(("display_name", refusal.rule()));
        }
        let credentials = credentials.map(str::trim).filter(|c| !c.is_empty());
        if let Some(c) = credentials {
            if c.chars().count() > Self::MAX_CREDENTIALS {
                return Err(("credentials", "is longer than 40 characters"));
            }
            if let Err(refusal) = crate::plain_text::check(c, false) {
                return Err(("credentials", refusal.rule()));
            }
        }
        let nfc = crate::plain_text::nfc;
        Ok(Self { display_name: nfc(display_name), credentials: credentials.map(nfc) })
    }

    /// The name as shown: "Dr. Ana Ruiz, PsyD".
    pub fn shown(&self) -> String {
        match &self.credentials {
            Some(c) => format!("{}, {c}", self.display_name),
            None => self.display_name.clone(),
        }
    }
}

/// An account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub user_id: UserId,
    /// Its one role.
    pub role: Role,
    /// Where it stands.
    pub status: AccountStatus,
    /// For a patient account, the patient record it is.
    pub patient_id: Option<PatientId>,
    /// Whether a TOTP authenticator is enrolled.
    pub totp_enabled: bool,
    /// When it was created (UTC ms).
    pub created_at_ms: i64,
    /// A member of staff's name, once given.
    pub name: Option<StaffName>,
}

/// What sign-in needs: the account and its password hash.
pub struct Credentials {
    /// The account.
    pub account: Account,
    /// argon2id PHC string (`None` while invited).
    pub password_hash: Option<String>,
}

const ACCOUNT_COLUMNS: &str =
    "user_id, role, status, patient_id, totp_enabled_at_ms, created_at_ms, display_name, credentials";

/// A new account's row: its email sealed, and found by its blind index.
pub struct NewRow {
    /// Its id.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
    /// The data key that sealed the email.
    pub key_id: i64,
    /// The sealed email.
    pub email: Vec<u8>,
    /// The email's blind index.
    pub email_index: Vec<u8>,
    /// For a patient account, the patient.
    pub patient_id: Option<PatientId>,
    /// For a member of staff, their name if given.
    pub name: Option<StaffName>,
}

/// An account's TOTP columns, the secret sealed.
pub struct StoredTotp {
    /// The sealed secret.
    pub secret: Vec<u8>,
    /// When enrollment was confirmed, if it was.
    pub enabled_at_ms: Option<i64>,
    /// The last TOTP step used.
    pub last_step: Option<i64>,
}

/// Stores `row` as `invited` with an invitation (`token_hash`) valid until `expires_at_ms`, in
/// one transaction; `false` when an account with its email index or patient exists.
pub async fn insert_invited(
    storage: &Storage,
    row: &NewRow,
    token_hash: &[u8],
    invited_by: Option<UserId>,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (user_id, role, status, key_id, email, email_index, patient_id, created_at_ms, \
         updated_at_ms, display_name, credentials) VALUES ($1, $2, 'invited', $3, $4, $5, $6, $7, $7, $8, $9) \
         ON CONFLICT DO NOTHING",
    )
    .bind(row.user_id.to_string())
    .bind(row.role.as_str())
    .bind(row.key_id)
    .bind(row.email.clone())
    .bind(row.email_index.clone())
    .bind(row.patient_id.map(|p| p.to_string()))
    .bind(now_ms)
    .bind(row.name.as_ref().map(|n| n.display_name.clone()))
    .bind(row.name.as_ref().and_then(|n| n.credentials.clone()))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO invitations (token_hash, user_id, invited_by, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash.to_vec())
    .bind(row.user_id.to_string())
    .bind(invited_by.map(|u| u.to_string()))
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes an account and its invitation.
pub async fn delete(storage: &Storage, user_id: UserId) -> Result<(), StorageError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::query("DELETE FROM invitations WHERE user_id = $1").bind(user_id.to_string()).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM users WHERE user_id = $1").bind(user_id.to_string()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The invited account an unexpired, unused invitation (`token_hash`) is for, with its sealed
/// email.
pub async fn invited(
    storage: &Storage,
    token_hash: &[u8],
    now_ms: i64,
) -> Result<Option<(UserId, Vec<u8>)>, StorageError> {
    let row = sqlx::query(
        "SELECT u.user_id, u.email FROM invitations i JOIN users u ON u.user_id = i.user_id \
         WHERE i.token_hash = $1 AND i.accepted_at_ms IS NULL AND i.expires_at_ms > $2 AND u.status = 'invited'",
    )
    .bind(token_hash.to_vec())
    .bind(now_ms)
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user_id: UserId = parse_id(&row.try_get::<String, _>(0)?, "user_id")?;
    Ok(Some((user_id, row.try_get::<Vec<u8>, _>(1)?)))
}

/// Marks the invitation (`token_hash`) used and activates its account with `password_hash`, in
/// one transaction; `None` when the invitation is not live or the account not invited.
pub async fn accept(
    storage: &Storage,
    token_hash: &[u8],
    password_hash: &str,
    now_ms: i64,
) -> Result<Option<UserId>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let user: Option<String> = sqlx::query_scalar(
        "UPDATE invitations SET accepted_at_ms = $2 WHERE token_hash = $1 AND accepted_at_ms IS NULL \
         AND expires_at_ms > $2 RETURNING user_id",
    )
    .bind(token_hash.to_vec())
    .bind(now_ms)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else { return Ok(None) };
    let done = sqlx::query(
        "UPDATE users SET status = 'active', password_hash = $2, updated_at_ms = $3 \
         WHERE user_id = $1 AND status = 'invited'",
    )
    .bind(&user)
    .bind(password_hash)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(parse_id(&user, "user_id")?))
}

/// Stores `row` as an active account with `password_hash`; `false` when an account with its
/// email index or patient exists.
pub async fn insert_active(
    storage: &Storage,
    row: &NewRow,
    password_hash: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO users (user_id, role, status, key_id, email, email_index, patient_id, password_hash, \
         created_at_ms, updated_at_ms, display_name, credentials) \
         VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(row.user_id.to_string())
    .bind(row.role.as_str())
    .bind(row.key_id)
    .bind(row.email.clone())
    .bind(row.email_index.clone())
    .bind(row.patient_id.map(|p| p.to_string()))
    .bind(password_hash)
    .bind(now_ms)
    .bind(row.name.as_ref().map(|n| n.display_name.clone()))
    .bind(row.name.as_ref().and_then(|n| n.credentials.clone()))
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() != 0)
}

/// The account whose email has the blind index `email_index`, with its password hash.
pub async fn credentials(storage: &Storage, email_index: Vec<u8>) -> Result<Option<Credentials>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS}, password_hash FROM users WHERE email_index = $1"
    )))
    .bind(email_index)
    .fetch_optional(storage.pool())
    .await?;
    row.map(|row| Ok(Credentials { account: account(&row)?, password_hash: row.try_get("password_hash")? })).transpose()
}

/// One account.
pub async fn get(storage: &Storage, user_id: UserId) -> Result<Option<Account>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE user_id = $1")))
        .bind(user_id.to_string())
        .fetch_optional(storage.pool())
        .await?;
    row.as_ref().map(account).transpose()
}

/// The account of `patient`.
pub async fn of_patient(storage: &Storage, patient: PatientId) -> Result<Option<Account>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE patient_id = $1")))
        .bind(patient.to_string())
        .fetch_optional(storage.pool())
        .await?;
    row.as_ref().map(account).transpose()
}

/// The active accounts of `roles`, by role (in the order given), then id.
pub async fn active_of_roles(storage: &Storage, roles: &[Role]) -> Result<Vec<UserId>, StorageError> {
    let mut users = Vec::new();
    for role in roles {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE role = $1 AND status = 'active' ORDER BY user_id")
                .bind(role.as_str())
                .fetch_all(storage.pool())
                .await?;
        for id in ids {
            users.push(parse_id(&id, "user_id")?);
        }
    }
    Ok(users)
}

/// Every account, oldest first, with its sealed email.
pub async fn list(storage: &Storage) -> Result<Vec<(Account, Vec<u8>)>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLUMNS}, email FROM users ORDER BY created_at_ms, user_id"
    )))
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(|row| Ok((account(row)?, row.try_get("email")?))).collect()
}

/// Disables an account; `false` when it was disabled already or does not exist.
pub async fn disable(storage: &Storage, user_id: UserId, now_ms: i64) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE users SET status = 'disabled', updated_at_ms = $2 WHERE user_id = $1 AND status <> 'disabled'",
    )
    .bind(user_id.to_string())
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces an account's password hash.
pub async fn set_password_hash(
    storage: &Storage,
    user_id: UserId,
    password_hash: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at_ms = $3 WHERE user_id = $1")
        .bind(user_id.to_string())
        .bind(password_hash)
        .bind(now_ms)
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// Stores a new unconfirmed TOTP secret with the email, both sealed again under `key_id`;
/// `false` when TOTP is enabled already (or there is no such account).
pub async fn set_unconfirmed_totp(
    storage: &Storage,
    user_id: UserId,
    key_id: i64,
    email: Vec<u8>,
    totp: Option<Vec<u8>>,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE users SET key_id = $2, email = $3, totp_secret = $4, totp_last_step = NULL, updated_at_ms = $5 \
         WHERE user_id = $1 AND totp_enabled_at_ms IS NULL",
    )
    .bind(user_id.to_string())
    .bind(key_id)
    .bind(email)
    .bind(totp)
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() != 0)
}

/// The account's TOTP columns, if it has a secret.
pub async fn totp(storage: &Storage, user_id: UserId) -> Result<Option<StoredTotp>, StorageError> {
    let row = sqlx::query(
        "SELECT totp_secret, totp_enabled_at_ms, totp_last_step FROM users WHERE user_id = $1 \
         AND totp_secret IS NOT NULL",
    )
    .bind(user_id.to_string())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(StoredTotp { secret: row.try_get(0)?, enabled_at_ms: row.try_get(1)?, last_step: row.try_get(2)? }))
}

/// Records TOTP `step` as used unless an equal or later one was; `false`: it was.
pub async fn use_totp_step(storage: &Storage, user_id: UserId, step: i64) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = $2 WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user_id.to_string())
    .bind(step)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Turns TOTP on with `step` used and replaces the recovery codes, in one transaction; `false`
/// when it was on already (or there is no secret).
pub async fn confirm_totp(
    storage: &Storage,
    user_id: UserId,
    step: i64,
    recovery_hashes: &[[u8; 32]],
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let done = sqlx::query(
        "UPDATE users SET totp_enabled_at_ms = $2, totp_last_step = $3, updated_at_ms = $2 \
         WHERE user_id = $1 AND totp_enabled_at_ms IS NULL AND totp_secret IS NOT NULL",
    )
    .bind(user_id.to_string())
    .bind(now_ms)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id.to_string()).execute(&mut *tx).await?;
    for hash in recovery_hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id.to_string())
            .bind(hash.to_vec())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Marks an unused recovery code (`hash`) used; `false` when there is none.
pub async fn use_recovery_code(
    storage: &Storage,
    user_id: UserId,
    hash: &[u8; 32],
    now_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at_ms = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at_ms IS NULL",
    )
    .bind(user_id.to_string())
    .bind(hash.to_vec())
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The account's sealed email.
pub async fn sealed_email(storage: &Storage, user_id: UserId) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(sqlx::query_scalar("SELECT email FROM users WHERE user_id = $1")
        .bind(user_id.to_string())
        .fetch_optional(storage.pool())
        .await?)
}

fn account(row: &AnyRow) -> Result<Account, StorageError> {
    let user_id: String = row.try_get(0)?;
    let role: String = row.try_get(1)?;
    let status: String = row.try_get(2)?;
    let patient: Option<String> = row.try_get(3)?;
    let totp_enabled: Option<i64> = row.try_get(4)?;
    let display_name: Option<String> = row.try_get(6)?;
    let credentials: Option<String> = row.try_get(7)?;
    Ok(Account {
        user_id: parse_id(&user_id, "user_id")?,
        role: Role::parse(&role).ok_or(StorageError::Corrupt { column: "role" })?,
        status: AccountStatus::parse(&status)?,
        patient_id: patient.as_deref().map(|p| parse_id(p, "patient_id")).transpose()?,
        totp_enabled: totp_enabled.is_some(),
        created_at_ms: row.try_get(5)?,
        name: display_name.map(|display_name| StaffName { display_name, credentials }),
    })
}

/// Names (or renames) a member of staff; `false` when there is no such staff account.
pub async fn set_name(storage: &Storage, user_id: UserId, name: &StaffName, now_ms: i64) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE users SET display_name = $2, credentials = $3, updated_at_ms = $4 \
         WHERE user_id = $1 AND role <> 'patient'",
    )
    .bind(user_id.to_string())
    .bind(name.display_name.clone())
    .bind(name.credentials.clone())
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() != 0)
}
