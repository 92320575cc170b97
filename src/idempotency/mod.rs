//! `Idempotency-Key` (docs/API.md, "Retrying a write"): a client that sends a write and gets no
//! answer (a dropped connection, a node stopping, a timeout) cannot know whether it happened.
//! Sent with a key, the write is claimed under that key before it runs, and its successful
//! answer is kept, sealed like PHI, for [`KEEP_FOR`]: a retry with the same key and the same
//! request gets that answer again, and the write is not done twice.
//!
//! - An answer that is not a success is not kept: an error changed nothing (the API's rule), so
//!   the retry runs the write again.
//! - The same key with another request is refused (422), as is a retry while the first request
//!   still runs (409, with `Retry-After`); a claim older than [`IN_PROGRESS_FOR`] without an
//!   answer belonged to a node that stopped mid-write, whose outcome nobody knows (409
//!   `idempotency_outcome_unknown`: look before writing again, with a new key).
//! - Keys belong to the account: another account's identical key is another key.
//! - A replay hands over PHI again, so it is recorded as a read (`idempotent_replay`) naming the
//!   patient whose PHI the answer carries (`crate::auditor::noting_patients`), before it is sent.
//!
//! The HTTP side (which routes, the header, the middleware) is `http/idempotency.rs`.

pub mod store;

use std::sync::Arc;
use std::time::Duration;

use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::access::Requester;
use crate::auditor::{About, Auditor, Named};
use crate::crypto::{CryptoError, Field, Keyring, tables};
use crate::storage::StorageError;
use store::{Existing, NewClaim, StoredAnswer};

/// How long a key and its answer are kept (a day, as clients retry within minutes).
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);

/// How long a claim without an answer counts as a write still running; longer than any request
/// is allowed to take (the audit acknowledgement deadline, the pool's acquire timeout).
pub const IN_PROGRESS_FOR: Duration = Duration::from_secs(60);

/// The largest answer kept; a larger one (none of today's writes) is answered but not kept.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// How often a node deletes expired keys and answers.
pub const PURGE_EVERY: Duration = Duration::from_secs(600);

/// The longest key accepted, as Stripe and the IETF draft's examples use.
const MAX_KEY_CHARS: usize = 255;

/// Why a request with a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The header is not 1 to 255 visible ASCII characters (optionally in double quotes).
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    InvalidKey,
    /// The first request with this key is still running.
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    InProgress,
    /// The first request with this key was cut off; whether it took effect is unknown.
    #[error("the request with this Idempotency-Key was interrupted; check whether it took effect before writing again")]
    OutcomeUnknown,
    /// The key was used with another request.
    #[error("this Idempotency-Key was used with another request")]
    Reused,
}

impl Refusal {
    /// The API's error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidKey => "invalid_idempotency_key",
            Refusal::InProgress => "idempotency_key_in_progress",
            Refusal::OutcomeUnknown => "idempotency_outcome_unknown",
            Refusal::Reused => "idempotency_key_reused",
        }
    }
}

/// What can go wrong keeping or replaying an answer.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The request is refused (400, 409 or 422).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The replay could not be recorded, so it is not sent (fail closed).
    #[error("the audit trail cannot record the replay")]
    AuditUnavailable,
    /// A kept answer failed its integrity check.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A key as the client sent it: 1 to 255 visible ASCII characters. The IETF draft
/// (draft-ietf-httpapi-idempotency-key-header) makes it a structured-field string, in double
/// quotes; most clients send it bare. Both are the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a header value.
    pub fn parse(value: &[u8]) -> Result<Self, Refusal> {
        let inner = match value {
            [b'"', inner @ .., b'"'] => inner,
            bare => bare,
        };
        let visible = |b: &u8| (0x21..=0x7e).contains(b) && *b != b'"';
        if inner.is_empty() || inner.len() > MAX_KEY_CHARS || !inner.iter().all(visible) {
            return Err(Refusal::InvalidKey);
        }
        Ok(Self(String::from_utf8_lossy(inner).into_owned()))
    }

    /// What is stored of it: the key is the client's text, so only its digest is kept.
    fn digest(&self) -> [u8; 32] {
        Sha256::new().chain_update(b"confidant-idempotency-key-v1\0").chain_update(self.0.as_bytes()).finalize().into()
    }
}

