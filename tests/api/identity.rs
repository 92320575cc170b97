//! Sign-in, tokens, second factors, brute-force limits and sign-out, against the real server on
//! both backends.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::signin::{self, CLIENT, PASSWORD, Session, accept, authorize, exchange, invite, owner, sign_in, token};

fn actions(app: &TestApp) -> Vec<(String, String, String)> {
    app.audit_entries()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("action"), text("outcome"), text("reason"))
        })
        .collect()
}

fn has(entries: &[(String, String, String)], action: &str, reason: &str) -> bool {
    entries.iter().any(|(a, _, r)| a == action && r == reason)
}

async fn sign_in_with_pkce_and_totp_is_audited_and_wrong_verifiers_fail(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;

    // A wrong verifier fails, and burns the code: the right one cannot use it afterwards.
    let (verifier, status, body) = authorize(&app, &owner.email, PASSWORD).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("mfa_required")), "{body}");
    let mfa = |code: String| json!({ "mfa_token": body["mfa_token"], "totp_code": code });
    let wrong = app.client.post(app.url("/oauth/authorize/mfa")).json(&mfa("000000".into())).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let totp = owner.totp.as_ref().unwrap();
    let right = app.client.post(app.url("/oauth/authorize/mfa")).json(&mfa(totp.next_code())).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    let code = right.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned();
    let (other_verifier, _) = signin::pkce();
    let (status, error) = exchange(&app, &code, &other_verifier).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{error}");
    let (status, _) = exchange(&app, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code that failed its verifier is gone");

    let entries = actions(&app);
    assert!(has(&entries, "login_success", "totp"), "{entries:?}");
    assert!(has(&entries, "mfa_failure", "wrong_totp"), "{entries:?}");
    assert!(has(&entries, "login_success", "password"), "the first sign-in, before enrollment: {entries:?}");
    assert!(has(&entries, "permission_change", "totp_enabled"), "{entries:?}");
    assert!(has(&entries, "create", "created_by_command_line"), "{entries:?}");
}

async fn a_reused_refresh_token_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let first = sign_in(&app, &owner.email, PASSWORD, owner.totp.as_ref()).await;

    let refresh = |t: &str| {
        let t = t.to_owned();
        let app = &app;
        async move { token(app, &[("grant_type", "refresh_token"), ("client_id", CLIENT), ("refresh_token", &t)]).await }
    };
    let (status, rotated) = refresh(&first.refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["refresh_token"], first.refresh.as_str(), "the refresh token rotates");
    let second = Session {
        access: rotated["access_token"].as_str().unwrap().into(),
        refresh: rotated["refresh_token"].as_str().unwrap().into(),
        user_id: first.user_id.clone(),
    };
    assert_eq!(second.get(&app, "/api/v1/me").await.0, StatusCode::OK);

    // The old one again: someone else has it. The whole family dies.
    let (status, error) = refresh(&first.refresh).await;
    assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_eq!(second.get(&app, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "the new access token is dead");
    assert_eq!(refresh(&second.refresh).await.0, StatusCode::BAD_REQUEST, "so is the new refresh token");
    assert!(has(&actions(&app), "logout", "refresh_token_reuse"));
}

