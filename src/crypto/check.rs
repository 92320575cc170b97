//! Proof that every encrypted value of a database opens under the keys its master key unwraps:
//! what `confidant backup verify` asks of a backup before anyone has to rely on it. Walks every
//! table of `tables::ALL`, so a table added there is checked without further code.

use super::store::sealed::page;
use super::tables::{self, EncryptedTable};
use super::{CryptoError, Field, KeyError, Keyring};

/// Rows read per query.
const PAGE: u32 = 500;

/// What opening every value found.
#[derive(Debug, Clone, Default)]
pub struct ValueCheck {
    /// Rows read.
    pub rows: u64,
    /// Non-NULL encrypted values opened.
    pub values: u64,
    /// Values that did not open: table, column and row id (an id, never content). At most
    /// [`MAX_LISTED`] are listed; `failed` counts them all.
    pub failures: Vec<(&'static str, &'static str, String)>,
    /// How many values did not open.
    pub failed: u64,
}

/// How many failures [`ValueCheck::failures`] names.
pub const MAX_LISTED: usize = 20;

/// Opens every encrypted value of every table in `tables::ALL` that the database has.
pub async fn open_every_value(keyring: &Keyring, present: &[String]) -> Result<ValueCheck, KeyError> {
    let mut check = ValueCheck::default();
    for table in tables::ALL.iter().filter(|t| present.iter().any(|p| p == t.name)) {
        open_table(keyring, table, &mut check).await?;
    }
    Ok(check)
}

async fn open_table(keyring: &Keyring, table: &EncryptedTable, check: &mut ValueCheck) -> Result<(), KeyError> {
    let mut after = String::new();
    loop {
        let rows = page(keyring.storage(), table, &after, PAGE).await?;
        let full = rows.len() == PAGE as usize;
        for row in rows {
            check.rows += 1;
            for (column, stored) in table.columns.iter().zip(&row.values) {
                let Some(stored) = stored else { continue };
                let field = Field { table: table.name, column, row_id: &row.row_id };
                match keyring.open_value(field, stored).await {
                    Ok(_) => check.values += 1,
                    Err(CryptoError::Keys(error)) => return Err(*error),
                    Err(_) => {
                        check.failed += 1;
                        if check.failures.len() < MAX_LISTED {
                            check.failures.push((table.name, column, row.row_id.clone()));
                        }
                    }
                }
            }
            after = row.row_id;
        }
        if !full {
            return Ok(());
        }
    }
}