/// What a retry must repeat exactly: method, path with query, media type and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDigest([u8; 32]);

impl RequestDigest {
    /// The digest of a request.
    pub fn of(method: &str, path_and_query: &str, content_type: Option<&str>, body: &[u8]) -> Self {
        let mut hash = Sha256::new().chain_update(b"confidant-idempotent-request-v1\0");
        for part in [method.as_bytes(), path_and_query.as_bytes(), content_type.unwrap_or_default().as_bytes(), body] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Self(hash.finalize().into())
    }
}

/// A successful answer, as kept and as replayed.
pub struct Answer {
    /// Its status (2xx).
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body (it may hold PHI).
    pub body: Zeroizing<Vec<u8>>,
}

/// A key this request holds: it runs the write, then keeps or releases it.
#[derive(Debug)]
#[must_use = "a claim is kept or released; otherwise retries see an interrupted request"]
pub struct Claim(Uuid);

/// How a request with a key goes on.
pub enum Begun {
    /// It holds the key: run the write.
    Claimed(Claim),
    /// The write was done before: this is its answer (its replay already recorded).
    Replay(Answer),
}

/// The kept answers of one node, over the main store.
#[derive(Clone)]
pub struct KeptAnswers {
    keyring: Arc<Keyring>,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
}

impl KeptAnswers {
    /// Over `keyring`'s store, recording replays through `auditor`.
    pub fn new(keyring: Arc<Keyring>, auditor: Auditor, clock: Arc<dyn Clock>) -> Self {
        Self { keyring, auditor, clock }
    }

    /// Claims `key` for `who`'s `request`, or answers what the key already holds.
    pub async fn begin(
        &self,
        who: &Requester,
        key: &IdempotencyKey,
        request: RequestDigest,
    ) -> Result<Begun, IdempotencyError> {
        let now_ms = self.clock.now_ms();
        let claim_id = Uuid::new_v4();
        let request_id = who.origin.request_id.map(|r| r.to_string()).unwrap_or_default();
        let new = NewClaim {
            claim_id,
            user: who.principal.user_id,
            key_digest: &key.digest(),
            request_digest: &request.0,
            request_id: &request_id,
            now_ms,
            expires_at_ms: now_ms.saturating_add(millis(KEEP_FOR)),
        };
        let claim = match store::claim(self.keyring.storage(), &new).await? {
            None => return Ok(Begun::Claimed(Claim(claim_id))),
            Some(existing) => existing,
        };
        match claim {
            Existing::Released => Err(Refusal::InProgress.into()),
            Existing::Claimed(c) | Existing::Answered(c, _) if c.request_digest != request.0 => {
                Err(Refusal::Reused.into())
            }
            Existing::Claimed(c) if now_ms.saturating_sub(c.claimed_at_ms) < millis(IN_PROGRESS_FOR) => {
                Err(Refusal::InProgress.into())
            }
            Existing::Claimed(_) => Err(Refusal::OutcomeUnknown.into()),
            Existing::Answered(c, answer) => self.replay(who, c.claim_id, answer).await.map(Begun::Replay),
        }
    }

    /// Opens a kept answer for `who`, once its replay is on record.
    async fn replay(&self, who: &Requester, claim: Uuid, kept: StoredAnswer) -> Result<Answer, IdempotencyError> {
        let row_id = claim.to_string();
        let body = self.keyring.open_value(body_field(&row_id), &kept.body).await?;
        let about =
            About::new(Action::Read, ResourceType::IdempotentAnswer, Some(claim)).for_patient_if(kept.patient_id);
        let event = self.auditor.by_user(
            who.principal.user_id,
            who.principal.role,
            &who.origin,
            about,
            Outcome::Success,
            "idempotent_replay",
        );
        self.auditor.record(event).await.map_err(|_| IdempotencyError::AuditUnavailable)?;
        Ok(Answer { status: kept.status, content_type: kept.content_type, body })
    }

