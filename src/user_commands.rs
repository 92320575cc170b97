//! The bodies of the `confidant user ...` commands: the first practice owner (and any staff
//! account) created from the command line, and invitations printed for out-of-band delivery.
//! Each is audited on the command line's own chain before it takes effect.

use std::sync::Arc;

use confidant_actors::audit::{AuditActor, Role};
use confidant_actors::clock::SystemClock;
use confidant_actors::ids::{PatientId, UserId};

use crate::audit_commands::CliAudit;
use crate::auditor::Auditor;
use crate::identity::password::PasswordHasher;
use crate::identity::{Email, Identity, NewAccount, Origin, StaffName};
use crate::settings::Settings;
use crate::startup::{ServerError, open_keyring, open_stores, prepare_data_dir};

/// A created invitation, to print.
pub struct PrintedInvitation {
    /// The invited account.
    pub user_id: UserId,
    /// The one-time token.
    pub token: String,
    /// When it expires (UTC ms).
    pub expires_at_ms: i64,
}

async fn identity(
    settings: &Settings,
) -> Result<(Identity, CliAudit, crate::storage::Storage, crate::storage::Storage), ServerError> {
    prepare_data_dir(&settings.data_dir)?;
    let (main, audit) = open_stores(settings).await?;
    main.migrate().await?;
    audit.migrate().await?;
    let keyring = Arc::new(open_keyring(settings, &main).await?);
    let cli = CliAudit::start(settings, &audit)?;
    let hasher = PasswordHasher::new(settings.identity.password_hashing_concurrency);
    let identity = Identity::new(
        keyring,
        hasher,
        Arc::new(SystemClock),
        &settings.identity,
        Auditor::new(cli.node_id, cli.writer.clone()),
    );
    Ok((identity, cli, main, audit))
}

fn parse(role: &str, email: &str) -> Result<(Role, Email), ServerError> {
    let role = Role::parse(role)
        .ok_or(ServerError::Usage("--role must be practice_owner, clinician, front_desk, billing or patient"))?;
    let email = Email::parse(email).ok_or(ServerError::Usage("--email is not an email address"))?;
    Ok((role, email))
}

/// `--name` and `--credentials`, checked.
fn staff_name(name: Option<&str>, credentials: Option<&str>) -> Result<Option<StaffName>, ServerError> {
    match (name, credentials) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ServerError::Usage("--credentials needs --name")),
        (Some(name), credentials) => StaffName::parse(name, credentials).map(Some).map_err(|(field, _)| {
            ServerError::Usage(if field == "credentials" {
                "--credentials must be at most 40 characters, without control, invisible or text-direction characters"
            } else {
                "--name must be 1 to 100 characters, without control, invisible or text-direction characters"
            })
        }),
    }
}

/// `confidant user create --role R --email E [--name N [--credentials C]]`: an active staff
/// account with the password read from standard input. Bootstraps the first practice owner.
pub async fn create(
    settings: &Settings,
    role: &str,
    email: &str,
    name: (Option<&str>, Option<&str>),
    password: &str,
) -> Result<UserId, ServerError> {
    let (role, email) = parse(role, email)?;
    let name = staff_name(name.0, name.1)?;
    let (identity, cli, main, audit) = identity(settings).await?;
    let created = identity.create_staff(role, email, name, password.trim_end_matches(['\r', '\n'])).await;
    cli.checkpoint().await;
    main.close().await;
    audit.close().await;
    Ok(created?)
}

/// `confidant user invite --role R --email E [--patient ID | --name N [--credentials C]]`: an
/// invitation token to deliver.
pub async fn invite(
    settings: &Settings,
    role: &str,
    email: &str,
    patient: Option<PatientId>,
    name: (Option<&str>, Option<&str>),
) -> Result<PrintedInvitation, ServerError> {
    let (role, email) = parse(role, email)?;
    if (role == Role::Patient) != patient.is_some() {
        return Err(ServerError::Usage("--patient is required for, and only for, --role patient"));
    }
    let name = staff_name(name.0, name.1)?;
    if role == Role::Patient && name.is_some() {
        return Err(ServerError::Usage("--name is for staff; a patient is named by their patient record"));
    }
    let (identity, cli, main, audit) = identity(settings).await?;
    let new = NewAccount { role, email, patient_id: patient, name };
    let invited = identity.invite(&new, AuditActor::System, Origin::default()).await;
    cli.checkpoint().await;
    main.close().await;
    audit.close().await;
    let (user_id, token, expires_at_ms) = invited?;
    Ok(PrintedInvitation { user_id, token: token.expose().to_owned(), expires_at_ms })
}
