//! Sign-in attack alerts: the owners are told when the throttle notices credential stuffing or
//! account guessing ([`crate::identity::attacks`]). Such an alert is about no patient and
//! carries no PHI: the pattern, the source address or the account's id, the failures counted,
//! and its window. Its recipients are whoever the permission matrix lets read
//! `security_alert` (owners). It is not urgent, so it never escalates to the on-call list.
//!
//! One alert per pattern, source and window (`alerts.sign_in_attack_window_secs`, windows
//! aligned on the epoch): the alert's `dedup_key` is an HMAC of the three, unique in the
//! table, so a pattern noticed again in the same window, on this node or another at the same
//! moment, raises nothing more. The throttle already notices a pattern once per run of
//! failures; the window also holds when a run pauses long enough to be forgotten and starts
//! again.

use std::future::Future;
use std::pin::Pin;

use confidant_protocol::{AlertKind, AttackPattern, SignInAttack as AttackView};

use super::store as rows;
use super::{AlertError, AlertService, NewAlert, Recipients};
use crate::access::Resource;
use crate::identity::attacks::{AttackAlarm, Pattern, SignInAttack};

impl AlertService {
    /// Raises `new` unless an alert with its `dedup_key` exists already: sealed, stored with
    /// its recipients in one transaction that commits only once `alert_raised` is durable (fail
    /// closed), then pushed. `Ok(false)` when it had been raised already (nothing recorded).
    pub async fn raise_once(&self, new: NewAlert) -> Result<bool, AlertError> {
        if let Some(key) = &new.dedup_key
            && rows::is_raised(self.storage(), key).await?
        {
            return Ok(false);
        }
        let (prepared, events) = self.seal_all(std::slice::from_ref(&new)).await?;
        let mut tx = self.begin().await?;
        for (alert, recipients, _) in &prepared.alerts {
            // Another node raised the same one a moment ago: this one rolls back unrecorded.
            if !rows::insert(&mut tx, alert, recipients).await? {
                return Ok(false);
            }
        }
        self.auditor().record_all(events).await.map_err(|_| AlertError::AuditUnavailable)?;
        tx.commit().await?;
        self.publish(prepared).await;
        Ok(true)
    }

    /// The owners' alert of `attack`, keyed to its pattern, source and window.
    fn attack_alert(&self, attack: &SignInAttack) -> NewAlert {
        let window_ms = self.settings().sign_in_attack_window_ms();
        let window = attack.at_ms.div_euclid(window_ms);
        let starts = window.saturating_mul(window_ms);
        let mut source = String::with_capacity(attack.source_key.len() * 2);
        crate::storage::json_rows::push_hex(&mut source, &attack.source_key);
        let key = format!("{}\n{source}\n{window}", attack.pattern.code());
        let view = AttackView {
            pattern: match attack.pattern {
                Pattern::CredentialStuffing => AttackPattern::CredentialStuffing,
                Pattern::AccountGuessing => AttackPattern::AccountGuessing,
            },
            source_ip: attack.source_ip,
            account_id: attack.account.map(|a| *a.as_uuid()),
            failures: attack.failures,
            threshold: attack.threshold,
            window_starts_at_ms: starts,
            window_ends_at_ms: starts.saturating_add(window_ms),
        };
        NewAlert {
            kind: AlertKind::SignInAttack,
            patient: None,
            assignment: None,
            clinician: None,
            reminder: None,
            grant: None,
            attack: Some(view),
            dedup_key: Some(self.keyring().blind_index("alerts", "dedup_key", &key)),
            to: Recipients::AllowedToRead(Resource::SecurityAlert),
        }
    }
}

impl AttackAlarm for AlertService {
    /// Alerts the owners, once per pattern, source and window. A failure is logged: the sign-in
    /// that revealed the pattern is answered 401 either way, and its audit record stands.
    fn raise(&self, attack: SignInAttack) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let pattern = attack.pattern.code();
            match self.raise_once(self.attack_alert(&attack)).await {
                Ok(true) => tracing::warn!(pattern, "owners alerted to a sign-in attack pattern"),
                Ok(false) => tracing::info!(pattern, "a sign-in attack pattern already alerted in this window"),
                Err(error) => tracing::error!(%error, pattern, "could not alert owners to a sign-in attack pattern"),
            }
        })
    }
}
