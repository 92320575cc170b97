//! Failed backup alerts: when a scheduled backup fails ([`crate::backup::schedule`]), the
//! owners are told. Such an alert is about no patient and says nothing but that a backup
//! failed (what failed is in `/readyz` and the server's log). Its recipients are whoever the
//! permission matrix lets read `security_alert` (owners), who may acknowledge it. Once per run
//! of failures: its `dedup_key` is an HMAC of the last success before them, so a schedule that
//! keeps failing raises one alert until a backup succeeds again.

use confidant_protocol::AlertKind;

use super::{AlertError, AlertService, NewAlert, Recipients};
use crate::access::Resource;

impl AlertService {
    /// Alerts the owners that a scheduled backup failed, `last_success_at_ms` being the newest
    /// one that succeeded (if any). `Ok(false)`: this run of failures was alerted already.
    pub async fn raise_backup_failure(&self, last_success_at_ms: Option<i64>) -> Result<bool, AlertError> {
        let key =
            format!("backup_failed\n{}", last_success_at_ms.map_or_else(|| "never".to_owned(), |t| t.to_string()));
        self.raise_once(NewAlert {
            kind: AlertKind::BackupFailed,
            patient: None,
            assignment: None,
            clinician: None,
            reminder: None,
            grant: None,
            attack: None,
            dedup_key: Some(self.keyring().blind_index("alerts", "dedup_key", &key)),
            to: Recipients::AllowedToRead(Resource::SecurityAlert),
        })
        .await
    }
}
