//! Session limits and grant expiry with the clock injected, not slept: the identity layer and
//! the access decision run in-process on a real store (both backends) with a manual clock.

use std::sync::Arc;

use confidant::access::{Decision, Denial, Operation, Principal, Resource, Target};
use confidant::identity::oauth::{AuthorizationRequest, Redeemed};
use confidant::identity::password::PasswordHasher;
use confidant::identity::sessions::{AccessLifetime, EndReason, Lookup};
use confidant::identity::{AuthError, Email, Identity, NewAccount, Origin};
use confidant::phi::PhiText;
use confidant::services::Services;
use confidant::settings::{self, Settings};
use confidant::storage::Storage;
use confidant_actors::audit::Role;
use confidant_actors::clock::{Clock, ManualClock};
use confidant_actors::ids::{PatientId, UserId};

use crate::helpers::{Backend, InProcess, TestDatabase, in_process};

const MINUTE: i64 = 60_000;

struct Fixture {
    clock: Arc<ManualClock>,
    identity: Identity,
    services: Services,
    audit_storage: Storage,
    _dir: tempfile::TempDir,
    _dbs: Option<(TestDatabase, TestDatabase)>,
}

async fn fixture(backend: Backend) -> Fixture {
    fixture_with(backend, &[]).await
}

async fn fixture_with(backend: Backend, env: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string())];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let settings: Settings = settings::load_from(None, vars).unwrap();
    let InProcess { audit_storage, keyring, auditor, pusher, databases: dbs, .. } =
        in_process(backend, &settings, "sessions").await;
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let services = Services::new(&settings, keyring.clone(), auditor.clone(), pusher, clock.clone());
    // Cheap hashing: these tests are about time, not about argon2's cost.
    let hasher = PasswordHasher::with_params(256, 1, 1, 2).unwrap();
    let identity = Identity::new(keyring, hasher, clock.clone(), &settings.identity, auditor);
    Fixture { clock, identity, services, audit_storage, _dir: dir, _dbs: dbs }
}

impl Fixture {
    /// A signed-in staff account: created, code issued and exchanged with PKCE; returns its
    /// access token.
    async fn signed_in(&self, role: Role, email: &str, mfa: bool) -> (UserId, String, String) {
        let email = Email::parse(email).unwrap();
        let hash = self.identity.hasher.hash("a long unremarkable passphrase 42").await.unwrap();
        let new = NewAccount { role, email, patient_id: None, name: None };
        let user = self.identity.accounts.create_active(&new, &hash, self.clock.now_ms()).await.unwrap();
        let verifier = "v".repeat(43);
        let request = AuthorizationRequest {
            client_id: "portal".into(),
            redirect_uri: "https://127.0.0.1:8443/portal/".into(),
            code_challenge: {
                use base64::Engine;
                use sha2::Digest;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
            },
            state: None,
        };
        let mfa_at = mfa.then(|| self.clock.now_ms());
        let code = self.identity.grants.issue_code(user, &request, mfa_at, MINUTE).await.unwrap();
        let (owner, issued) = self
            .identity
            .exchange_code(
                code.expose(),
                "portal",
                &request.redirect_uri,
                &verifier,
                AccessLifetime::Short,
                Origin::default(),
            )
            .await
            .unwrap();
        assert_eq!(owner.user_id, user);
        (user, issued.access.expose().to_owned(), issued.refresh.expose().to_owned())
    }

    async fn audited(&self, action: &str, reason: &str) -> bool {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries WHERE action = $1 AND reason = $2")
            .bind(action)
            .bind(reason)
            .fetch_one(self.audit_storage.pool_for_tests())
            .await
            .unwrap();
        count > 0
    }
}

