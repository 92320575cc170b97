//! [`Users`]: account administration by other accounts — invite, list, disable — with the
//! permission matrix deciding who may manage whom (owners manage staff; owners, front desk and a
//! patient's care team invite patients) and what disabling an account sets off elsewhere
//! (sessions ended, sockets closed on every node, devices out of every conversation). It sits
//! above `identity` (the accounts), `access` (the gate), `patients` and `messaging`, which know
//! nothing of it.

use confidant_actors::audit::{Action, AuditActor, Outcome, ResourceType, Role};
use confidant_actors::ids::{PatientId, UserId};

use crate::access::{AccessError, CareTeam, Decision, Denial, Gate, Operation, Requester, Resource, Target};
use crate::auditor::About;
use crate::identity::tokens::Token;
use crate::identity::{Account, AccountStatus, AuthError, Email, Identity, NewAccount, StaffName};
use crate::messaging::{Conversations, Devices};
use crate::patients::{PatientError, Patients};
use crate::push::Pusher;

/// Why an account operation was not done.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A field breaks its rule (bad input); names the field and the rule, never the value.
    #[error("`{field}` {rule}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The permission matrix refuses (audited).
    #[error(transparent)]
    Denied(Denial),
    /// No such account, or patient record for a patient account.
    #[error("not found")]
    NotFound,
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(&'static str),
    /// The identity layer refused or failed (its own meaning is kept).
    #[error(transparent)]
    Identity(#[from] AuthError),
    /// The access decision or the patient store could not be consulted, or the audit trail
    /// cannot record the access (fail closed).
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A stored value failed its integrity check, or a database fault that is not an outage.
    #[error("internal error")]
    Internal,
}

impl From<AccessError> for UserError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => UserError::Denied(denial),
            AccessError::Storage(e) if !e.is_unavailable() => {
                tracing::error!(error = %e, "account permission check failed");
                UserError::Internal
            }
            AccessError::Storage(_) | AccessError::AuditUnavailable => UserError::Unavailable,
        }
    }
}

impl From<PatientError> for UserError {
    fn from(error: PatientError) -> Self {
        match error {
            PatientError::Storage(e) if e.is_unavailable() => UserError::Unavailable,
            other => {
                tracing::error!(error = %other, "patient lookup for an account failed");
                UserError::Internal
            }
        }
    }
}

/// An invitation to make.
pub struct Invite<'a> {
    /// The role, as written by the client.
    pub role: &'a str,
    /// The address, as written by the client.
    pub email: &'a str,
    /// For a patient account, its patient record.
    pub patient_id: Option<PatientId>,
    /// For staff: how they appear ("Dr. Ana Ruiz") and their credentials ("PsyD").
    pub display_name: Option<&'a str>,
    /// For staff: their credentials.
    pub credentials: Option<&'a str>,
}

/// A made invitation: deliver the token out of band; it works once.
pub struct Invited {
    /// The invited account.
    pub user_id: UserId,
    /// The one-time token.
    pub token: Token,
    /// When it stops working (UTC ms).
    pub expires_at_ms: i64,
}

/// An account as listed: staff show their email; a patient account shows its patient id
/// instead (its email is PHI, read through the patient record).
pub struct Listed {
    /// The account.
    pub account: Account,
    /// The email, for staff accounts only.
    pub staff_email: Option<Email>,
}

/// Account administration.
#[derive(Clone)]
pub struct Users {
    identity: Identity,
    gate: Gate,
    care_team: CareTeam,
    patients: Patients,
    devices: Devices,
    conversations: Conversations,
    pusher: Pusher,
}

/// Someone who may be in a conversation about a patient ([`Users::participants`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The account.
    pub user_id: UserId,
    /// Its role (the patient, or a clinician).
    pub role: Role,
    /// How a member of staff appears; none for the patient.
    pub display_name: Option<String>,
}

/// The matrix resource an account of `role` is.
fn resource_of(role: Role) -> Resource {
    if role == Role::Patient { Resource::PatientAccount } else { Resource::StaffAccount }
}

/// The audit actor of a requester.
fn actor(who: &Requester) -> AuditActor {
    AuditActor::User { id: who.principal.user_id, role: who.principal.role }
}

impl Users {
    /// Administration over these layers.
    pub fn new(
        identity: Identity,
        gate: Gate,
        care_team: CareTeam,
        patients: Patients,
        devices: Devices,
        conversations: Conversations,
        pusher: Pusher,
    ) -> Self {
        Self { identity, gate, care_team, patients, devices, conversations, pusher }
    }

