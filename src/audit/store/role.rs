//! `confidant audit setup-role`: creates (or resets) the PostgreSQL role the server should use
//! for the audit database, able to SELECT and INSERT audit records and nothing else. The grants
//! are those of `scripts/audit-role.sql`, which DBAs can also run by hand with psql.

use sqlx::AssertSqlSafe;

use crate::storage::{Backend, Storage, StorageError};

/// The grants, with psql's `:"role"` placeholder.
const SCRIPT: &str = include_str!("../../../scripts/audit-role.sql");

/// A PostgreSQL role name Confidant will create: 1 to 63 of `a-z`, `0-9`, `_`, not starting
/// with a digit, so it needs no quoting tricks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// Accepts a valid name; `None` otherwise.
    pub fn parse(name: &str) -> Option<Self> {
        let valid = (1..=63).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        valid.then(|| Self(name.to_owned()))
    }
}

/// Why the role could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The audit store is SQLite, which has no roles (its file mode protects it).
    #[error("the audit store is SQLite: setup-role applies to PostgreSQL only")]
    NotPostgres,
    /// The password is unusable.
    #[error("the password must be at least 16 characters, on one line")]
    WeakPassword,
    /// PostgreSQL refused (typically: the configured URL's role is not the owner).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The script's statements for `role`, comments removed.
pub fn grants_for(role: &RoleName) -> String {
    SCRIPT
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(":\"role\"", &format!("\"{}\"", role.0))
}

/// Creates `role` with `password` (or resets the password of an existing one) and applies the
/// grants. Run with the audit database's owner.
pub async fn setup_role(storage: &Storage, role: &RoleName, password: &str) -> Result<(), RoleError> {
    if storage.backend() != Backend::Postgres {
        return Err(RoleError::NotPostgres);
    }
    if password.chars().count() < 16 || password.contains(['\n', '\r', '\0']) {
        return Err(RoleError::WeakPassword);
    }
    let literal = format!("'{}'", password.replace('\'', "''"));
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname = $1")
        .bind(role.0.clone())
        .fetch_one(storage.pool())
        .await
        .map_err(StorageError::from)?;
    let login = if exists == 0 { "CREATE ROLE" } else { "ALTER ROLE" };
    let sql = format!(
        "{login} \"{}\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal};\n{}",
        role.0,
        grants_for(role)
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(storage.pool()).await.map_err(StorageError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_cannot_inject_sql() {
        assert!(RoleName::parse("confidant_audit").is_some());
        assert!(RoleName::parse("a\"; DROP TABLE audit_entries; --").is_none());
        assert!(RoleName::parse("1abc").is_none());
        assert!(RoleName::parse("").is_none());
    }

    #[test]
    fn the_grants_give_select_and_insert_only() {
        let sql = grants_for(&RoleName::parse("auditor").unwrap());
        assert!(sql.contains("GRANT SELECT, INSERT ON audit_entries, audit_checkpoints, audit_keys TO \"auditor\""));
        for forbidden in ["UPDATE", "DELETE", "TRUNCATE", ":\"role\""] {
            assert!(!sql.contains(forbidden), "{forbidden} in {sql}");
        }
    }
}
