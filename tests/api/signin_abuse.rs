//! Sign-in abuse: a stranger's wrong passwords lock the stranger (the account from their
//! address), not the owner signing in from elsewhere; credential stuffing from one address locks
//! that address; guessing spread over many addresses still meets the account's cap (NIST SP
//! 800-63B 5.2.2) except from an address the owner signed in from lately. Patterns are audited.
//! Each source address is a loopback address of its own (127.0.0.x). Both backends.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::StatusCode;

use crate::helpers::{Backend, Options, TestApp, client_from, spawn_app, spawn_app_with};
use crate::signin::{PASSWORD, authorize_with, owner};

const WRONG: &str = "wrong password 12345";

fn from(app: &TestApp, last: u8) -> reqwest::Client {
    client_from(&app.dev_cert(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

async fn status(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> StatusCode {
    authorize_with(app, client, email, password).await.1
}

fn audited(app: &TestApp, reason: &str) -> usize {
    app.audit_entries().iter().filter(|e| e["action"] == "login_failure" && e["reason"] == reason).count()
}

async fn a_strangers_failures_lock_the_stranger_not_the_owner_elsewhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = owner(&app).await;
    let stranger = from(&app, 2);
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(status(&app, &stranger, &owner.email, WRONG).await);
    }
    assert_eq!(answers[..6], [StatusCode::UNAUTHORIZED; 6], "five free failures, the sixth answered and locks");
    assert_eq!(answers[7], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        status(&app, &stranger, &owner.email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address is locked for this account, even with the right password"
    );

    // The owner, at their usual address and at a new one, signs in meanwhile.
    assert_eq!(status(&app, &app.client, &owner.email, PASSWORD).await, StatusCode::OK);
    assert_eq!(status(&app, &from(&app, 3), &owner.email, PASSWORD).await, StatusCode::OK);
}

async fn guessing_from_many_addresses_meets_the_accounts_cap_but_not_at_the_owners_address(backend: Backend) {
    let env = vec![("CONFIDANT_IDENTITY__ACCOUNT_CAP_FAILURES", "8".to_owned())];
    let app = spawn_app_with(backend, Options { env, ..Default::default() }).await;
    let owner = owner(&app).await; // signed in from 127.0.0.1: a known address from now on
    // Nine addresses, one wrong password each: past the cap of eight, the ninth locks the account.
    for last in 10..19 {
        assert_eq!(status(&app, &from(&app, last), &owner.email, WRONG).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(audited(&app, "account_guessing"), 1, "the cap's first lock is audited once");

    assert_eq!(
        status(&app, &from(&app, 30), &owner.email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "past the cap, a new address is refused even with the right password"
    );
    assert_eq!(
        status(&app, &app.client, &owner.email, PASSWORD).await,
        StatusCode::OK,
        "the owner's usual address is not held by the account's lock"
    );
    assert_eq!(
        status(&app, &from(&app, 30), &owner.email, PASSWORD).await,
        StatusCode::OK,
        "a success ends the run of consecutive failures"
    );
}

async fn credential_stuffing_from_one_address_locks_that_address_and_is_audited(backend: Backend) {
    let env = vec![("CONFIDANT_IDENTITY__ADDRESS_FREE_FAILURES", "6".to_owned())];
    let app = spawn_app_with(backend, Options { env, ..Default::default() }).await;
    let owner = owner(&app).await;
    let stuffer = from(&app, 5);
    for n in 0..7 {
        let email = format!("person{n}@elsewhere.example");
        assert_eq!(status(&app, &stuffer, &email, WRONG).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(audited(&app, "credential_stuffing"), 1);
    assert_eq!(status(&app, &stuffer, &owner.email, PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status(&app, &app.client, &owner.email, PASSWORD).await, StatusCode::OK);
}

crate::on_both_backends!(
    a_strangers_failures_lock_the_stranger_not_the_owner_elsewhere,
    guessing_from_many_addresses_meets_the_accounts_cap_but_not_at_the_owners_address,
    credential_stuffing_from_one_address_locks_that_address_and_is_audited,
);