    /// Keeps the successful `answer` of `claim`'s write, which named `named` in its audit
    /// events. An answer naming several patients, or too large, is not kept (its claim is
    /// released, and a retry runs the write again): a replay must say whose PHI it hands over.
    pub async fn keep(&self, claim: Claim, answer: &Answer, named: Named) -> Result<(), IdempotencyError> {
        let patient_id = match named {
            Named::Nobody => None,
            Named::One(patient) => Some(patient),
            Named::Several => return self.release(claim).await,
        };
        if answer.body.len() > MAX_ANSWER_BYTES {
            return self.release(claim).await;
        }
        let sealer = self.keyring.sealer();
        let row_id = claim.0.to_string();
        let kept = StoredAnswer {
            key_id: i64::from(sealer.key_id()),
            patient_id,
            status: answer.status,
            content_type: answer.content_type.clone(),
            body: sealer.seal(body_field(&row_id), &answer.body),
        };
        store::keep(self.keyring.storage(), claim.0, &kept, self.clock.now_ms()).await?;
        Ok(())
    }

    /// Gives the key up: the write failed and changed nothing.
    pub async fn release(&self, claim: Claim) -> Result<(), IdempotencyError> {
        Ok(store::release(self.keyring.storage(), claim.0).await?)
    }

    /// Deletes the keys and answers older than [`KEEP_FOR`].
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        store::purge_expired(self.keyring.storage(), self.clock.now_ms()).await
    }

    /// Runs [`Self::purge_expired`] every [`PURGE_EVERY`] (on every node; deletes are
    /// idempotent).
    pub fn start_purge(&self) {
        let kept = self.clone();
        actix::spawn(async move {
            loop {
                tokio::time::sleep(PURGE_EVERY).await;
                match kept.purge_expired().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "deleted expired idempotency keys"),
                    Err(error) => tracing::warn!(%error, "could not purge expired idempotency keys"),
                }
            }
        });
    }
}

fn body_field(row_id: &str) -> Field<'_> {
    Field { table: tables::IDEMPOTENT_ANSWERS.name, column: "body", row_id }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_visible_ascii_bare_or_quoted() {
        assert_eq!(IdempotencyKey::parse(b"8e03978e-40d5-43e8-bc93-6894a57f9324").unwrap().0.len(), 36);
        assert_eq!(IdempotencyKey::parse(b"\"abc\""), IdempotencyKey::parse(b"abc"));
        for bad in [&b""[..], b"\"\"", b"a b", b"a\"b", b"caf\xc3\xa9", b"\x7f", b"\""] {
            assert_eq!(IdempotencyKey::parse(bad), Err(Refusal::InvalidKey), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert_eq!(IdempotencyKey::parse(&[b'k'; 256]), Err(Refusal::InvalidKey));
    }

    #[test]
    fn a_retry_must_repeat_method_path_type_and_body() {
        let first = RequestDigest::of("POST", "/api/v1/appointments", Some("application/json"), b"{}");
        assert_eq!(first, RequestDigest::of("POST", "/api/v1/appointments", Some("application/json"), b"{}"));
        assert_ne!(first, RequestDigest::of("PUT", "/api/v1/appointments", Some("application/json"), b"{}"));
        assert_ne!(first, RequestDigest::of("POST", "/api/v1/appointmentsx", Some("application/json"), b"{}"));
        assert_ne!(first, RequestDigest::of("POST", "/api/v1/appointments", None, b"{}"));
        assert_ne!(first, RequestDigest::of("POST", "/api/v1/appointments", Some("application/json"), b"{ }"));
        // Lengths keep the parts apart: moving a byte from one part to the next is another request.
        assert_ne!(RequestDigest::of("POST", "/a", Some("b"), b""), RequestDigest::of("POST", "/", Some("ab"), b""));
    }
}
