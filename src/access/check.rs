//! [`Access::check`]: the one decision every handler asks for. The matrix says how far a role
//! reaches; this adds who the caller is (their own record), whom they treat (care team, live
//! break-glass grants) and whether their session proved a second factor.

use std::sync::Arc;

use confidant_actors::audit::{ReasonCode, Role};
use confidant_actors::clock::Clock;
use confidant_actors::ids::{PatientId, SessionId, UserId};
use uuid::Uuid;

use super::matrix::{self, Operation, Resource, Scope};
use super::{BreakGlass, CareTeam};
use crate::settings::PatientMfa;
use crate::storage::StorageError;

/// The signed-in caller, as the session names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Their account.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
    /// The session the request came in.
    pub session_id: SessionId,
    /// For a patient account, the patient record it is.
    pub patient_id: Option<PatientId>,
    /// Whether this session proved a second factor (TOTP or a recovery code).
    pub mfa: bool,
}

/// What a request acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No one record: a list (filtered by the decision's scope) or a creation.
    Any,
    /// One patient's record, or something belonging to it.
    Patient(PatientId),
    /// One account.
    Account(UserId),
    /// An appointment: a patient's, on a clinician's schedule. A clinician reaches it only when
    /// both the patient is theirs and the schedule is their own.
    Appointment {
        /// The patient.
        patient: PatientId,
        /// The clinician whose schedule holds it.
        clinician: UserId,
    },
}

/// What a conversation is, which decides who may be in it. Messaging stores it with each
/// conversation; only [`Access::may_converse`] turns it into a yes or no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// About one patient (the matrix's `message` row): the patient's own account and the
    /// clinicians on their care team.
    Care(PatientId),
    /// Among staff, about no patient (the `staff_message` row): any active staff account of the
    /// practice, never a patient's.
    Staff,
}

impl ConversationKind {
    /// The matrix row that decides who may be in it and send in it.
    pub const fn resource(self) -> Resource {
        match self {
            ConversationKind::Care(_) => Resource::Message,
            ConversationKind::Staff => Resource::StaffMessage,
        }
    }

    /// What a permission check about it acts on: the patient, or no one record.
    pub const fn target(self) -> Target {
        match self {
            ConversationKind::Care(patient) => Target::Patient(patient),
            ConversationKind::Staff => Target::Any,
        }
    }

    /// The patient it is about (audit events name them); a staff conversation has none.
    pub const fn patient(self) -> Option<PatientId> {
        match self {
            ConversationKind::Care(patient) => Some(patient),
            ConversationKind::Staff => None,
        }
    }

    /// The stored and documented name of the kind.
    pub const fn name(self) -> &'static str {
        match self {
            ConversationKind::Care(_) => "care",
            ConversationKind::Staff => "staff",
        }
    }
}

/// How a request was allowed; a list uses it to decide which rows it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Anything in the practice.
    Practice,
    /// The caller's own account or record only.
    Own,
    /// Patients on the caller's care team (and those with a live break-glass grant).
    CareTeam,
    /// This patient, through a live break-glass grant (audit it as such).
    BreakGlass {
        /// The grant.
        grant_id: Uuid,
    },
}

/// Why a request was refused (403), as an audit reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The role may not do this at all.
    #[error("your role may not do this")]
    NotPermitted,
    /// The session has not proved a second factor, which this role needs for this.
    #[error("set up and use a second factor (TOTP) first")]
    MfaRequired,
    /// A clinician, about a patient not on their care team (and no live break-glass grant).
    #[error("this patient is not on your care team")]
    NotOnCareTeam,
    /// Someone else's account or record.
    #[error("this is not your own record")]
    NotOwn,
}

impl Denial {
    /// The audit reason code.
    pub fn reason(self) -> ReasonCode {
        let code = match self {
            Denial::NotPermitted => "role_not_permitted",
            Denial::MfaRequired => "mfa_required",
            Denial::NotOnCareTeam => "not_on_care_team",
            Denial::NotOwn => "not_own_record",
        };
        ReasonCode::new(code).unwrap_or_else(|| unreachable!("literal reason codes are valid"))
    }
}

/// Why a check could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Refused.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The care team or grants could not be read (fail closed: the request fails).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The audit trail could not record the decision (fail closed: the request fails).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
}

/// The access decision, with what it needs to look up.
#[derive(Clone)]
pub struct Access {
    care_team: CareTeam,
    break_glass: BreakGlass,
    clock: Arc<dyn Clock>,
    patient_mfa: PatientMfa,
}