async fn an_idle_session_is_refused_after_the_timeout_and_the_timeout_is_audited(backend: Backend) {
    let f = fixture(backend).await;
    let (_, mut access, mut refresh) = f.signed_in(Role::Clinician, "a@practice.example", true).await;

    // Requests 14 minutes apart keep it alive (each restarts the idle clock; the client
    // refreshes its 15-minute access token as it goes)...
    for _ in 0..3 {
        f.clock.advance_ms(14 * MINUTE);
        let issued = f.identity.refresh(&refresh, "portal", Origin::default()).await.unwrap();
        (access, refresh) = (issued.access.expose().to_owned(), issued.refresh.expose().to_owned());
        assert!(f.identity.authenticate(&access, Origin::default()).await.is_ok());
    }
    // ...then 15 minutes of nothing ends it, at its next use, for good.
    f.clock.advance_ms(15 * MINUTE);
    assert!(f.identity.authenticate(&access, Origin::default()).await.is_err());
    let refreshed = f.identity.refresh(&refresh, "portal", Origin::default()).await;
    assert!(matches!(refreshed, Err(AuthError::OAuth { code: "invalid_grant", .. })), "refresh cannot revive it");
    let again = f.identity.refresh(&refresh, "portal", Origin::default()).await;
    assert!(matches!(again, Err(AuthError::OAuth { code: "invalid_grant", .. })));
    assert!(f.audited("session_timeout", "idle_timeout").await);
}

async fn a_request_after_the_idle_limit_ends_the_session_and_audits_the_timeout(backend: Backend) {
    // Idle limit (5 min) shorter than the access token's life (15 min): the token itself is
    // still valid, the session is not.
    let f = fixture_with(backend, &[("CONFIDANT_IDENTITY__SESSION_IDLE_SECS", "300")]).await;
    let (_, access, _) = f.signed_in(Role::FrontDesk, "desk@practice.example", true).await;
    f.clock.advance_ms(5 * MINUTE - 1);
    assert!(f.identity.authenticate(&access, Origin::default()).await.is_ok());
    f.clock.advance_ms(5 * MINUTE);
    assert!(matches!(f.identity.authenticate(&access, Origin::default()).await, Err(AuthError::SessionExpired)));
    assert!(matches!(f.identity.authenticate(&access, Origin::default()).await, Err(AuthError::Unauthenticated)));
    assert!(f.audited("session_timeout", "idle_timeout").await);
}

async fn a_refresh_does_not_count_as_activity(backend: Backend) {
    let f = fixture(backend).await;
    let (_, _, mut refresh) = f.signed_in(Role::FrontDesk, "desk@practice.example", true).await;
    f.clock.advance_ms(10 * MINUTE);
    let issued = f.identity.refresh(&refresh, "portal", Origin::default()).await.unwrap();
    refresh = issued.refresh.expose().to_owned();
    f.clock.advance_ms(6 * MINUTE);
    let refreshed = f.identity.refresh(&refresh, "portal", Origin::default()).await;
    assert!(matches!(refreshed, Err(AuthError::OAuth { code: "invalid_grant", .. })), "16 idle minutes end it");
    assert!(f.audited("session_timeout", "idle_timeout").await);
}

async fn a_session_ends_at_its_absolute_lifetime_however_active(backend: Backend) {
    let f = fixture(backend).await;
    let (_, _, mut refresh) = f.signed_in(Role::Billing, "billing@practice.example", true).await;
    let mut access = String::new();
    for _ in 0..(12 * 60 / 10 - 1) {
        f.clock.advance_ms(10 * MINUTE);
        let issued = f.identity.refresh(&refresh, "portal", Origin::default()).await.unwrap();
        (access, refresh) = (issued.access.expose().to_owned(), issued.refresh.expose().to_owned());
        assert!(f.identity.authenticate(&access, Origin::default()).await.is_ok());
    }
    f.clock.advance_ms(10 * MINUTE);
    let lookup = f.identity.sessions.authenticate(&access).await.unwrap();
    assert!(matches!(lookup, Lookup::Invalid | Lookup::TimedOut(_, EndReason::AbsoluteTimeout)), "{lookup:?}");
    assert!(f.identity.refresh(&refresh, "portal", Origin::default()).await.is_err());
    assert!(f.audited("session_timeout", "absolute_timeout").await);
}

