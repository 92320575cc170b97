//! `confidant audit export`: audit entries in a time range, as JSON lines (the stored form,
//! hashes included, so the recipient can re-verify) or as a FHIR R4 Bundle of `AuditEvent`
//! resources for systems that speak FHIR. The entries are read by `store/chains.rs`.

use std::io::Write;

use futures_util::TryStreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::AuditRow;
use super::checkpoint::to_hex;
use super::store::chains::entries_between;
use crate::storage::{Storage, StorageError};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, every stored column (hashes in hex).
    Jsonl,
    /// A FHIR R4 `Bundle` (type `collection`) of `AuditEvent` resources, each entry with a
    /// `fullUrl` of `urn:uuid:<event id>`.
    Fhir,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the audit store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Writing the output failed.
    #[error("cannot write the export")]
    Output(#[from] std::io::Error),
}

/// Writes every entry with `since_ms <= at_ms < until_ms` to `out`; returns how many.
pub async fn export(
    storage: &Storage,
    since_ms: i64,
    until_ms: i64,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut rows = entries_between(storage, since_ms, until_ms);
    let mut count = 0u64;
    if format == ExportFormat::Fhir {
        write!(out, "{{\"resourceType\":\"Bundle\",\"type\":\"collection\"")?;
    }
    while let Some(row) = rows.try_next().await? {
        match format {
            ExportFormat::Jsonl => writeln!(out, "{}", jsonl(&row))?,
            ExportFormat::Fhir => {
                // FHIR JSON has no empty arrays: `entry` opens with its first element.
                write!(out, "{}", if count == 0 { ",\"entry\":[" } else { "," })?;
                let entry =
                    json!({ "fullUrl": format!("urn:uuid:{}", row.event_id), "resource": fhir_audit_event(&row) });
                write!(out, "{entry}")?;
            }
        }
        count += 1;
    }
    if format == ExportFormat::Fhir {
        // No `total`: R4 allows it only in search and history bundles (bdl-1).
        writeln!(out, "{}}}", if count == 0 { "" } else { "]" })?;
    }
    out.flush()?;
    Ok(count)
}

/// The stored form as a JSON object.
fn jsonl(row: &AuditRow) -> Value {
    json!({
        "node_id": row.node_id, "seq": row.seq, "event_id": row.event_id, "at_ms": row.at_ms,
        "actor_kind": row.actor_kind, "actor_user_id": row.actor_user_id, "actor_role": row.actor_role,
        "session_id": row.session_id, "request_id": row.request_id, "source_ip": row.source_ip,
        "action": row.action, "resource_type": row.resource_type, "resource_id": row.resource_id,
        "patient_id": row.patient_id, "outcome": row.outcome, "reason": row.reason,
        "prev_hash": to_hex(&row.prev_hash), "hash": to_hex(&row.hash),
    })
}

/// An R4 `AuditEvent` (https://hl7.org/fhir/R4/auditevent.html) for one entry.
fn fhir_audit_event(row: &AuditRow) -> Value {
    let authentication =
        matches!(row.action.as_str(), "login_success" | "login_failure" | "mfa_failure" | "logout" | "session_timeout");
    let event_type = if authentication {
        json!({ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication" })
    } else {
        json!({ "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" })
    };
    // AuditEventAction: C, R, U, D, E (execute: everything that is not CRUD).
    let action = match row.action.as_str() {
        "create" => "C",
        "read" | "export" => "R",
        "update" | "permission_change" | "key_rotation" => "U",
        "delete" | "purge" => "D",
        _ => "E",
    };
    // AuditEventOutcome: 0 success, 4 minor failure (refused), 8 serious failure (error).
    let outcome = match row.outcome.as_str() {
        "success" => "0",
        "denied" => "4",
        _ => "8",
    };
    let recorded = OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let who = match (&row.actor_user_id, row.actor_kind.as_str()) {
        (Some(user), _) => json!({ "identifier": { "system": "urn:confidant:user", "value": user } }),
        (None, kind) => json!({ "display": kind }),
    };
    let mut agent = json!({ "who": who, "requestor": row.actor_kind == "user" });
    if let Some(role) = &row.actor_role {
        agent["role"] = json!([{ "text": role }]);
    }
    if let Some(ip) = &row.source_ip {
        agent["network"] = json!({ "address": ip, "type": "2" });
    }
    let mut entities = Vec::new();
    if let Some(kind) = &row.resource_type {
        let mut what = json!({ "type": { "system": "urn:confidant:resource-type", "code": kind } });
        if let Some(id) = &row.resource_id {
            what["what"] = json!({ "identifier": { "system": format!("urn:confidant:{kind}"), "value": id } });
        }
        entities.push(what);
    }
    if let Some(patient) = &row.patient_id {
        entities.push(json!({
            "what": { "identifier": { "system": "urn:confidant:patient", "value": patient } },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": row.event_id,
        "type": event_type,
        "subtype": [{ "system": "urn:confidant:audit-action", "code": row.action }],
        "action": action,
        "recorded": recorded,
        "outcome": outcome,
        "agent": [agent],
        "source": { "observer": { "identifier": { "system": "urn:confidant:node", "value": row.node_id } } },
    });
    if let Some(reason) = &row.reason {
        event["outcomeDesc"] = json!(reason);
    }
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

/// Parses `2026-11-23` (midnight UTC) or an RFC 3339 timestamp into ms since the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
        Some(date.midnight().assume_utc())
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_dates_or_rfc3339() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
