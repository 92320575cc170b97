//! TOTP enrollment, required before a staff account reaches anything: the key as a QR code
//! (drawn here as SVG squares: no image service, no inline script) and as text, the first code,
//! then the recovery codes, shown once.

use leptos::prelude::*;
use qrcode::{Color, QrCode};
use serde::{Deserialize, Serialize};

use super::widgets::{ErrorNote, Field, at};
use crate::api::{self, Failure, Me};
use crate::session;
use crate::text;

#[derive(Deserialize, Clone)]
struct Started {
    secret: String,
    provisioning_uri: String,
}

#[derive(Serialize)]
struct Confirm {
    code: String,
}

#[derive(Deserialize)]
struct Confirmed {
    recovery_codes: Vec<String>,
}

/// The enrollment screen.
#[component]
pub fn Enroll() -> impl IntoView {
    let started = RwSignal::new(None::<Started>);
    let codes = RwSignal::new(None::<Vec<String>>);
    let code = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    leptos::task::spawn_local(async move {
        match api::call::<_, Started>("POST", "/api/v1/me/totp", &serde_json::json!({})).await {
            Ok(s) => started.set(Some(s)),
            Err(f) => failure.set(Some(f)),
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = Confirm { code: code.get_untracked().trim().to_owned() };
        leptos::task::spawn_local(async move {
            match api::call::<_, Confirmed>("POST", "/api/v1/me/totp/confirm", &body).await {
                Ok(c) => codes.set(Some(c.recovery_codes)),
                Err(mut f) => {
                    if matches!(f.code.as_str(), "invalid_mfa" | "invalid_field") {
                        f.field = Some("totp".into());
                    }
                    failure.set(Some(f));
                }
            }
        });
    };
    let done = move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(me) = api::get::<Me>("/api/v1/browser/session").await {
                session::signed_in(me);
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="enroll-title">
            {move || match codes.get() {
                Some(list) => view! {
                    <h1 id="enroll-title">{text::RECOVERY_TITLE}</h1>
                    <p>{text::RECOVERY_INTRO}</p>
                    <ul class="codes">{list.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
                    <button type="button" class="primary" on:click=done>{text::RECOVERY_SAVED}</button>
                }.into_any(),
                None => view! {
                    <h1 id="enroll-title">{text::ENROLL_TITLE}</h1>
                    <p>{text::ENROLL_INTRO}</p>
                    {move || started.get().map(|s| view! {
                        <QrImage data=s.provisioning_uri.clone()/>
                        <p>{text::ENROLL_KEY} ": " <code class="secret" data-secret=s.secret.clone()>{s.secret.clone()}</code></p>
                    })}
                    <form on:submit=submit novalidate>
                        <Field id="totp" label=text::TOTP_CODE value=code error=at(failure, "totp") autocomplete="one-time-code" inputmode="numeric"/>
                        <ErrorNote failure=failure fields=&["totp"]/>
                        <button type="submit" class="primary">{text::ENROLL_CONFIRM}</button>
                    </form>
                }.into_any(),
            }}
        </section>
    }
}

/// A QR code as an SVG of dark squares.
#[component]
fn QrImage(data: String) -> impl IntoView {
    let Ok(code) = QrCode::new(data.as_bytes()) else { return ().into_any() };
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 8;
    let squares = colors
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Color::Dark)
        .map(|(i, _)| {
            let (x, y) = (i % width + 4, i / width + 4);
            view! { <rect x=x.to_string() y=y.to_string() width="1" height="1"/> }
        })
        .collect_view();
    view! {
        <svg class="qr" shape-rendering="crispEdges" role="img" aria-label=text::ENROLL_QR_LABEL viewBox=format!("0 0 {size} {size}") xmlns="http://www.w3.org/2000/svg">
            <rect class="qr-bg" width=size.to_string() height=size.to_string()/>
            {squares}
        </svg>
    }
    .into_any()
}
