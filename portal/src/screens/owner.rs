//! The practice owner's screens: staff accounts and invitations (invite with a name and
//! credentials, rename, disable) with who supervises whom (`supervision.rs`), break-glass grants with their reasons (updated live when a
//! clinician breaks the glass), the audit trail's state with verification on demand, and what
//! a sign-in attack alert reports (shown in the owner's live alert list).

use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::supervision::SupervisionCard;
use super::widgets::{ErrorNote, Field, Select, at};
use crate::api::{
    self, AttackPattern, AuditStatus, AuditVerification, BreakGlassGrant, Failure, Invitation, PatientRecord,
    SignInAttack, StaffMember, UserRow,
};
use crate::live::live;
use crate::text;
use crate::time;

/// The roles an owner invites staff into.
const STAFF_ROLES: [&str; 4] = ["clinician", "front_desk", "billing", "practice_owner"];

#[derive(Serialize)]
struct StaffInvite {
    role: String,
    email: String,
    display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<String>,
}

#[derive(Serialize)]
struct Name {
    display_name: String,
    credentials: Option<String>,
}

/// Staff accounts and invitations.
#[component]
pub fn StaffScreen() -> impl IntoView {
    let users = RwSignal::new(None::<Vec<UserRow>>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<UserRow>>("/api/v1/users").await {
                Ok(list) => users.set(Some(list.into_iter().filter(|u| u.role != "patient").collect())),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    view! {
        <h1>{text::USERS}</h1>
        <ErrorNote failure=failure/>
        <section class="card" aria-labelledby="staff-title">
            <h2 id="staff-title">{text::STAFF}</h2>
            {move || match users.get() {
                None => view! { <p class="muted">{text::LOADING}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|u| view! { <StaffRow user=u reload=reload/> }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
        <SupervisionCard users=users reload=reload/>
        <InviteStaff reload=reload/>
    }
}

/// One member of staff: name, role, state; rename and disable.
#[component]
fn StaffRow(user: UserRow, reload: RwSignal<u32>) -> impl IntoView {
    let id = user.user_id;
    let renaming = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let name = RwSignal::new(user.display_name.clone().unwrap_or_default());
    let credentials = RwSignal::new(user.credentials.clone().unwrap_or_default());
    let failure = RwSignal::new(None::<Failure>);
    let myself = crate::session::portal().me.with_untracked(|m| m.as_ref().is_some_and(|m| m.user_id == id));
    // The server refuses to disable one's own account; the button is not offered.
    let active = (user.status == "active" || user.status == "invited") && !myself;
    let disable = move |_| {
        if !confirming.get_untracked() {
            confirming.set(true);
            return;
        }
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/v1/users/{id}/disable")).await {
                Ok(()) => reload.update(|r| *r += 1),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let credentials = Some(credentials.get_untracked()).filter(|c| !c.trim().is_empty());
        let body = Name { display_name: name.get_untracked(), credentials };
        leptos::task::spawn_local(async move {
            match api::call_empty("PUT", &format!("/api/v1/users/{id}/name"), &body).await {
                Ok(()) => {
                    renaming.set(false);
                    reload.update(|r| *r += 1);
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let name_id = format!("name-{id}");
    let credentials_id = format!("credentials-{id}");
    view! {
        <li class="row" data-user=id.to_string() data-status=user.status.clone()>
            <span class="who">{user.label()}</span>
            <span class="muted">{text::role(&user.role)}</span>
            <span class="muted">{text::account_status(&user.status)}</span>
            {(!user.totp_enabled && user.status == "active").then(|| view! { <span class="muted">{text::NO_TOTP_YET}</span> })}
            <button type="button" on:click=move |_| renaming.update(|r| *r = !*r)>{text::RENAME}</button>
            {active.then(|| view! {
                <button type="button" class=move || if confirming.get() { "danger" } else { "" } on:click=disable>
                    {move || if confirming.get() { text::CONFIRM_DISABLE } else { text::DISABLE }}
                </button>
            })}
            <Show when=move || renaming.get()>
                <form class="inline" on:submit=rename novalidate>
                    <Field id=name_id.clone() label=text::DISPLAY_NAME value=name error=at(failure, "display_name") hint=text::DISPLAY_NAME_HINT/>
                    <Field id=credentials_id.clone() label=text::CREDENTIALS value=credentials error=at(failure, "credentials") hint=text::CREDENTIALS_HINT/>
                    <button type="submit">{text::SAVE}</button>
                </form>
            </Show>
            <ErrorNote failure=failure fields=&["display_name", "credentials"]/>
        </li>
    }
}

/// Inviting a member of staff: role, email, name and credentials; the code is shown once.
#[component]
fn InviteStaff(reload: RwSignal<u32>) -> impl IntoView {
    let role = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let credentials = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let invitation = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        invitation.set(None);
        if role.get_untracked().is_empty() {
            failure.set(Some(Failure::on_field("role", text::CHOOSE_A_ROLE)));
            return;
        }
        if name.get_untracked().trim().is_empty() {
            failure.set(Some(Failure::on_field("display_name", text::NAME_REQUIRED)));
            return;
        }
        let body = StaffInvite {
            role: role.get_untracked(),
            email: email.get_untracked(),
            display_name: name.get_untracked(),
            credentials: Some(credentials.get_untracked()).filter(|c| !c.trim().is_empty()),
        };
        leptos::task::spawn_local(async move {
            match api::call::<_, Invitation>("POST", "/api/v1/users/invitations", &body).await {
                Ok(i) => {
                    failure.set(None);
                    invitation.set(Some(i.invitation_token));
                    for s in [email, name, credentials] {
                        s.set(String::new());
                    }
                    reload.update(|r| *r += 1);
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="invite-staff-title">
            <h2 id="invite-staff-title">{text::INVITE_STAFF}</h2>
            <Select id="staff-role" label=text::ROLE value=role error=at(failure, "role")
                options=Signal::derive(|| STAFF_ROLES.iter().map(|r| ((*r).to_owned(), text::role(r).to_owned())).collect())/>
            <Field id="staff-email" label=text::EMAIL value=email error=at(failure, "email") kind="email" autocomplete="off"/>
            <Field id="staff-name" label=text::DISPLAY_NAME value=name error=at(failure, "display_name") hint=text::DISPLAY_NAME_HINT/>
            <Field id="staff-credentials" label=text::CREDENTIALS value=credentials error=at(failure, "credentials") hint=text::CREDENTIALS_HINT/>
            <ErrorNote failure=failure fields=&["role", "email", "display_name", "credentials"]/>
            {move || invitation.get().map(|t| view! {
                <p class="notice" role="status">{text::STAFF_INVITATION_CREATED} " " <code class="invitation">{t}</code></p>
            })}
            <button type="submit" class="primary">{text::INVITE}</button>
        </form>
    }
}

/// Break-glass grants of the last 30 days with their reasons; reloaded when a break-glass
/// alert arrives.
#[component]
pub fn BreakGlassScreen() -> impl IntoView {
    let l = live();
    let grants = RwSignal::new(None::<Vec<BreakGlassGrant>>);
    let staff = RwSignal::new(Vec::<StaffMember>::new());
    let patients = RwSignal::new(Vec::<PatientRecord>::new());
    let failure = RwSignal::new(None::<Failure>);
    Effect::new(move |_| {
        l.alerts.track();
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                staff.set(list);
            }
            if let Ok(list) = api::get::<Vec<PatientRecord>>("/api/v1/patients").await {
                patients.set(list);
            }
            match api::get::<Vec<BreakGlassGrant>>("/api/v1/break-glass").await {
                Ok(list) => grants.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    let clinician =
        move |id: Uuid| staff.with(|s| s.iter().find(|m| m.user_id == id).map(StaffMember::label)).unwrap_or_default();
    let patient = move |id: Uuid| {
        patients
            .with(|p| p.iter().find(|r| r.id == Some(id)).map(PatientRecord::name))
            .unwrap_or_else(|| text::PATIENT.to_owned())
    };
    view! {
        <h1>{text::BREAK_GLASS}</h1>
        <p class="muted">{text::BREAK_GLASS_EXPLAINED}</p>
        <ErrorNote failure=failure/>
        <section class="card">
            {move || match grants.get() {
                None => view! { <p class="muted">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_BREAK_GLASS}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|g| {
                            let live_now = g.expires_at_ms as f64 > js_sys::Date::now();
                            view! {
                                <li class="row" data-grant=g.grant_id.to_string()>
                                    <span class="who">{clinician(g.clinician_id)}</span>
                                    <span>{patient(g.patient_id)}</span>
                                    <span class="muted">{time::date_time(g.created_at_ms)}</span>
                                    <span class=if live_now { "badge urgent" } else { "muted" }>
                                        {if live_now { text::GRANT_ACTIVE } else { text::GRANT_EXPIRED }}
                                    </span>
                                    <p class="reason">{g.reason.clone().unwrap_or_default()}</p>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}

/// The audit trail: each chain's newest signed checkpoint, and verification now.
#[component]
pub fn AuditScreen() -> impl IntoView {
    let status = RwSignal::new(None::<AuditStatus>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    let verifying = RwSignal::new(false);
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<AuditStatus>("/api/v1/audit/status").await {
                Ok(s) => status.set(Some(s)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    let verify = move |_| {
        verifying.set(true);
        leptos::task::spawn_local(async move {
            if let Err(f) =
                api::call::<_, AuditVerification>("POST", "/api/v1/audit/verify", &serde_json::json!({})).await
            {
                failure.set(Some(f));
            }
            verifying.set(false);
            reload.update(|r| *r += 1);
        });
    };
    view! {
        <h1>{text::AUDIT_STATUS}</h1>
        <ErrorNote failure=failure/>
        {move || status.get().map(|s| {
            let basis = s.last_verification.as_ref().map(|v| v.basis.clone()).unwrap_or_default();
            view! {
            <section class="card" aria-labelledby="verify-title">
                <h2 id="verify-title">{text::LAST_VERIFICATION}</h2>
                {match s.last_verification {
                    None => view! { <p data-verified="none">{text::NOT_VERIFIED_YET}</p> }.into_any(),
                    Some(v) if v.intact => view! {
                        <p class="notice" data-verified="intact">
                            {format!("{} {} · {} {} · {} {}", text::INTACT, time::date_time(v.at_ms), v.entries, text::ENTRIES, v.chains, text::CHAINS)}
                        </p>
                    }.into_any(),
                    Some(v) => view! {
                        <p class="error-note" data-verified="broken" role="alert">
                            {format!("{} {}: {}", text::BROKEN, time::date_time(v.at_ms), v.broken.unwrap_or_default())}
                        </p>
                    }.into_any(),
                }}
                <ul class="muted" data-verification-basis="">
                    {basis.into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
                </ul>
                <button type="button" class="primary" on:click=verify disabled=move || verifying.get()>
                    {move || if verifying.get() { text::VERIFYING } else { text::VERIFY_NOW }}
                </button>
            </section>
            <section class="card" aria-labelledby="heads-title">
                <h2 id="heads-title">{text::CHAIN_HEADS}</h2>
                <p class="muted">{format!("{} {}", s.checkpoints, text::CHECKPOINTS_SIGNED)}</p>
                <table>
                    <thead><tr><th scope="col">{text::CHAIN}</th><th scope="col">{text::SEQ}</th><th scope="col">{text::SIGNED_AT}</th><th scope="col">{text::HASH}</th></tr></thead>
                    <tbody>
                        {s.heads.into_iter().map(|h| view! {
                            <tr>
                                <td><code>{h.node_id}</code></td>
                                <td>{h.seq}</td>
                                <td>{time::date_time(h.at_ms)}</td>
                                <td><code class="hash">{h.hash}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }})}
    }
}

/// What a sign-in attack alert reports (its row shows when): the pattern in plain words, where
/// it came from (the address, or the account by the name the owner knows it by), how many
/// failed sign-ins set it off, what was locked, and until when that source raises no other
/// alert.
#[component]
pub fn SignInAttackDetails(attack: SignInAttack) -> impl IntoView {
    let account = RwSignal::new(None::<String>);
    if let Some(id) = attack.account_id {
        leptos::task::spawn_local(async move {
            let found = api::get::<Vec<UserRow>>("/api/v1/users").await.ok().and_then(|users| {
                users
                    .into_iter()
                    .find(|u| u.user_id == id)
                    .map(|u| if u.role == "patient" { text::ATTACK_PATIENT_ACCOUNT.to_owned() } else { u.label() })
            });
            account.set(Some(found.unwrap_or_else(|| id.to_string())));
        });
    }
    let (what, done, pattern) = match attack.pattern {
        AttackPattern::CredentialStuffing => (text::ATTACK_STUFFING, text::ATTACK_STUFFING_DONE, "credential_stuffing"),
        AttackPattern::AccountGuessing => (text::ATTACK_GUESSING, text::ATTACK_GUESSING_DONE, "account_guessing"),
    };
    let guessing = attack.pattern == AttackPattern::AccountGuessing;
    let named = attack.account_id.is_some();
    view! {
        <div class="attack" data-pattern=pattern>
            <p>{what}</p>
            <dl class="facts">
                {attack.source_ip.map(|ip| view! {
                    <dt>{text::ATTACK_FROM}</dt>
                    <dd><code data-source-ip=ip.to_string()>{ip.to_string()}</code></dd>
                })}
                {guessing.then(|| view! {
                    <dt>{text::ATTACK_ACCOUNT}</dt>
                    <dd>{move || if named { account.get().unwrap_or_default() } else { text::ATTACK_NO_ACCOUNT.to_owned() }}</dd>
                })}
                <dt>{text::ATTACK_FAILURES}</dt>
                <dd>
                    <span data-failures=attack.failures.to_string()>{attack.failures.to_string()}</span>
                    {format!(" {}", text::attack_allowed(attack.threshold))}
                </dd>
                <dt>{text::ATTACK_WINDOW}</dt>
                <dd>{time::date_time(attack.window_ends_at_ms)}</dd>
            </dl>
            <p class="muted small">{done}</p>
        </div>
    }
}
