//! The permission matrix: for each role, resource and operation, how far the role reaches. This
//! table is the whole of role-based access control; [`super::Access`] adds the attributes
//! (whose care team, whose own record, which break-glass grant). docs/SECURITY.md prints it,
//! and a test keeps that copy equal to [`markdown_table`].

use confidant_actors::audit::Role;

/// What can be acted on. Resources that later features store (messages, intake responses,
/// notes, claims, reminders) are here from the start, so their rules are decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A staff account (owner, clinician, front desk, billing).
    StaffAccount,
    /// A patient's sign-in account.
    PatientAccount,
    /// A patient's demographics: name, date of birth, contact details.
    PatientDemographics,
    /// Which clinicians treat which patient.
    CareTeam,
    /// Emergency access to a patient outside the care team.
    BreakGlassGrant,
    /// An appointment on a clinician's schedule.
    Appointment,
    /// An appointment reminder and the patient's reminder preferences.
    Reminder,
    /// A messaging device of one's own account: its signature key and KeyPackages (public
    /// keys only). Every role that may be in some conversation needs one.
    Device,
    /// An end-to-end encrypted message in a conversation about a patient (clinical).
    Message,
    /// An end-to-end encrypted message in a staff conversation: among staff, about no patient.
    /// Not clinical by design (it names no patient); the server cannot read it either way.
    StaffMessage,
    /// An intake or screening form given to a patient: which form, for which clinician. Not
    /// clinical (it holds no answer): front desk gives forms too.
    IntakeAssignment,
    /// An intake or screening form response (clinical).
    IntakeResponse,
    /// A clinical note in the patient's record: progress notes, intake assessments, treatment
    /// plans, discharge summaries, their addenda (clinical). Break-glass reads progress notes
    /// only and writes nothing (`access/check.rs`, `notes/service.rs`).
    ClinicalNote,
    /// That a note exists, its date, kind and status, never its content: the chart's list,
    /// which front desk and billing see too. Psychotherapy notes are listed to their author only.
    NoteSummary,
    /// A patient's own signed progress note, read by the patient when the practice turns on
    /// open notes (`notes.open_notes`); never a draft or a psychotherapy note (clinical).
    SharedNote,
    /// A psychotherapy note (45 CFR 164.501): its author's alone (`own`: the author's account),
    /// not the care team's, never through break-glass, never exported (clinical).
    PsychotherapyNote,
    /// A note template: the built-in ones and the practice's own, which owners add.
    NoteTemplate,
    /// Supervision of pre-licensed clinicians: owners mark who supervises whom; a supervisor
    /// (`own`: the supervisor's account) reads their queue and co-signs.
    Supervision,
    /// A billing claim: codes and amounts.
    Claim,
    /// The audit trail.
    AuditLog,
    /// An alert sent to the caller (`own`: they are among its recipients).
    Alert,
    /// A sign-in attack pattern the throttle noticed (credential stuffing, account guessing):
    /// who is alerted to it and may acknowledge it. It names no patient.
    SecurityAlert,
    /// The names and roles of the practice's active staff, without contact details: who a
    /// clinician on a schedule is, whom front desk books with.
    StaffDirectory,
}

/// What is done to a resource. Listing is reading: the scope decides which rows a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read one or list.
    Read,
    /// Create (for accounts: invite).
    Create,
    /// Change (for accounts: disable).
    Update,
    /// Remove (for the care team: unassign).
    Delete,
}

/// How far a permission reaches, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Not at all.
    None,
    /// The caller's own account or, for a patient, their own record.
    Own,
    /// Patients on the caller's care team (or reached through a live break-glass grant).
    CareTeam,
    /// Everything in the practice.
    Practice,
}

impl Resource {
    /// Every resource, in the order of the documented table.
    pub const ALL: [Resource; 23] = [
        Resource::StaffAccount,
        Resource::PatientAccount,
        Resource::PatientDemographics,
        Resource::CareTeam,
        Resource::BreakGlassGrant,
        Resource::Appointment,
        Resource::Reminder,
        Resource::Device,
        Resource::Message,
        Resource::StaffMessage,
        Resource::IntakeAssignment,
        Resource::IntakeResponse,
        Resource::ClinicalNote,
        Resource::NoteSummary,
        Resource::SharedNote,
        Resource::PsychotherapyNote,
        Resource::NoteTemplate,
        Resource::Supervision,
        Resource::Claim,
        Resource::AuditLog,
        Resource::Alert,
        Resource::SecurityAlert,
        Resource::StaffDirectory,
    ];

