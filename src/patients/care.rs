//! [`CareAccess`]: who reaches a patient's record, and the changes to it. The care team (list, assign,
//! unassign; a clinician who creates a record joins its team) and break-glass (a clinician's
//! emergency grant with a stated reason, an alert to owners; the list of the last 30 days).
//! Each passes the [`Gate`]; each change is audited, and acknowledged, before it is made.

use std::sync::Arc;

use confidant_actors::audit::{Action, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::AlertKind;
use uuid::Uuid;

use super::record::InvalidField;
use super::store::{PatientError, Patients};
use crate::access::care_team::Member;
use crate::access::{
    AccessError, BreakGlass, BreakGlassError, BreakGlassGrant, CareTeam, Decision, Denial, Gate, Operation, Requester,
    Resource, Target, allowed_because,
};
use crate::alerts::{AlertError, AlertService, NewAlert, Recipients};
use crate::auditor::About;
use crate::crypto::CryptoError;
use crate::identity::{AccountStatus, Accounts, AuthError, Identity};
use crate::phi::PhiText;
use crate::storage::StorageError;

/// How far back the list of break-glass grants reaches.
const BREAK_GLASS_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// Why a care-team or break-glass operation did not succeed. Messages name fields and rules,
/// never values.
#[derive(Debug, thiserror::Error)]
pub enum CareAccessError {
    /// A field breaks its rule (bad input): names the field and the rule, never the value.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The permission check refused (not allowed); the refusal is audited.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// No such patient record, or the clinician is not on its care team (not found).
    #[error("not found")]
    NotFound,
    /// The patient is already on the clinician's care team: there is no glass to break
    /// (conflict).
    #[error("this patient is already on your care team")]
    OnCareTeam,
    /// The audit trail could not record the access or change, so it was not made (dependency
    /// down).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// The accounts could not be read (dependency down, or our bug).
    #[error("the accounts could not be read")]
    Accounts(#[source] AuthError),
    /// The patient records could not be read (dependency down, or our bug).
    #[error("the patient records could not be read")]
    Patients(#[source] PatientError),
    /// A stored break-glass reason failed its integrity check (our bug, or tampering).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed (dependency down, or our bug: [`StorageError::is_unavailable`]
    /// tells which).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<AccessError> for CareAccessError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => CareAccessError::Denied(denial),
            AccessError::Storage(e) => CareAccessError::Storage(e),
            AccessError::AuditUnavailable => CareAccessError::AuditUnavailable,
        }
    }
}

impl From<BreakGlassError> for CareAccessError {
    fn from(error: BreakGlassError) -> Self {
        match error {
            BreakGlassError::Reason(rule) => CareAccessError::Invalid(InvalidField { field: "reason", rule }),
            BreakGlassError::Crypto(e) => CareAccessError::Crypto(e),
            BreakGlassError::Storage(e) => CareAccessError::Storage(e),
        }
    }
}

/// The care team and break-glass operations.
#[derive(Clone)]
pub struct CareAccess {
    gate: Gate,
    care_team: CareTeam,
    break_glass: BreakGlass,
    patients: Patients,
    accounts: Accounts,
    alerts: AlertService,
    clock: Arc<dyn Clock>,
    /// How long a break-glass grant lets its clinician in (ms).
    grant_lifetime_ms: i64,
}

impl CareAccess {
    /// The operations over these tables, checking accounts and telling time through
    /// `identity`, alerting owners through `alerts`; a break-glass grant lasts
    /// `break_glass_secs`.
    pub fn new(
        gate: Gate,
        care_team: CareTeam,
        break_glass: BreakGlass,
        patients: Patients,
        identity: &Identity,
        alerts: AlertService,
        break_glass_secs: u64,
    ) -> Self {
        Self {
            gate,
            care_team,
            break_glass,
            patients,
            accounts: identity.accounts.clone(),
            alerts,
            clock: identity.clock.clone(),
            grant_lifetime_ms: i64::try_from(break_glass_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }

    /// The clinicians on `patient`'s care team; the read is audited first.
    pub async fn care_team(&self, who: &Requester, patient: PatientId) -> Result<Vec<Member>, CareAccessError> {
        let about = About::new(Action::Read, ResourceType::CareTeam, Some(*patient.as_uuid())).for_patient(patient);
        let target = Target::Patient(patient);
        self.gate.authorize_and_record(who, Resource::CareTeam, Operation::Read, target, about).await?;
        Ok(self.care_team.members(patient).await?)
    }

    /// Puts `clinician` (an active clinician account) on `patient`'s care team.
    pub async fn assign(&self, who: &Requester, patient: PatientId, clinician: UserId) -> Result<(), CareAccessError> {
        let about = membership(patient, clinician);
        self.gate.authorize(who, Resource::CareTeam, Operation::Create, Target::Patient(patient), about).await?;
        if !self.patients.exists(patient).await.map_err(CareAccessError::Patients)? {
            return Err(CareAccessError::NotFound);
        }
        // The path names a clinician: an account that is none (or no longer active) is not
        // found, as an unknown patient is.
        let account = self.accounts.get(clinician).await.map_err(CareAccessError::Accounts)?;
        if !account.is_some_and(|a| a.role == Role::Clinician && a.status == AccountStatus::Active) {
            return Err(CareAccessError::NotFound);
        }
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "care_team_assigned")]).await?;
        let now = self.clock.now_ms();
        self.care_team.assign(patient, clinician, Some(who.principal.user_id), now).await?;
        Ok(())
    }

    /// Takes `clinician` off `patient`'s care team.
    pub async fn unassign(
        &self,
        who: &Requester,
        patient: PatientId,
        clinician: UserId,
    ) -> Result<(), CareAccessError> {
        let about = membership(patient, clinician);
        self.gate.authorize(who, Resource::CareTeam, Operation::Delete, Target::Patient(patient), about).await?;
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "care_team_unassigned")]).await?;
        if !self.care_team.unassign(patient, clinician).await? {
            return Err(CareAccessError::NotFound);
        }
        Ok(())
    }

    /// After `who` created `patient`'s record (an access already authorized and recorded): a
    /// clinician joins its care team, audited as `care_team_assigned`; other roles do not.
    /// Fails as an access check does, when the audit trail or the database is down.
    pub async fn creator_joins(&self, who: &Requester, patient: PatientId) -> Result<(), AccessError> {
        if who.principal.role != Role::Clinician {
            return Ok(());
        }
        let change =
            About::new(Action::PermissionChange, ResourceType::CareTeam, Some(*patient.as_uuid())).for_patient(patient);
        self.gate.record_all(vec![self.gate.event(who, change, Outcome::Success, "care_team_assigned")]).await?;
        let now = self.clock.now_ms();
        self.care_team.assign(patient, who.principal.user_id, None, now).await?;
        Ok(())
    }

    /// A clinician opens `patient` outside their care team, stating `reason`: the grant is
    /// audited as `emergency_access` and stored with a `break_glass` alert to every owner in one
    /// transaction; owners connected now see it live, the others when they connect.
    pub async fn break_glass(
        &self,
        who: &Requester,
        patient: PatientId,
        reason: &PhiText,
    ) -> Result<BreakGlassGrant, CareAccessError> {
        let about = About::new(Action::BreakGlass, ResourceType::BreakGlassGrant, None).for_patient(patient);
        self.gate.authorize(who, Resource::BreakGlassGrant, Operation::Create, Target::Any, about).await?;
        crate::access::break_glass::check_reason(reason)?;
        if !self.patients.exists(patient).await.map_err(CareAccessError::Patients)? {
            return Err(CareAccessError::NotFound);
        }
        let clinician = who.principal.user_id;
        if self.care_team.includes(patient, clinician).await? {
            return Err(CareAccessError::OnCareTeam);
        }
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "emergency_access")]).await?;
        let grant_id = Uuid::new_v4();
        let alert = NewAlert {
            clinician: Some(clinician),
            grant: Some(grant_id),
            ..NewAlert::new(AlertKind::BreakGlass, patient, Recipients::Roles(&[Role::PracticeOwner]))
        };
        let alerts = self.alerts.prepare(&[alert]).await.map_err(alert_error)?;
        let now = self.clock.now_ms();
        let mut tx = self.alerts.begin().await?;
        let lifetime = self.grant_lifetime_ms;
        let grant = self.break_glass.grant_in(&mut tx, grant_id, clinician, patient, reason, now, lifetime).await?;
        alerts.store_in(&mut tx).await?;
        tx.commit().await.map_err(StorageError::from)?;
        self.alerts.publish(alerts).await;
        Ok(grant)
    }

    /// Break-glass grants of the last 30 days, newest first, with their reasons: all of them
    /// for a practice-wide reader, a clinician's own otherwise. Each is audited as read.
    pub async fn break_glass_grants(&self, who: &Requester) -> Result<Vec<BreakGlassGrant>, CareAccessError> {
        let about = About::new(Action::Read, ResourceType::BreakGlassGrant, None);
        let decision = self.gate.authorize(who, Resource::BreakGlassGrant, Operation::Read, Target::Any, about).await?;
        let since = self.clock.now_ms() - BREAK_GLASS_WINDOW_MS;
        let mut grants = self.break_glass.list(since).await?;
        if decision == Decision::Own {
            grants.retain(|g| g.clinician_id == who.principal.user_id);
        }
        let events = grants
            .iter()
            .map(|g| {
                let about =
                    About::new(Action::Read, ResourceType::BreakGlassGrant, Some(g.grant_id)).for_patient(g.patient_id);
                self.gate.event(who, about, Outcome::Success, allowed_because(decision))
            })
            .collect();
        self.gate.record_all(events).await?;
        Ok(grants)
    }
}

/// An alert failure as the care-access operations report it.
fn alert_error(error: AlertError) -> CareAccessError {
    match error {
        AlertError::AuditUnavailable => CareAccessError::AuditUnavailable,
        AlertError::NotAllowed(denial) => CareAccessError::Denied(denial),
        AlertError::Crypto(e) => CareAccessError::Crypto(e),
        AlertError::Storage(e) => CareAccessError::Storage(e),
        AlertError::Accounts(e) => CareAccessError::Accounts(e),
        AlertError::NotFound
        | AlertError::InvalidFollowUp
        | AlertError::AlreadyFollowedUp
        | AlertError::NoFollowUp
        | AlertError::Outbox(_) => CareAccessError::Storage(StorageError::Encode),
    }
}

/// What a change of `clinician`'s membership of `patient`'s care team is, for its audit event.
fn membership(patient: PatientId, clinician: UserId) -> About {
    About::new(Action::PermissionChange, ResourceType::CareTeam, Some(*clinician.as_uuid())).for_patient(patient)
}
