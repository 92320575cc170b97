//! The client side of sign-in, as the portal and the Rust client do it: PKCE, the password step,
//! TOTP, the code exchange and refresh; and accounts made the way a practice makes them (the
//! first owner on the command line, everyone else by invitation).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::identity::totp::{TotpSecret, code_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::TestApp;

pub const CLIENT: &str = "portal";
pub const REDIRECT: &str = "https://127.0.0.1:8443/portal/";
pub const PASSWORD: &str = "a long unremarkable passphrase 42";

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authenticator app: the enrolled secret, and the last time step it used (each step
/// works once per account, so it walks forward through the accepted window).
pub struct Authenticator {
    secret: TotpSecret,
    last_step: Mutex<Option<u64>>,
}

impl Authenticator {
    pub fn from_base32(secret: &str) -> Self {
        let decoded = totp_rs::Secret::try_from_base32(secret).unwrap();
        Self { secret: TotpSecret::from_bytes(decoded.as_bytes()).unwrap(), last_step: Mutex::new(None) }
    }

    /// A code for the earliest step in the server's window (now -1 .. now +1) not used yet. The
    /// previous step only in a step's first 20 s: its code leaves the window at the next step
    /// boundary, and a request sent just before one reached the server after it under load.
    /// When every step allowed now was used, waits for the next one (this blocks the thread).
    pub fn next_code(&self) -> String {
        loop {
            let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            let now = secs / 30;
            let earliest = if secs % 30 < 20 { now - 1 } else { now };
            let mut last = self.last_step.lock().unwrap();
            if let Some(step) = (earliest..=now + 1).find(|s| last.is_none_or(|l| *s > l)) {
                *last = Some(step);
                return code_at(&self.secret, step * 30);
            }
            drop(last);
            std::thread::sleep(Duration::from_secs(30 - secs % 30) + Duration::from_millis(50));
        }
    }

    /// A code not used yet, waiting for the authenticator's next time step when every step the
    /// server accepts now was used (each signature of a clinical note takes a fresh code).
    pub async fn fresh_code(&self) -> String {
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let step = now.as_secs() / 30;
            let free = self.last_step.lock().unwrap().is_none_or(|last| last < step + 1);
            if free {
                return self.next_code();
            }
            let next_step = Duration::from_secs((step + 1) * 30).saturating_sub(now);
            tokio::time::sleep(next_step + Duration::from_millis(50)).await;
        }
    }
}

/// A signed-in client.
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

impl Session {
    pub async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = app.client.request(method, app.url(path)).bearer_auth(&self.access);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, Value) {
        self.call(app, Method::GET, path, None).await
    }
}

/// `POST /oauth/authorize` with a fresh PKCE pair; returns the verifier and the response.
pub async fn authorize(app: &TestApp, email: &str, password: &str) -> (String, StatusCode, Value) {
    authorize_with(app, &app.client, email, password).await
}

/// [`authorize`] through `client` (one bound to another source address, say).
pub async fn authorize_with(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (String, StatusCode, Value) {
    let (verifier, challenge) = pkce();
    let response = client
        .post(app.url("/oauth/authorize"))
        .json(&json!({
            "response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256", "state": "s1",
            "email": email, "password": password,
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (verifier, status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /oauth/token`, form-encoded.
pub async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app.client.post(app.url("/oauth/token")).form(form).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Exchanges a code for tokens.
pub async fn exchange(app: &TestApp, code: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("code", code),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The whole flow: password, TOTP when asked, code exchange.
pub async fn sign_in(app: &TestApp, email: &str, password: &str, totp: Option<&Authenticator>) -> Session {
    let (verifier, status, mut body) = authorize(app, email, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if body["status"] == "mfa_required" {
        let totp = totp.expect("the account has TOTP");
        let response = app
            .client
            .post(app.url("/oauth/authorize/mfa"))
            .json(&json!({ "mfa_token": body["mfa_token"], "totp_code": totp.next_code(), "state": "s1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        body = response.json().await.unwrap();
    }
    assert_eq!(body["status"], "authorized", "{body}");
    assert_eq!(body["state"], "s1");
    let (status, tokens) = exchange(app, body["code"].as_str().unwrap(), &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let mut session = Session {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        user_id: String::new(),
    };
    let (_, me) = session.get(app, "/api/v1/me").await;
    session.user_id = me["user_id"].as_str().unwrap().to_owned();
    session
}

/// Enrolls TOTP in `session` (which then counts as having proved it).
pub async fn enroll_totp(app: &TestApp, session: &Session) -> Authenticator {
    let (status, enrollment) = session.call(app, Method::POST, "/api/v1/me/totp", None).await;
    assert_eq!(status, StatusCode::OK, "{enrollment}");
    assert!(enrollment["provisioning_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let authenticator = Authenticator::from_base32(enrollment["secret"].as_str().unwrap());
    let body = json!({ "code": authenticator.next_code() });
    let (status, codes) = session.call(app, Method::POST, "/api/v1/me/totp/confirm", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);
    authenticator
}

/// A staff member or patient, signed in (staff with TOTP enrolled in this session).
pub struct Person {
    pub email: String,
    pub session: Session,
    pub totp: Option<Authenticator>,
}

/// The first practice owner, created on the command line, signed in with TOTP enrolled.
pub async fn owner(app: &TestApp) -> Person {
    let email = "owner@practice.example".to_owned();
    let (code, output) =
        app.cli(&["user", "create", "--role", "practice_owner", "--email", &email], &format!("{PASSWORD}\n"));
    assert_eq!(code, Some(0), "{output}");
    let session = sign_in(app, &email, PASSWORD, None).await;
    let totp = enroll_totp(app, &session).await;
    Person { email, session, totp: Some(totp) }
}

/// Invites an account through `by` and returns its invitation token.
pub async fn invite(app: &TestApp, by: &Person, role: &str, email: &str, patient: Option<&str>) -> String {
    let body = json!({ "role": role, "email": email, "patient_id": patient });
    let (status, invitation) = by.session.call(app, Method::POST, "/api/v1/users/invitations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    invitation["invitation_token"].as_str().unwrap().to_owned()
}

/// Accepts an invitation with the standard test password.
pub async fn accept(app: &TestApp, token: &str) -> StatusCode {
    let response = app
        .client
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({ "token": token, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    response.status()
}

/// A staff member invited by `owner`, signed in, with TOTP enrolled.
pub async fn staff(app: &TestApp, owner: &Person, role: &str, email: &str) -> Person {
    let token = invite(app, owner, role, email, None).await;
    assert_eq!(accept(app, &token).await, StatusCode::OK);
    let session = sign_in(app, email, PASSWORD, None).await;
    let totp = enroll_totp(app, &session).await;
    Person { email: email.to_owned(), session, totp: Some(totp) }
}

/// A patient record created by `by`; returns its id.
pub async fn patient_record(app: &TestApp, by: &Person, name: &str) -> String {
    let body = json!({ "legal_name": name, "date_of_birth": "1980-02-29", "email": format!("{}@mail.example", name.to_lowercase().replace(' ', ".")) });
    let (status, created) = by.session.call(app, Method::POST, "/api/v1/patients", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// A patient's account for `patient_id`, invited by `by`, signed in (no TOTP: offered).
pub async fn patient(app: &TestApp, by: &Person, patient_id: &str, email: &str) -> Person {
    let token = invite(app, by, "patient", email, Some(patient_id)).await;
    assert_eq!(accept(app, &token).await, StatusCode::OK);
    let session = sign_in(app, email, PASSWORD, None).await;
    Person { email: email.to_owned(), session, totp: None }
}
