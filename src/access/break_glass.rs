//! Break-glass: a clinician opening a patient outside their care team in an emergency. Only
//! with a stated reason, only for a limited time; the grant is audited as `break_glass` by the
//! caller and listed for owners. The reason is sealed like PHI: it may describe the patient.
//! The statements are in `store/break_glass.rs`.

use std::sync::Arc;

use confidant_actors::ids::{PatientId, UserId};
use uuid::Uuid;

use super::store::break_glass::{self as rows, StoredGrant};
use crate::crypto::tables::BREAK_GLASS_GRANTS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::phi::PhiText;
use crate::storage::{Storage, StorageError};

/// Shortest and longest accepted reason, in characters: long enough to say something, short
/// enough to stay a reason.
pub const REASON_CHARS: std::ops::RangeInclusive<usize> = 10..=1000;

/// The rules a break-glass reason meets: 10 to 1,000 characters (trimmed), over several lines
/// if need be, without control, invisible or text-direction characters.
pub fn check_reason(reason: &PhiText) -> Result<(), BreakGlassError> {
    let text = reason.expose().trim();
    if !REASON_CHARS.contains(&text.chars().count()) {
        return Err(BreakGlassError::Reason("must be 10 to 1000 characters"));
    }
    crate::plain_text::check(text, true).map_err(|refusal| BreakGlassError::Reason(refusal.rule()))
}

/// Why a grant could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum BreakGlassError {
    /// The reason is missing, too short or too long, or holds characters no reason may hold
    /// (bad input); the rule broken.
    #[error("`reason` {0}")]
    Reason(&'static str),
    /// A stored reason failed its integrity check.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for BreakGlassError {
    fn from(error: sqlx::Error) -> Self {
        BreakGlassError::Storage(StorageError::Query(error))
    }
}

/// A break-glass grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The grant's id (in the audit trail).
    pub grant_id: Uuid,
    /// Who broke the glass.
    pub clinician_id: UserId,
    /// Whose record they opened.
    pub patient_id: PatientId,
    /// What they said, decrypted (only [`BreakGlass::list`] fills it).
    pub reason: Option<PhiText>,
    /// When (UTC ms).
    pub created_at_ms: i64,
    /// Until when it lets them in (UTC ms).
    pub expires_at_ms: i64,
}

/// The `break_glass_grants` table, through the keyring.
#[derive(Clone)]
pub struct BreakGlass {
    storage: Storage,
    keyring: Arc<Keyring>,
}

impl BreakGlass {
    /// The grants of `storage`, reasons sealed by `keyring`.
    pub fn new(storage: Storage, keyring: Arc<Keyring>) -> Self {
        Self { storage, keyring }
    }

    /// Grants `clinician` access to `patient` from `now_ms` for `lifetime_ms`, with `reason`.
    pub async fn grant(
        &self,
        clinician: UserId,
        patient: PatientId,
        reason: &PhiText,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> Result<Grant, BreakGlassError> {
        let mut tx = self.storage.begin().await?;
        let grant = self.grant_in(&mut tx, Uuid::new_v4(), clinician, patient, reason, now_ms, lifetime_ms).await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(grant)
    }

    /// [`Self::grant`] as grant `grant_id`, in `tx` (with the owners' alert).
    #[allow(clippy::too_many_arguments)]
    pub async fn grant_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        grant_id: Uuid,
        clinician: UserId,
        patient: PatientId,
        reason: &PhiText,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> Result<Grant, BreakGlassError> {
        check_reason(reason)?;
        let row_id = grant_id.to_string();
        let sealer = self.keyring.sealer();
        let sealed = sealer.seal(
            Field { table: BREAK_GLASS_GRANTS.name, column: "reason", row_id: &row_id },
            reason.expose().trim().as_bytes(),
        );
        let stored = StoredGrant {
            row_id,
            grant_id,
            clinician_id: clinician,
            patient_id: patient,
            reason: sealed,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
        };
        rows::insert(tx, &stored, sealer.key_id()).await?;
        Ok(Grant {
            grant_id,
            clinician_id: clinician,
            patient_id: patient,
            reason: None,
            created_at_ms: stored.created_at_ms,
            expires_at_ms: stored.expires_at_ms,
        })
    }

    /// The live grant letting `clinician` reach `patient` at `now_ms`, if any (the latest).
    pub async fn active(
        &self,
        clinician: UserId,
        patient: PatientId,
        now_ms: i64,
    ) -> Result<Option<Uuid>, StorageError> {
        rows::active(&self.storage, clinician, patient, now_ms).await
    }

    /// The patients `clinician` reaches through live grants at `now_ms`.
    pub async fn patients_of(&self, clinician: UserId, now_ms: i64) -> Result<Vec<PatientId>, StorageError> {
        rows::patients_of(&self.storage, clinician, now_ms).await
    }

    /// Grants made since `since_ms`, newest first, with their reasons (for owners).
    pub async fn list(&self, since_ms: i64) -> Result<Vec<Grant>, BreakGlassError> {
        let stored = rows::since(&self.storage, since_ms).await?;
        let mut grants = Vec::with_capacity(stored.len());
        for grant in stored {
            let field = Field { table: BREAK_GLASS_GRANTS.name, column: "reason", row_id: &grant.row_id };
            let plain = self.keyring.open_value(field, &grant.reason).await?;
            grants.push(Grant {
                grant_id: grant.grant_id,
                clinician_id: grant.clinician_id,
                patient_id: grant.patient_id,
                reason: Some(PhiText::from_plaintext(&plain).ok_or(CryptoError::Integrity)?),
                created_at_ms: grant.created_at_ms,
                expires_at_ms: grant.expires_at_ms,
            });
        }
        Ok(grants)
    }
}