async fn a_code_exchanged_twice_revokes_the_session_it_started(backend: Backend) {
    let f = fixture(backend).await;
    let (user, access, _) = f.signed_in(Role::PracticeOwner, "owner@practice.example", true).await;
    let request = AuthorizationRequest {
        client_id: "portal".into(),
        redirect_uri: "https://127.0.0.1:8443/portal/".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        state: None,
    };
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = f.identity.grants.issue_code(user, &request, Some(0), MINUTE).await.unwrap();
    let (_, issued) = f
        .identity
        .exchange_code(
            code.expose(),
            "portal",
            &request.redirect_uri,
            verifier,
            AccessLifetime::Short,
            Origin::default(),
        )
        .await
        .unwrap();
    let again = f
        .identity
        .exchange_code(
            code.expose(),
            "portal",
            &request.redirect_uri,
            verifier,
            AccessLifetime::Short,
            Origin::default(),
        )
        .await;
    assert!(matches!(again, Err(AuthError::OAuth { code: "invalid_grant", .. })));
    assert!(f.identity.authenticate(issued.access.expose(), Origin::default()).await.is_err());
    assert!(f.identity.authenticate(&access, Origin::default()).await.is_ok(), "other sessions are untouched");

    // An expired code is refused.
    let late = f.identity.grants.issue_code(user, &request, None, MINUTE).await.unwrap();
    f.clock.advance_ms(MINUTE + 1);
    let redeemed = f.identity.grants.redeem_code(late.expose(), "portal", &request.redirect_uri, verifier).await;
    assert!(matches!(redeemed, Ok(Redeemed::Invalid)));
}

async fn a_break_glass_grant_lets_in_for_its_lifetime_only(backend: Backend) {
    let f = fixture(backend).await;
    let (clinician, _, _) = f.signed_in(Role::Clinician, "b@practice.example", true).await;
    let record = confidant::patients::PatientRecord {
        legal_name: PhiText::new("Ada Lovelace"),
        preferred_name: None,
        date_of_birth: PhiText::new("1980-02-29"),
        email: None,
        phone: None,
        address: None,
        emergency_contact: None,
    };
    let patient: PatientId = f.services.patients.create(&record).await.unwrap();
    let who = Principal {
        user_id: clinician,
        role: Role::Clinician,
        session_id: confidant_actors::ids::SessionId::generate(),
        patient_id: None,
        mfa: true,
    };
    let read =
        || f.services.access.check(&who, Resource::PatientDemographics, Operation::Read, Target::Patient(patient));
    assert!(matches!(read().await, Err(confidant::access::AccessError::Denied(Denial::NotOnCareTeam))));

    let reason = PhiText::new("covering the crisis line tonight");
    let grant = f.services.break_glass.grant(clinician, patient, &reason, f.clock.now_ms(), 60 * MINUTE).await.unwrap();
    assert!(matches!(read().await, Ok(Decision::BreakGlass { grant_id }) if grant_id == grant.grant_id));
    f.clock.advance_ms(59 * MINUTE);
    assert!(read().await.is_ok());
    f.clock.advance_ms(MINUTE);
    assert!(matches!(read().await, Err(confidant::access::AccessError::Denied(Denial::NotOnCareTeam))), "expired");

    let without_mfa = Principal { mfa: false, ..who };
    let check =
        f.services.access.check(&without_mfa, Resource::PatientDemographics, Operation::Read, Target::Any).await;
    assert!(matches!(check, Err(confidant::access::AccessError::Denied(Denial::MfaRequired))));
}

crate::on_both_backends_actix!(
    an_idle_session_is_refused_after_the_timeout_and_the_timeout_is_audited,
    a_request_after_the_idle_limit_ends_the_session_and_audits_the_timeout,
    a_refresh_does_not_count_as_activity,
    a_session_ends_at_its_absolute_lifetime_however_active,
    a_code_exchanged_twice_revokes_the_session_it_started,
    a_break_glass_grant_lets_in_for_its_lifetime_only,
);
