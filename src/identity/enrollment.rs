//! Account life cycle: invitations and their acceptance, the bootstrap owner, disabling, and
//! TOTP enrollment with recovery codes. Who may invite or disable whom is decided by
//! [`crate::access`] before these are called; each change is audited before it is made.

use confidant_actors::audit::{Action, AuditActor, Outcome, Role};
use confidant_actors::ids::UserId;

use super::accounts::{Email, NewAccount, StaffName};
use super::error::AuthError;
use super::password::check_policy;
use super::recovery::{self, RecoveryCode};
use super::service::Identity;
use super::sessions::{EndReason, SessionOwner};
use super::sign_in::TotpCheck;
use super::throttle::Subject;
use super::tokens::Token;
use super::totp::{self, TotpSecret};
use crate::auditor::Origin;

/// A started TOTP enrollment: what the authenticator app needs (shown once).
pub struct TotpEnrollment {
    /// The secret in base32, for typing in by hand.
    pub secret: zeroize::Zeroizing<String>,
    /// The `otpauth://` URI, for a QR code.
    pub provisioning_uri: zeroize::Zeroizing<String>,
}

impl Identity {
    /// Invites an account: it exists in state `invited` until the token is used.
    pub async fn invite(
        &self,
        new: &NewAccount,
        by: AuditActor,
        origin: Origin,
    ) -> Result<(UserId, Token, i64), AuthError> {
        let now = self.now_ms();
        let expires = now.saturating_add(Self::ms(self.settings.invitation_secs));
        let (user_id, token) = self.accounts.invite(new, invited_by(by), now, expires).await?;
        let mut event = Self::on_account(self.event(by, Action::Create, Outcome::Success, origin, "invited"), user_id);
        if let Some(patient) = new.patient_id {
            event = event.for_patient(patient);
        }
        if let Err(error) = self.audit(event).await {
            // Not recorded, so not done: the invitation is withdrawn.
            self.accounts.withdraw(user_id).await?;
            return Err(error);
        }
        Ok((user_id, token, expires))
    }

    /// Accepts an invitation: the password must meet the policy; the account becomes active.
    pub async fn accept_invitation(&self, token: &str, password: &str, origin: Origin) -> Result<UserId, AuthError> {
        let now = self.now_ms();
        let Some((user_id, email)) = self.accounts.invitation(token, now).await? else {
            return Err(AuthError::NotFound);
        };
        check_policy(password, &[email.local_part()])?;
        let hash = self.hasher.hash(password).await?;
        let account = self.accounts.get(user_id).await?.ok_or(AuthError::NotFound)?;
        let actor = Self::user(user_id, account.role);
        self.audit(Self::on_account(
            self.event(actor, Action::Update, Outcome::Success, origin, "invitation_accepted"),
            user_id,
        ))
        .await?;
        self.accounts.accept(token, &hash, now).await?.ok_or(AuthError::NotFound)
    }

    /// Creates an active staff account directly, for the command line (the first owner).
    pub async fn create_staff(
        &self,
        role: Role,
        email: Email,
        name: Option<StaffName>,
        password: &str,
    ) -> Result<UserId, AuthError> {
        if role == Role::Patient {
            return Err(AuthError::Conflict("patients are invited for their patient record"));
        }
        check_policy(password, &[email.local_part()])?;
        let hash = self.hasher.hash(password).await?;
        let new = NewAccount { role, email, patient_id: None, name };
        let user_id = self.accounts.create_active(&new, &hash, self.now_ms()).await?;
        let event = self.event(
            AuditActor::System,
            Action::Create,
            Outcome::Success,
            Origin::default(),
            "created_by_command_line",
        );
        if let Err(error) = self.audit(Self::on_account(event, user_id)).await {
            self.accounts.withdraw(user_id).await?;
            return Err(error);
        }
        Ok(user_id)
    }

    /// Names (or renames) a member of staff, audited first (not recorded, not done). The caller
    /// has checked that `by` may.
    pub async fn set_staff_name(
        &self,
        user: UserId,
        name: &StaffName,
        by: AuditActor,
        origin: Origin,
    ) -> Result<(), AuthError> {
        let account = self.accounts.get(user).await?.ok_or(AuthError::NotFound)?;
        if account.role == Role::Patient {
            return Err(AuthError::NotFound);
        }
        self.audit(Self::on_account(self.event(by, Action::Update, Outcome::Success, origin, "staff_name_set"), user))
            .await?;
        self.accounts.set_name(user, name, self.now_ms()).await
    }

    /// Disables an account and ends all its sessions at once.
    pub async fn disable(&self, user: UserId, by: AuditActor, origin: Origin) -> Result<bool, AuthError> {
        self.accounts.get(user).await?.ok_or(AuthError::NotFound)?;
        self.audit(Self::on_account(
            self.event(by, Action::PermissionChange, Outcome::Success, origin, "account_disabled"),
            user,
        ))
        .await?;
        let changed = self.accounts.disable(user, self.now_ms()).await?;
        self.sessions.end_all(user, EndReason::AccountDisabled).await?;
        Ok(changed)
    }