impl Access {
    /// A decision-maker over these tables.
    pub fn new(care_team: CareTeam, break_glass: BreakGlass, clock: Arc<dyn Clock>, patient_mfa: PatientMfa) -> Self {
        Self { care_team, break_glass, clock, patient_mfa }
    }

    /// Whether account `user` (with `role`, and for a patient account its `patient_id`) may
    /// be a member of a conversation of `kind`: the matrix row of that kind decides (about a
    /// patient: the patient their own, a clinician their care team's; among staff: every role
    /// the practice-wide cell admits), as it does for sending in it. A break-glass grant does
    /// not count: it opens records for an hour, while membership lasts.
    pub async fn may_converse(
        &self,
        user: UserId,
        role: Role,
        own_patient: Option<PatientId>,
        kind: ConversationKind,
    ) -> Result<bool, StorageError> {
        Ok(match (matrix::scope(role, kind.resource(), Operation::Create), kind) {
            (Scope::None, _) => false,
            (Scope::Practice, _) => true,
            (Scope::Own, ConversationKind::Care(patient)) => own_patient == Some(patient),
            (Scope::CareTeam, ConversationKind::Care(patient)) => self.care_team.includes(patient, user).await?,
            // A staff conversation is nobody's own record and no patient's care team: only a
            // practice-wide cell lets a role in.
            (Scope::Own | Scope::CareTeam, ConversationKind::Staff) => false,
        })
    }

    /// Whether `who` may perform `operation` on `resource` for `target`, and how far.
    pub async fn check(
        &self,
        who: &Principal,
        resource: Resource,
        operation: Operation,
        target: Target,
    ) -> Result<Decision, AccessError> {
        let scope = matrix::scope(who.role, resource, operation);
        if scope == Scope::None {
            return Err(Denial::NotPermitted.into());
        }
        let own_account = matches!(target, Target::Account(id) if id == who.user_id)
            && matches!(resource, Resource::StaffAccount | Resource::PatientAccount);
        if !who.mfa && self.needs_mfa(who.role) && !own_account {
            return Err(Denial::MfaRequired.into());
        }
        match (scope, target) {
            (Scope::None, _) => Err(Denial::NotPermitted.into()),
            (Scope::Practice, _) => Ok(Decision::Practice),
            (Scope::Own, Target::Any) => Ok(Decision::Own),
            (Scope::Own, Target::Account(id)) if id == who.user_id => Ok(Decision::Own),
            (Scope::Own, Target::Patient(id) | Target::Appointment { patient: id, .. })
                if who.patient_id == Some(id) =>
            {
                Ok(Decision::Own)
            }
            (Scope::Own, _) => Err(Denial::NotOwn.into()),
            (Scope::CareTeam, Target::Any) => Ok(Decision::CareTeam),
            (Scope::CareTeam, Target::Appointment { clinician, .. }) if clinician != who.user_id => {
                Err(Denial::NotOwn.into())
            }
            (Scope::CareTeam, Target::Patient(patient) | Target::Appointment { patient, .. }) => {
                if self.care_team.includes(patient, who.user_id).await? {
                    return Ok(Decision::CareTeam);
                }
                // Break-glass opens a patient's records, not their conversations: a member stays
                // one after the grant's hour, and what members write is end-to-end encrypted to
                // them alone ([`Access::may_converse`] admits the care team only, too).
                if resource == Resource::Message {
                    return Err(Denial::NotOnCareTeam.into());
                }
                // Break-glass is for reading in an emergency: nobody writes a patient's notes
                // through it (and the notes service lets it read progress notes only).
                if resource == Resource::ClinicalNote && operation != Operation::Read {
                    return Err(Denial::NotOnCareTeam.into());
                }
                match self.break_glass.active(who.user_id, patient, self.clock.now_ms()).await? {
                    Some(grant_id) => Ok(Decision::BreakGlass { grant_id }),
                    None => Err(Denial::NotOnCareTeam.into()),
                }
            }
            (Scope::CareTeam, Target::Account(_)) => Err(Denial::NotOnCareTeam.into()),
        }
    }

    /// The patients a [`Decision::CareTeam`] list may hold for `clinician`: the care team plus
    /// live break-glass grants.
    pub async fn reachable_patients(&self, clinician: UserId) -> Result<Vec<PatientId>, StorageError> {
        let mut ids = self.care_team.patients_of(clinician).await?;
        ids.extend(self.break_glass.patients_of(clinician, self.clock.now_ms()).await?);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Staff always need a second factor; patients when the practice requires it.
    pub fn needs_mfa(&self, role: Role) -> bool {
        role != Role::Patient || self.patient_mfa == PatientMfa::Required
    }
}