    /// Who may be in a conversation about `patient`, as the caller starts one: the patient's own
    /// account and the clinicians on the care team, each with how they appear (the patient by
    /// nothing: the caller already knows whose conversation it is). Only for someone the matrix
    /// lets write messages about the patient; a read of who the patient's clinicians are,
    /// recorded with the patient before anything is answered.
    pub async fn participants(&self, who: &Requester, patient: PatientId) -> Result<Vec<Participant>, UserError> {
        let about = About::new(Action::Read, ResourceType::Conversation, None).for_patient(patient);
        self.gate
            .authorize_and_record(who, Resource::Message, Operation::Create, Target::Patient(patient), about)
            .await?;
        let mut people = Vec::new();
        if let Some(account) = self.identity.accounts.of_patient(patient).await?
            && account.status == AccountStatus::Active
        {
            people.push(Participant { user_id: account.user_id, role: Role::Patient, display_name: None });
        }
        let members = self
            .care_team
            .members(patient)
            .await
            .map_err(|e| if e.is_unavailable() { UserError::Unavailable } else { UserError::Internal })?;
        for member in members {
            let Some(account) = self.identity.accounts.get(member.clinician_id).await? else { continue };
            if account.status != AccountStatus::Active {
                continue;
            }
            let display_name = Some(self.identity.accounts.shown(&account).await?);
            people.push(Participant { user_id: account.user_id, role: account.role, display_name });
        }
        Ok(people)
    }

    /// Invites an account, if the matrix lets `who` create one of that role (for a patient
    /// account: for that patient).
    pub async fn invite(&self, who: &Requester, invite: Invite<'_>) -> Result<Invited, UserError> {
        let role = Role::parse(invite.role).ok_or(UserError::Invalid {
            field: "role",
            rule: "is not one of practice_owner, clinician, front_desk, billing, patient",
        })?;
        let email =
            Email::parse(invite.email).ok_or(UserError::Invalid { field: "email", rule: "is not an email address" })?;
        let (target, about) = match (role, invite.patient_id) {
            (Role::Patient, Some(patient)) => {
                (Target::Patient(patient), About::new(Action::Create, ResourceType::User, None).for_patient(patient))
            }
            (Role::Patient, None) => {
                return Err(UserError::Invalid { field: "patient_id", rule: "is required for a patient account" });
            }
            (_, Some(_)) => {
                return Err(UserError::Invalid { field: "patient_id", rule: "is only for patient accounts" });
            }
            (_, None) => (Target::Any, About::new(Action::Create, ResourceType::User, None)),
        };
        let name = match (role, invite.display_name, invite.credentials) {
            (Role::Patient, Some(_), _) => {
                return Err(UserError::Invalid {
                    field: "display_name",
                    rule: "is for staff; a patient record names a patient",
                });
            }
            (Role::Patient, None, Some(_)) => {
                return Err(UserError::Invalid { field: "credentials", rule: "are for staff" });
            }
            (_, None, Some(_)) => return Err(UserError::Invalid { field: "credentials", rule: "need a display_name" }),
            (_, Some(name), credentials) => Some(staff_name(name, credentials)?),
            (_, None, None) => None,
        };
        self.gate.authorize(who, resource_of(role), Operation::Create, target, about).await?;
        if let Some(patient) = invite.patient_id
            && !self.patients.exists(patient).await?
        {
            return Err(UserError::NotFound);
        }
        let new = NewAccount { role, email, patient_id: invite.patient_id, name };
        let (user_id, token, expires_at_ms) = self.identity.invite(&new, actor(who), who.origin).await?;
        Ok(Invited { user_id, token, expires_at_ms })
    }

