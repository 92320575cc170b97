//! Sign-in (email and password), its second step (a TOTP code or a recovery code), and
//! accepting an invitation. The server runs the OAuth flow behind these calls and answers with
//! an HttpOnly session cookie; no token ever reaches this code.

use leptos::prelude::*;
use serde::Serialize;

use super::widgets::{ErrorNote, Field, at};
use crate::api::{self, Failure, SignIn as Answer};
use crate::session::{self, Stage};
use crate::text;

#[derive(Serialize)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct Factor {
    #[serde(skip_serializing_if = "Option::is_none")]
    totp_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_code: Option<String>,
}

#[derive(Serialize)]
struct Acceptance {
    token: String,
    password: String,
}

fn answered(answer: Answer) {
    match answer {
        Answer::SignedIn { session } => session::signed_in(session),
        Answer::MfaRequired => session::portal().stage.set(Stage::SecondFactor),
    }
}

/// The sign-in form.
#[component]
pub fn SignIn(notice: Option<&'static str>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let shared = RwSignal::new(false);
    let failure = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        crate::messenger::keep_device(!shared.get_untracked());
        let missing = |field: &str| Failure::on_field(field, text::ANSWER_REQUIRED);
        if email.get_untracked().trim().is_empty() {
            failure.set(Some(missing("email")));
            return;
        }
        if password.get_untracked().is_empty() {
            failure.set(Some(missing("password")));
            return;
        }
        busy.set(true);
        let body = Credentials { email: email.get_untracked().trim().to_owned(), password: password.get_untracked() };
        leptos::task::spawn_local(async move {
            let result = api::call::<_, Answer>("POST", "/api/v1/browser/sign-in", &body).await;
            busy.set(false);
            match result {
                Ok(answer) => {
                    password.set(String::new());
                    answered(answer);
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let p = session::portal();
    view! {
        <section class="card narrow" aria-labelledby="sign-in-title">
            <h1 id="sign-in-title">{text::SIGN_IN}</h1>
            <p>{text::SIGN_IN_INTRO}</p>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <form on:submit=submit novalidate>
                <Field id="email" label=text::EMAIL value=email error=at(failure, "email") kind="email" autocomplete="username"/>
                <Field id="password" label=text::PASSWORD value=password error=at(failure, "password") kind="password" autocomplete="current-password"/>
                <div class="field check">
                    <input id="shared-device" type="checkbox" aria-describedby="shared-device-note"
                        prop:checked=move || shared.get() on:change=move |ev| shared.set(event_target_checked(&ev))/>
                    <label for="shared-device">{text::SHARED_DEVICE}</label>
                    <p class="muted small" id="shared-device-note">{text::SHARED_DEVICE_NOTE}</p>
                </div>
                <ErrorNote failure=failure fields=&["email", "password"]/>
                <button type="submit" class="primary" disabled=move || busy.get()>{text::SIGN_IN}</button>
            </form>
            <button type="button" class="link" on:click=move |_| p.stage.set(Stage::Invitation)>{text::HAVE_INVITATION}</button>
            <p class="muted small">{text::CONNECTION_NOTE}</p>
        </section>
    }
}

/// The second step: a TOTP code, or a recovery code.
#[component]
pub fn SecondFactor() -> impl IntoView {
    let code = RwSignal::new(String::new());
    let recovery = RwSignal::new(false);
    let failure = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let value: String = code.get_untracked().chars().filter(|c| !c.is_whitespace()).collect();
        let body = if recovery.get_untracked() {
            Factor { totp_code: None, recovery_code: Some(value) }
        } else {
            Factor { totp_code: Some(value), recovery_code: None }
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = api::call::<_, Answer>("POST", "/api/v1/browser/sign-in/mfa", &body).await;
            busy.set(false);
            match result {
                Ok(answer) => answered(answer),
                Err(mut f) => {
                    if f.code == "invalid_mfa" {
                        f.field = Some("code".into());
                    }
                    code.set(String::new());
                    failure.set(Some(f));
                }
            }
        });
    };
    let p = session::portal();
    view! {
        <section class="card narrow" aria-labelledby="mfa-title">
            <h1 id="mfa-title">{text::TOTP_STEP_TITLE}</h1>
            <p>{text::TOTP_STEP_INTRO}</p>
            <form on:submit=submit novalidate>
                {move || if recovery.get() {
                    view! { <Field id="code" label=text::RECOVERY_CODE value=code error=at(failure, "code") autocomplete="off"/> }.into_any()
                } else {
                    view! { <Field id="code" label=text::TOTP_CODE value=code error=at(failure, "code") autocomplete="one-time-code" inputmode="numeric"/> }.into_any()
                }}
                <ErrorNote failure=failure fields=&["code"]/>
                <button type="submit" class="primary" disabled=move || busy.get()>{text::VERIFY}</button>
            </form>
            <button type="button" class="link" on:click=move |_| { failure.set(None); code.set(String::new()); recovery.update(|r| *r = !*r) }>
                {move || if recovery.get() { text::USE_TOTP_CODE } else { text::USE_RECOVERY_CODE }}
            </button>
            <button type="button" class="link" on:click=move |_| p.stage.set(Stage::SignIn { notice: None })>{text::BACK_TO_SIGN_IN}</button>
        </section>
    }
}

/// Accepting an invitation: the code the practice gave, and a password the server checks
/// against its policy (its reasons are shown at the field).
#[component]
pub fn Invitation() -> impl IntoView {
    let token = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let p = session::portal();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let body = Acceptance { token: token.get_untracked().trim().to_owned(), password: password.get_untracked() };
        leptos::task::spawn_local(async move {
            let result = api::call_empty("POST", "/api/v1/invitations/accept", &body).await;
            busy.set(false);
            match result {
                Ok(()) => p.stage.set(Stage::SignIn { notice: Some(text::INVITATION_ACCEPTED) }),
                Err(mut f) => {
                    if f.code.starts_with("password_") {
                        f.field = Some("new-password".into());
                    } else if f.code == "invalid_grant" || f.field.as_deref() == Some("token") {
                        f.field = Some("token".into());
                    }
                    failure.set(Some(f));
                }
            }
        });
    };
    view! {
        <section class="card narrow" aria-labelledby="invitation-title">
            <h1 id="invitation-title">{text::INVITATION_TITLE}</h1>
            <p>{text::INVITATION_INTRO}</p>
            <form on:submit=submit novalidate>
                <Field id="token" label=text::INVITATION_CODE value=token error=at(failure, "token")/>
                <Field id="new-password" label=text::NEW_PASSWORD value=password error=at(failure, "new-password") kind="password" autocomplete="new-password" hint=text::PASSWORD_HINT/>
                <ErrorNote failure=failure fields=&["token", "new-password"]/>
                <button type="submit" class="primary" disabled=move || busy.get()>{text::ACCEPT_INVITATION}</button>
            </form>
            <button type="button" class="link" on:click=move |_| p.stage.set(Stage::SignIn { notice: None })>{text::BACK_TO_SIGN_IN}</button>
        </section>
    }
}