    /// Stable snake_case name (documentation, audit reason codes, tests).
    pub const fn as_str(self) -> &'static str {
        match self {
            Resource::StaffAccount => "staff_account",
            Resource::PatientAccount => "patient_account",
            Resource::PatientDemographics => "patient_demographics",
            Resource::CareTeam => "care_team",
            Resource::BreakGlassGrant => "break_glass_grant",
            Resource::Appointment => "appointment",
            Resource::Reminder => "reminder",
            Resource::Device => "device",
            Resource::Message => "message",
            Resource::StaffMessage => "staff_message",
            Resource::IntakeAssignment => "intake_assignment",
            Resource::IntakeResponse => "intake_response",
            Resource::ClinicalNote => "clinical_note",
            Resource::NoteSummary => "note_summary",
            Resource::SharedNote => "shared_note",
            Resource::PsychotherapyNote => "psychotherapy_note",
            Resource::NoteTemplate => "note_template",
            Resource::Supervision => "supervision",
            Resource::Claim => "claim",
            Resource::AuditLog => "audit_log",
            Resource::Alert => "alert",
            Resource::SecurityAlert => "security_alert",
            Resource::StaffDirectory => "staff_directory",
        }
    }

    /// Clinical content: what a patient told their clinician or the clinician concluded. Front
    /// desk, billing and owners never reach it.
    pub const fn is_clinical(self) -> bool {
        matches!(
            self,
            Resource::Message
                | Resource::IntakeResponse
                | Resource::ClinicalNote
                | Resource::SharedNote
                | Resource::PsychotherapyNote
        )
    }
}

impl Operation {
    /// Every operation, in table order.
    pub const ALL: [Operation; 4] = [Operation::Read, Operation::Create, Operation::Update, Operation::Delete];

    /// One letter, for the documented table.
    const fn letter(self) -> char {
        match self {
            Operation::Read => 'R',
            Operation::Create => 'C',
            Operation::Update => 'U',
            Operation::Delete => 'D',
        }
    }
}