    /// Starts TOTP enrollment for the signed-in account (replacing an unconfirmed one).
    pub async fn begin_totp(&self, owner: &SessionOwner, origin: Origin) -> Result<TotpEnrollment, AuthError> {
        let secret = TotpSecret::generate();
        let email = self.accounts.email(owner.user_id).await?;
        let provisioning_uri = totp::provisioning_uri(&secret, &self.settings.totp_issuer, email.expose())
            .map_err(|_| AuthError::Conflict("the TOTP issuer or account name cannot be used in a provisioning URI"))?;
        let actor = Self::user(owner.user_id, owner.role);
        self.audit(Self::on_account(
            self.event(actor, Action::Update, Outcome::Success, origin, "totp_enrollment_started"),
            owner.user_id,
        ))
        .await?;
        self.accounts.begin_totp(owner.user_id, &secret, self.now_ms()).await?;
        Ok(TotpEnrollment { secret: secret.base32(), provisioning_uri })
    }

    /// Confirms enrollment with a first code: TOTP is on, this session counts as having proved
    /// it, and the recovery codes are returned (shown once; stored hashed).
    pub async fn confirm_totp(
        &self,
        owner: &SessionOwner,
        code: &str,
        origin: Origin,
    ) -> Result<Vec<RecoveryCode>, AuthError> {
        let actor = Self::user(owner.user_id, owner.role);
        let Some((secret, enabled, _)) = self.accounts.totp(owner.user_id).await? else {
            return Err(AuthError::Conflict("start TOTP enrollment first"));
        };
        if enabled {
            return Err(AuthError::Conflict("TOTP is already enabled for this account"));
        }
        let subjects = [Subject::SecondFactor(owner.user_id)];
        self.throttle.check(&subjects).await?;
        let now_secs = u64::try_from(self.now_ms() / 1000).unwrap_or(0);
        let Some(step) = totp::verify(&secret, code, now_secs, None) else {
            self.throttle.failed(&subjects).await?;
            self.audit(Self::on_account(
                self.event(actor, Action::MfaFailure, Outcome::Denied, origin, "wrong_totp"),
                owner.user_id,
            ))
            .await?;
            return Err(AuthError::InvalidMfa);
        };
        let codes = recovery::generate();
        let hashes: Vec<[u8; 32]> = codes.iter().filter_map(|c| recovery::hash(&owner.user_id, c.as_str())).collect();
        self.audit(Self::on_account(
            self.event(actor, Action::PermissionChange, Outcome::Success, origin, "totp_enabled"),
            owner.user_id,
        ))
        .await?;
        if !self.accounts.confirm_totp(owner.user_id, step, &hashes, self.now_ms()).await? {
            return Err(AuthError::Conflict("TOTP is already enabled for this account"));
        }
        self.sessions.mark_mfa(owner.session_id).await?;
        Ok(codes)
    }

    /// Re-proves TOTP within a signed-in session (for a session that started before enrollment
    /// on another device): marks the session as having a second factor.
    pub async fn step_up(&self, owner: &SessionOwner, code: &str, origin: Origin) -> Result<(), AuthError> {
        self.fresh_totp(owner.user_id, owner.role, code, origin).await?;
        self.sessions.mark_mfa(owner.session_id).await?;
        Ok(())
    }

    /// Checks a TOTP code given for one act that needs a fresh second factor (signing a clinical
    /// note): the code must be right and not used before (each time step once), under the same
    /// brute-force limits as sign-in; a wrong one is audited as `wrong_totp`.
    pub async fn fresh_totp(&self, user: UserId, role: Role, code: &str, origin: Origin) -> Result<(), AuthError> {
        let actor = Self::user(user, role);
        let subjects = [Subject::SecondFactor(user)];
        self.throttle.check(&subjects).await?;
        match self.check_totp(user, code).await? {
            TotpCheck::Accepted => {
                self.throttle.succeeded(subjects[0]).await?;
                Ok(())
            }
            TotpCheck::Replayed | TotpCheck::Wrong => {
                self.throttle.failed(&subjects).await?;
                self.audit(Self::on_account(
                    self.event(actor, Action::MfaFailure, Outcome::Denied, origin, "wrong_totp"),
                    user,
                ))
                .await?;
                Err(AuthError::InvalidMfa)
            }
        }
    }
}

/// The inviting account, when a person (not the command line) invited.
fn invited_by(actor: AuditActor) -> Option<UserId> {
    match actor {
        AuditActor::User { id, .. } => Some(id),
        AuditActor::Anonymous | AuditActor::System => None,
    }
}