async fn sign_out_and_sign_out_everywhere_revoke_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let laptop = sign_in(&app, &owner.email, PASSWORD, owner.totp.as_ref()).await;
    let phone = sign_in(&app, &owner.email, PASSWORD, owner.totp.as_ref()).await;

    let (status, _) = laptop.call(&app, Method::POST, "/api/v1/sign-out", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = laptop.get(&app, "/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    assert_eq!(phone.get(&app, "/api/v1/me").await.0, StatusCode::OK, "other sessions live on");

    let (status, ended) = phone.call(&app, Method::POST, "/api/v1/sign-out-everywhere", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["sessions_ended"], 2, "the phone and the owner's first session");
    assert_eq!(phone.get(&app, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(owner.session.get(&app, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert!(has(&actions(&app), "logout", "sign_out_everywhere"));
}

async fn repeated_failures_are_throttled_and_unknown_accounts_look_like_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;

    let timed = |email: &str, password: &str| {
        let (email, password) = (email.to_owned(), password.to_owned());
        let app = &app;
        async move {
            let started = Instant::now();
            let (_, status, body) = authorize(app, &email, &password).await;
            (status, body, started.elapsed())
        }
    };
    let (status, unknown, unknown_took) = timed("nobody@practice.example", "wrong password 12345").await;
    let (status2, wrong, wrong_took) = timed(&owner.email, "wrong password 12345").await;
    assert_eq!((status, status2), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(unknown["code"], wrong["code"]);
    assert_eq!(unknown["error"], wrong["error"], "the same answer: {unknown} / {wrong}");
    assert!(
        unknown_took * 3 > wrong_took,
        "an unknown account still costs a password hash ({unknown_took:?} vs {wrong_took:?})"
    );

    // Four more wrong passwords use up the free failures; the sixth locks; then 429.
    for _ in 0..4 {
        assert_eq!(timed(&owner.email, "wrong password 12345").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = timed(&owner.email, "wrong password 12345").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the sixth failure is answered, and locks");
    let (_, status, body) = authorize(&app, &owner.email, PASSWORD).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")), "{body}");
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .json(&json!({ "response_type": "code", "client_id": CLIENT, "redirect_uri": signin::REDIRECT,
            "code_challenge": signin::pkce().1, "code_challenge_method": "S256", "email": owner.email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");

    let entries = actions(&app);
    assert!(has(&entries, "login_failure", "unknown_account"));
    assert!(has(&entries, "login_failure", "wrong_password"));
    assert!(has(&entries, "login_failure", "throttled"));
}

async fn staff_reach_no_phi_until_they_prove_totp(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let token = invite(&app, &owner, "front_desk", "desk@practice.example", None).await;
    assert_eq!(accept(&app, &token).await, StatusCode::OK);
    let desk = sign_in(&app, "desk@practice.example", PASSWORD, None).await;

    let (status, body) = desk.get(&app, "/api/v1/patients").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("mfa_required")), "{body}");
    let (status, me) = desk.get(&app, "/api/v1/me").await;
    assert_eq!((status, me["mfa_required"].as_bool(), me["mfa"].as_bool()), (StatusCode::OK, Some(true), Some(false)));

    let totp = signin::enroll_totp(&app, &desk).await;
    assert_eq!(desk.get(&app, "/api/v1/patients").await.0, StatusCode::OK, "enrolling proved it in this session");
    let again = sign_in(&app, "desk@practice.example", PASSWORD, Some(&totp)).await;
    assert_eq!(again.get(&app, "/api/v1/patients").await.0, StatusCode::OK);
    assert!(has(&actions(&app), "read", "mfa_required"), "the refusal is audited");
}

async fn invitations_work_once_and_weak_passwords_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let token = invite(&app, &owner, "billing", "billing@practice.example", None).await;
    let accept_with = |password: &str| {
        let body = json!({ "token": token, "password": password });
        let app = &app;
        async move {
            let r = app.client.post(app.url("/api/v1/invitations/accept")).json(&body).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = accept_with("short").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("password_too_short")));
    let (status, body) = accept_with("password1234!").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("password_too_common")));
    assert_eq!(accept_with(PASSWORD).await.0, StatusCode::OK);
    assert_eq!(accept_with(PASSWORD).await.0, StatusCode::NOT_FOUND, "an invitation works once");

    // Invitations from the command line print the token for out-of-band delivery.
    let (code, output) = app.cli(&["user", "invite", "--role", "clinician", "--email", "dr.who@practice.example"], "");
    assert_eq!(code, Some(0), "{output}");
    let printed = output.lines().find_map(|l| l.split("works once): ").nth(1)).unwrap().trim().to_owned();
    assert_eq!(accept(&app, &printed).await, StatusCode::OK);
}

async fn a_disabled_account_loses_its_sessions_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let clinician = signin::staff(&app, &owner, "clinician", "dr.grey@practice.example").await;
    assert_eq!(clinician.session.get(&app, "/api/v1/me").await.0, StatusCode::OK);

    let path = format!("/api/v1/users/{}/disable", clinician.session.user_id);
    let (status, _) = owner.session.call(&app, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(clinician.session.get(&app, "/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let (_, status, body) = authorize(&app, &clinician.email, PASSWORD).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    let entries = actions(&app);
    assert!(has(&entries, "permission_change", "account_disabled"));
    assert!(has(&entries, "login_failure", "account_disabled"));
}

async fn the_openapi_document_describes_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut served: Vec<String> = crate::access::ENDPOINTS.iter().map(|e| format!("{} {}", e.0, e.1)).collect();
    served.extend(["GET /api/v1/openapi.json".to_owned()]);
    served.sort();
    served.dedup();
    assert_eq!(documented, served, "the document and the endpoint table differ");

    // Every documented route is served (an unknown one would be 404 before any auth check).
    for route in &served {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{patient_id}", &uuid::Uuid::new_v4().to_string());
        let path = path.replace("{clinician_id}", &uuid::Uuid::new_v4().to_string());
        let path = path.replace("{user_id}", &uuid::Uuid::new_v4().to_string());
        let path = path.replace("{appointment_id}", &uuid::Uuid::new_v4().to_string());
        let path = path.replace("{assignment_id}", &uuid::Uuid::new_v4().to_string());
        let response = app.client.request(method.parse().unwrap(), app.url(&path)).send().await.unwrap();
        assert_ne!(response.status(), StatusCode::NOT_FOUND, "{route} is documented but not served");
        assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{route}");
    }
}

crate::on_both_backends!(
    sign_in_with_pkce_and_totp_is_audited_and_wrong_verifiers_fail,
    a_reused_refresh_token_revokes_the_whole_family,
    sign_out_and_sign_out_everywhere_revoke_at_once,
    repeated_failures_are_throttled_and_unknown_accounts_look_like_wrong_passwords,
    staff_reach_no_phi_until_they_prove_totp,
    invitations_work_once_and_weak_passwords_are_refused,
    a_disabled_account_loses_its_sessions_at_once,
    the_openapi_document_describes_every_route,
);