/// One row of the matrix: a resource, and per role the operations allowed with their scope.
/// Operations are written as letters (`"RCU"`) so the table below reads like the documented one.
struct Row {
    resource: Resource,
    owner: (&'static str, Scope),
    clinician: (&'static str, Scope),
    front_desk: (&'static str, Scope),
    billing: (&'static str, Scope),
    patient: (&'static str, Scope),
}

const NONE: (&str, Scope) = ("", Scope::None);

/// The matrix. A cell names the operations a role may perform and how far they reach; anything
/// not written is denied.
const MATRIX: [Row; 23] = {
    use Scope::{CareTeam, Own, Practice};
    [
        Row {
            resource: Resource::StaffAccount,
            owner: ("RCU", Practice),
            clinician: ("R", Own),
            front_desk: ("R", Own),
            billing: ("R", Own),
            patient: NONE,
        },
        Row {
            resource: Resource::PatientAccount,
            owner: ("RCU", Practice),
            clinician: ("RC", CareTeam),
            front_desk: ("RC", Practice),
            billing: NONE,
            patient: ("R", Own),
        },
        Row {
            resource: Resource::PatientDemographics,
            owner: ("RCU", Practice),
            clinician: ("RCU", CareTeam),
            front_desk: ("RCU", Practice),
            billing: ("R", Practice),
            patient: ("RU", Own),
        },
        Row {
            resource: Resource::CareTeam,
            owner: ("RCD", Practice),
            clinician: ("R", CareTeam),
            front_desk: ("RCD", Practice),
            billing: NONE,
            patient: ("R", Own),
        },
        Row {
            resource: Resource::BreakGlassGrant,
            owner: ("R", Practice),
            clinician: ("RC", Own),
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::Appointment,
            owner: ("RCUD", Practice),
            clinician: ("RCUD", CareTeam),
            front_desk: ("RCUD", Practice),
            billing: ("R", Practice),
            patient: ("R", Own),
        },
        Row {
            resource: Resource::Reminder,
            owner: ("RC", Practice),
            clinician: ("R", CareTeam),
            front_desk: ("RCU", Practice),
            billing: NONE,
            patient: ("RU", Own),
        },
        Row {
            resource: Resource::Device,
            owner: ("RCD", Own),
            clinician: ("RCD", Own),
            front_desk: ("RCD", Own),
            billing: ("RCD", Own),
            patient: ("RCD", Own),
        },
        Row {
            resource: Resource::Message,
            owner: NONE,
            clinician: ("RC", CareTeam),
            front_desk: NONE,
            billing: NONE,
            patient: ("RC", Own),
        },
        Row {
            resource: Resource::StaffMessage,
            owner: ("RC", Practice),
            clinician: ("RC", Practice),
            front_desk: ("RC", Practice),
            billing: ("RC", Practice),
            patient: NONE,
        },
        Row {
            resource: Resource::IntakeAssignment,
            owner: NONE,
            clinician: ("C", CareTeam),
            // For a clinician of the patient's care team, who reads the results.
            front_desk: ("C", Practice),
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::IntakeResponse,
            owner: NONE,
            clinician: ("R", CareTeam),
            front_desk: NONE,
            billing: NONE,
            patient: ("RU", Own),
        },
        Row {
            resource: Resource::ClinicalNote,
            owner: NONE,
            clinician: ("RCU", CareTeam),
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::NoteSummary,
            owner: NONE,
            clinician: ("R", CareTeam),
            front_desk: ("R", Practice),
            billing: ("R", Practice),
            // Their own signed progress notes, and only when the practice turns open notes on.
            patient: ("R", Own),
        },
        Row {
            resource: Resource::SharedNote,
            owner: NONE,
            clinician: NONE,
            front_desk: NONE,
            billing: NONE,
            patient: ("R", Own),
        },
        Row {
            resource: Resource::PsychotherapyNote,
            owner: NONE,
            clinician: ("RCU", Own),
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::NoteTemplate,
            owner: ("RC", Practice),
            clinician: ("R", Practice),
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::Supervision,
            owner: ("RU", Practice),
            clinician: ("RC", Own),
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::Claim,
            owner: ("R", Practice),
            clinician: ("R", CareTeam),
            front_desk: NONE,
            billing: ("RCU", Practice),
            patient: ("R", Own),
        },
        Row {
            resource: Resource::AuditLog,
            owner: ("R", Practice),
            clinician: NONE,
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::Alert,
            owner: ("RU", Own),
            clinician: ("RU", Own),
            front_desk: ("RU", Own),
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::SecurityAlert,
            owner: ("RU", Practice),
            clinician: NONE,
            front_desk: NONE,
            billing: NONE,
            patient: NONE,
        },
        Row {
            resource: Resource::StaffDirectory,
            owner: ("R", Practice),
            clinician: ("R", Practice),
            front_desk: ("R", Practice),
            billing: ("R", Practice),
            patient: ("R", Practice),
        },
    ]
};

impl Row {
    const fn cell(&self, role: Role) -> (&'static str, Scope) {
        match role {
            Role::PracticeOwner => self.owner,
            Role::Clinician => self.clinician,
            Role::FrontDesk => self.front_desk,
            Role::Billing => self.billing,
            Role::Patient => self.patient,
        }
    }
}

/// How far `role` may perform `operation` on `resource`.
pub fn scope(role: Role, resource: Resource, operation: Operation) -> Scope {
    let Some(row) = MATRIX.iter().find(|row| row.resource == resource) else {
        return Scope::None;
    };
    let (letters, scope) = row.cell(role);
    if letters.contains(operation.letter()) { scope } else { Scope::None }
}

/// The roles the matrix lets perform `operation` on `resource` at all: who an alert or a notice
/// about that resource goes to (owners for sign-in attacks and the audit trail's head).
pub fn roles_allowed(resource: Resource, operation: Operation) -> Vec<Role> {
    Role::ALL.iter().copied().filter(|&role| scope(role, resource, operation) != Scope::None).collect()
}

/// The matrix as the Markdown table in docs/SECURITY.md.
pub fn markdown_table() -> String {
    let roles = Role::ALL;
    let mut out = String::from("| resource |");
    for role in roles {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(roles.len()));
    out.push('\n');
    for resource in Resource::ALL {
        out.push_str(&format!("| {} |", resource.as_str()));
        for &role in roles {
            let allowed: String = Operation::ALL
                .iter()
                .filter(|&&op| scope(role, resource, op) != Scope::None)
                .map(|op| op.letter())
                .collect();
            let reach = Operation::ALL.iter().map(|&op| scope(role, resource, op)).max().unwrap_or(Scope::None);
            let cell = match reach {
                Scope::None => "-".to_owned(),
                Scope::Own => format!("{allowed} own"),
                Scope::CareTeam => format!("{allowed} care team"),
                Scope::Practice => format!("{allowed} practice"),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_exactly_one_row() {
        for resource in Resource::ALL {
            assert_eq!(MATRIX.iter().filter(|r| r.resource == resource).count(), 1, "{resource:?}");
        }
    }

    #[test]
    fn cells_only_use_the_four_operation_letters() {
        for row in &MATRIX {
            for &role in Role::ALL {
                let (letters, scope) = row.cell(role);
                assert!(letters.chars().all(|c| "RCUD".contains(c)), "{:?} {role:?}", row.resource);
                assert_eq!(letters.is_empty(), scope == Scope::None, "{:?} {role:?}", row.resource);
            }
        }
    }

    #[test]
    fn front_desk_billing_and_owners_never_reach_clinical_content() {
        for resource in Resource::ALL.into_iter().filter(|r| r.is_clinical()) {
            for role in [Role::FrontDesk, Role::Billing, Role::PracticeOwner] {
                for op in Operation::ALL {
                    assert_eq!(scope(role, resource, op), Scope::None, "{role:?} {resource:?} {op:?}");
                }
            }
        }
    }

    #[test]
    fn a_clinician_reaches_patients_only_through_the_care_team() {
        for resource in [Resource::PatientDemographics, Resource::ClinicalNote, Resource::IntakeResponse] {
            assert_eq!(scope(Role::Clinician, resource, Operation::Read), Scope::CareTeam);
        }
    }

    #[test]
    fn a_patient_reaches_only_their_own_records() {
        // The staff directory holds no record of anyone's care: the names of the practice's
        // staff, which a patient needs to know who their appointment is with.
        for resource in Resource::ALL.into_iter().filter(|r| *r != Resource::StaffDirectory) {
            for op in Operation::ALL {
                assert!(scope(Role::Patient, resource, op) <= Scope::Own, "{resource:?} {op:?}");
            }
        }
    }

    #[test]
    fn only_owners_manage_staff_and_read_the_audit_log() {
        for &role in Role::ALL {
            let owner = role == Role::PracticeOwner;
            assert_eq!(scope(role, Resource::StaffAccount, Operation::Create) == Scope::Practice, owner);
            assert_eq!(scope(role, Resource::AuditLog, Operation::Read) == Scope::Practice, owner);
        }
    }

    #[test]
    fn only_owners_are_told_of_sign_in_attacks_and_read_the_audit_trails_head() {
        assert_eq!(roles_allowed(Resource::SecurityAlert, Operation::Read), [Role::PracticeOwner]);
        assert_eq!(roles_allowed(Resource::SecurityAlert, Operation::Update), [Role::PracticeOwner]);
        assert_eq!(roles_allowed(Resource::AuditLog, Operation::Read), [Role::PracticeOwner]);
    }

    #[test]
    fn owners_front_desk_and_clinicians_invite_patients() {
        for &role in Role::ALL {
            let invites = scope(role, Resource::PatientAccount, Operation::Create) != Scope::None;
            assert_eq!(invites, matches!(role, Role::PracticeOwner | Role::FrontDesk | Role::Clinician), "{role:?}");
        }
    }

    #[test]
    fn staff_conversations_admit_every_staff_role_and_never_a_patient() {
        for &role in Role::ALL {
            for op in [Operation::Read, Operation::Create] {
                let expected = if role == Role::Patient { Scope::None } else { Scope::Practice };
                assert_eq!(scope(role, Resource::StaffMessage, op), expected, "{role:?} {op:?}");
            }
        }
    }

    #[test]
    fn exactly_the_roles_that_may_converse_hold_devices() {
        for &role in Role::ALL {
            let converses = [Resource::Message, Resource::StaffMessage]
                .into_iter()
                .any(|resource| scope(role, resource, Operation::Create) != Scope::None);
            for op in [Operation::Read, Operation::Create, Operation::Delete] {
                assert_eq!(scope(role, Resource::Device, op) != Scope::None, converses, "{role:?} {op:?}");
                assert!(scope(role, Resource::Device, op) <= Scope::Own, "a device is only ever one's own");
            }
        }
    }

    #[test]
    fn only_the_author_reaches_a_psychotherapy_note() {
        for &role in Role::ALL {
            for op in Operation::ALL {
                let expected =
                    if role == Role::Clinician && op != Operation::Delete { Scope::Own } else { Scope::None };
                assert_eq!(scope(role, Resource::PsychotherapyNote, op), expected, "{role:?} {op:?}");
            }
        }
    }

    #[test]
    fn front_desk_and_billing_see_that_notes_exist_and_nothing_of_them() {
        for role in [Role::FrontDesk, Role::Billing] {
            assert_eq!(scope(role, Resource::NoteSummary, Operation::Read), Scope::Practice);
            for resource in [Resource::ClinicalNote, Resource::SharedNote, Resource::PsychotherapyNote] {
                assert_eq!(scope(role, resource, Operation::Read), Scope::None, "{role:?} {resource:?}");
            }
        }
    }

    #[test]
    fn nobody_deletes_a_patient_record() {
        for &role in Role::ALL {
            assert_eq!(scope(role, Resource::PatientDemographics, Operation::Delete), Scope::None);
        }
    }

    #[test]
    fn the_documented_matrix_is_the_one_in_the_code() {
        let docs = include_str!("../../docs/SECURITY.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/SECURITY.md must contain the permission matrix exactly as generated:\n{table}"
        );
    }
}