    /// The accounts `who` may see: all for owners; their own for other staff; patient accounts
    /// within each role's reach. The listing is audited.
    pub async fn list(&self, who: &Requester) -> Result<Vec<Listed>, UserError> {
        let about = About::new(Action::Read, ResourceType::User, None);
        let p = &who.principal;
        let access = self.gate.access();
        let staff = access.check(p, Resource::StaffAccount, Operation::Read, Target::Any).await.ok();
        let patients = access.check(p, Resource::PatientAccount, Operation::Read, Target::Any).await.ok();
        if staff.is_none() && patients.is_none() {
            // Neither is allowed: let the gate record and answer the refusal.
            self.gate.authorize(who, Resource::StaffAccount, Operation::Read, Target::Any, about).await?;
        }
        let reachable = match patients {
            Some(Decision::CareTeam) => access.reachable_patients(p.user_id).await.map_err(AccessError::from)?,
            _ => Vec::new(),
        };
        let visible = |account: &Account| {
            let decision = if account.role == Role::Patient { patients } else { staff };
            match decision {
                Some(Decision::Practice) => true,
                Some(Decision::Own) => account.user_id == p.user_id,
                Some(Decision::CareTeam) => account.patient_id.is_some_and(|id| reachable.contains(&id)),
                Some(Decision::BreakGlass { .. }) | None => false,
            }
        };
        let accounts = self.identity.accounts.list().await?;
        let listed = accounts
            .into_iter()
            .filter(|(account, _)| visible(account))
            .map(|(account, email)| {
                let staff_email = (account.role != Role::Patient).then_some(email);
                Listed { account, staff_email }
            })
            .collect();
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "account_list")]).await?;
        Ok(listed)
    }

    /// How `account` appears on screen: a member of staff by name ("Dr. Ana Ruiz, PsyD"), or
    /// by email until named.
    pub async fn display_name(&self, account: &Account) -> Result<String, UserError> {
        Ok(self.identity.accounts.shown(account).await?)
    }

    /// Names (or renames) a member of staff: whoever the matrix lets update staff accounts
    /// (owners). Audited.
    pub async fn set_name(
        &self,
        who: &Requester,
        user: UserId,
        display_name: &str,
        credentials: Option<&str>,
    ) -> Result<(), UserError> {
        let name = staff_name(display_name, credentials)?;
        let about = About::new(Action::Update, ResourceType::User, Some(*user.as_uuid()));
        self.gate.authorize(who, Resource::StaffAccount, Operation::Update, Target::Account(user), about).await?;
        match self.identity.accounts.get(user).await? {
            Some(account) if account.role != Role::Patient => {}
            _ => return Err(UserError::NotFound),
        }
        self.identity.set_staff_name(user, &name, actor(who), who.origin).await?;
        Ok(())
    }

    /// The practice's active staff with how each appears, for every signed-in account the
    /// matrix lets read the directory. A member of staff not named yet appears by email to
    /// other staff, and without a name (`None`) to patients: the directory gives patients no
    /// contact details. Audited like any account listing.
    pub async fn directory(&self, who: &Requester) -> Result<Vec<(Account, Option<String>)>, UserError> {
        let about = About::new(Action::Read, ResourceType::User, None);
        self.gate.authorize(who, Resource::StaffDirectory, Operation::Read, Target::Any, about).await?;
        let to_staff = who.principal.role != Role::Patient;
        let staff = self
            .identity
            .accounts
            .list()
            .await?
            .into_iter()
            .filter(|(a, _)| a.role != Role::Patient && a.status == AccountStatus::Active)
            .map(|(account, email)| {
                let shown = match &account.name {
                    Some(name) => Some(name.shown()),
                    None => to_staff.then(|| email.expose().to_owned()),
                };
                (account, shown)
            })
            .collect();
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "staff_directory")]).await?;
        Ok(staff)
    }

    /// Disables an account: its sessions end at once, its sockets close on every node, its
    /// devices leave every conversation's delivery. Disabling a disabled account changes nothing.
    pub async fn disable(&self, who: &Requester, user: UserId) -> Result<(), UserError> {
        let account = self.identity.accounts.get(user).await?;
        let about = About::new(Action::PermissionChange, ResourceType::User, Some(*user.as_uuid()));
        let resource = account.as_ref().map_or(Resource::StaffAccount, |a| resource_of(a.role));
        self.gate.authorize(who, resource, Operation::Update, Target::Account(user), about).await?;
        let account = account.ok_or(UserError::NotFound)?;
        if account.user_id == who.principal.user_id {
            return Err(UserError::Conflict("an account cannot disable itself"));
        }
        if account.status == AccountStatus::Disabled {
            return Ok(());
        }
        self.identity.disable(user, actor(who), who.origin).await?;
        self.pusher.revoke(user, None).await;
        // A disabled account's devices leave every conversation's delivery at once; the members'
        // next commits remove them from the MLS groups (the server refuses to re-add them).
        if let Err(error) = crate::messaging::retire_devices(&self.devices, &self.conversations, user).await {
            tracing::error!(%error, "could not take a disabled account's devices out of its conversations");
        }
        Ok(())
    }
}

/// A staff name from the client, checked.
fn staff_name(display_name: &str, credentials: Option<&str>) -> Result<StaffName, UserError> {
    StaffName::parse(display_name, credentials).map_err(|(field, rule)| UserError::Invalid { field, rule })
}
