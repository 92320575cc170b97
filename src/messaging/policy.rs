//! [`ConversationPolicy`]: the membership rule of conversations, which accounts may be in a
//! conversation of a kind (docs/MESSAGING.md, "Conversation"). The conversation store asks it
//! through its [`Membership`] port for every device a group would hold.

use confidant_actors::ids::UserId;

use super::{Membership, MessagingError};
use crate::access::{Access, ConversationKind};
use crate::identity::accounts::{AccountStatus, Accounts};

/// The permission module's answer to "may this account be in a conversation of this kind": an
/// active account the matrix row of that kind allows (`Access::may_converse`).
#[derive(Clone)]
pub struct ConversationPolicy {
    accounts: Accounts,
    access: Access,
}

impl ConversationPolicy {
    /// The rule over `accounts` (whose status and role) and `access` (the matrix row's answer).
    pub fn new(accounts: Accounts, access: Access) -> Self {
        Self { accounts, access }
    }
}

impl Membership for ConversationPolicy {
    async fn may_hold(&self, user: UserId, kind: ConversationKind) -> Result<bool, MessagingError> {
        let account = self.accounts.get(user).await.map_err(|_| MessagingError::Unavailable)?;
        let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else { return Ok(false) };
        self.access
            .may_converse(user, account.role, account.patient_id, kind)
            .await
            .map_err(|_| MessagingError::Unavailable)
    }
}
