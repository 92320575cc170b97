//! PHI and secrets never reach a log line or a panic message through `{:?}`: every type that can
//! hold a patient's data shows none of it in `Debug` (plain or pretty), none has a `Display`,
//! and keys and tokens have no `Debug` at all. Each value is built with sentinel contents.

use std::fmt::Debug;
use std::sync::Arc;

use confidant::access::BreakGlassGrant;
use confidant::crypto::keyring::StoredKey;
use confidant::crypto::{KeyBytes, KeyState, Purpose};
use confidant::identity::{Email, NewAccount};
use confidant::intake::templates::{self, FormKind, Score};
use confidant::intake::{Assignment, OpenedForm, SubmittedForm};
use confidant::notes::{Addendum, Measure, NoteContent, NoteContext};
use confidant::patients::{EmergencyContact, Patient, PatientRecord};
use confidant::phi::PhiText;
use confidant::reminders::Preferences;
use confidant::reminders::content::Details;
use confidant::reminders::mailer::Deliver;
use confidant::reminders::pgp_mime::PgpKey;
use confidant_actors::audit::Role;
use confidant_actors::hub::{BrokerMessage, FromBroker, Push, Topic};
use confidant_actors::ids::{PatientId, UserId};
use confidant_actors::session::{CatchUp, Inbound, Outbound};
use confidant_protocol::{
    AlertKind, AlertState, AlertView, Answer, AttackPattern, ClientFrame, FieldValue, FollowUpNote, IntakeAnswers,
    NoteFields, ScreeningScore, ServerFrame, Severity, SignInAttack, VERSION,
};
use uuid::Uuid;

use crate::smtp::Gpg;

/// A number no id or time below contains: an answer's index, a screening's total.
const NUMBER: u32 = 987_654_321;
/// Times (UTC ms) of a reminder's appointment.
const STARTS_AT_MS: i64 = 1_876_543_210_000;

/// Formats `value` with `{:?}` and `{:#?}` and asserts neither shows any of `hidden`.
fn assert_hidden(what: &str, value: &dyn Debug, hidden: &[&str]) {
    for shown in [format!("{value:?}"), format!("{value:#?}")] {
        for secret in hidden {
            assert!(!shown.contains(secret), "{what} shows {secret:?} in {shown}");
        }
    }
}

/// Text sentinels, one per field, so a failure names the field that leaked.
fn sentinel(field: &str) -> String {
    format!("SENTINEL-{field}-QXJ")
}

fn answers() -> IntakeAnswers {
    [
        ("goals", Answer::Text(sentinel("answer-text"))),
        ("item9", Answer::Choice(u64::from(NUMBER))),
        ("item1", Answer::Other(serde_json::json!({ "note": sentinel("answer-other") }))),
        ("item2", Answer::Blank),
    ]
    .into_iter()
    .collect()
}

/// What every intake value must hide: its answers, its total and its severity band.
fn intake_secrets() -> Vec<String> {
    vec![
        sentinel("answer-text"),
        sentinel("answer-other"),
        NUMBER.to_string(),
        "ModeratelySevere".into(),
        "moderately_severe".into(),
        "urgent".into(),
    ]
}

fn record() -> PatientRecord {
    PatientRecord {
        legal_name: PhiText::new(sentinel("legal-name")),
        preferred_name: Some(PhiText::new(sentinel("preferred-name"))),
        date_of_birth: PhiText::new("1912-06-23"),
        email: Some(PhiText::new(sentinel("record-email"))),
        phone: Some(PhiText::new(sentinel("phone"))),
        address: Some(PhiText::new(sentinel("address"))),
        emergency_contact: Some(EmergencyContact {
            name: PhiText::new(sentinel("contact-name")),
            relationship: Some(PhiText::new(sentinel("relationship"))),
            phone: PhiText::new(sentinel("contact-phone")),
        }),
    }
}

fn record_secrets() -> Vec<String> {
    let fields = ["legal-name", "preferred-name", "record-email", "phone", "address", "contact-name", "relationship"];
    let mut hidden: Vec<String> = fields.into_iter().chain(["contact-phone"]).map(sentinel).collect();
    hidden.push("1912-06-23".into());
    hidden
}

fn assignment() -> Assignment {
    Assignment {
        id: Uuid::from_u128(0xaaaa),
        patient_id: PatientId::from_uuid(Uuid::from_u128(0xbbbb)),
        clinician_id: UserId::from_uuid(Uuid::from_u128(0xcccc)),
        form: FormKind::Phq9,
        submitted: true,
        assigned_at_ms: 0,
        submitted_at_ms: Some(1),
    }
}

#[test]
fn phi_never_prints_in_debug_output() {
    let intake = intake_secrets();
    let intake: Vec<&str> = intake.iter().map(String::as_str).collect();
    let score = || Score { total: NUMBER, severity: Severity::ModeratelySevere, urgent: true };

    // Intake answers, results and the frames that carry them.
    assert_hidden("IntakeAnswers", &answers(), &intake);
    for kind in AlertKind::ALL {
        let alert = ServerFrame::Alert {
            v: VERSION,
            alert_id: Uuid::from_u128(8),
            kind,
            urgent: kind.is_urgent(),
            patient_id: Some(Uuid::from_u128(9)),
            assignment_id: None,
            clinician_id: None,
            reminder_id: None,
            sign_in_attack: None,
            escalation_step: 0,
            at_ms: 0,
        };
        let names = ["Phq9", "phq9", "item9", "Gad7", "Severe", "BreakGlass", "Submitted", "Reminder"];
        assert_hidden("ServerFrame::Alert", &alert, &names);
    }
    // A sign-in attack alert names an address (an identifier): never in `Debug`.
    let address = std::net::IpAddr::from([203, 0, 113, 77]);
    let attack = SignInAttack {
        pattern: AttackPattern::CredentialStuffing,
        source_ip: Some(address),
        account_id: None,
        failures: 21,
        threshold: 20,
        window_starts_at_ms: 0,
        window_ends_at_ms: 3_600_000,
    };
    assert_hidden("SignInAttack", &attack, &["203.0.113.77", "113"]);
    let noticed = confidant::identity::attacks::SignInAttack {
        pattern: confidant::identity::attacks::Pattern::CredentialStuffing,
        source_ip: Some(address),
        account: None,
        failures: 21,
        threshold: 20,
        source_key: vec![0xab; 32],
        at_ms: 0,
    };
    assert_hidden("identity::attacks::SignInAttack", &noticed, &["203.0.113.77", "113", "abab"]);
    let note = FollowUpNote::new(&sentinel("follow-up")).unwrap();
    assert_hidden("FollowUpNote", &note, &[note.expose()]);
    let ack = ClientFrame::alert_ack("a1".into(), Uuid::from_u128(8), Some(note.clone()));
    assert_hidden("ClientFrame::AlertAck", &ack, &[note.expose()]);
    let view = AlertView {
        alert_id: Uuid::from_u128(8),
        kind: AlertKind::Phq9Item9,
        urgent: true,
        patient_id: Some(Uuid::from_u128(9)),
        assignment_id: None,
        clinician_id: None,
        reminder_id: None,
        sign_in_attack: Some(attack.clone()),
        raised_at_ms: 0,
        state: AlertState::Resolved,
        escalation_step: 1,
        acknowledged_by: None,
        acknowledged_at_ms: None,
        follow_up: Some(note.clone()),
        followed_up_by: None,
        followed_up_at_ms: None,
    };
    assert_hidden("AlertView", &view, &[note.expose(), "Phq9", "phq9", "203.0.113.77"]);
    for answer in [Answer::Text(sentinel("answer-text")), Answer::Choice(u64::from(NUMBER))] {
        assert_hidden("Answer", &answer, &intake);
    }
    assert_hidden("Answer::Other", &Answer::Other(serde_json::json!([sentinel("answer-other")])), &intake);
    assert_hidden("ScreeningScore", &ScreeningScore(NUMBER), &intake);
    assert_hidden("Severity", &Severity::ModeratelySevere, &intake);
    assert_hidden("Score", &score(), &intake);
    let assignment_id = Uuid::from_u128(0xaaaa);
    let draft = ClientFrame::IntakeDraft { v: VERSION, id: "d1".into(), assignment_id, answers: answers() };
    let submit = ClientFrame::IntakeSubmit { v: VERSION, id: "s1".into(), assignment_id, answers: answers() };
    let form = ServerFrame::IntakeForm {
        v: VERSION,
        id: "o1".into(),
        assignment_id,
        form: templates::template(FormKind::Phq9).definition(),
        answers: answers(),
    };
    let submitted = ServerFrame::IntakeSubmitted {
        v: VERSION,
        assignment_id,
        patient_id: Uuid::from_u128(0xbbbb),
        form: "phq9".into(),
        score: Some(ScreeningScore(NUMBER)),
        severity: Some(Severity::ModeratelySevere),
        submitted_at_ms: 1,
    };
    assert_hidden("ClientFrame::IntakeDraft", &draft, &intake);
    assert_hidden("ClientFrame::IntakeSubmit", &submit, &intake);
    assert_hidden("ServerFrame::IntakeForm", &form, &intake);
    assert_hidden("ServerFrame::IntakeSubmitted", &submitted, &intake);
    let opened =
        OpenedForm { assignment: assignment(), template: templates::template(FormKind::Phq9), draft: answers() };
    assert_hidden("OpenedForm", &opened, &intake);
    assert_hidden(
        "SubmittedForm",
        &SubmittedForm { assignment: assignment(), answers: answers(), score: Some(score()) },
        &intake,
    );

    // The same frames as text, where the actors carry them.
    let text: Arc<str> = form.to_text().into();
    assert!(text.contains(&sentinel("answer-text")), "the sentinel is in the text, so the checks below mean something");
    let topic = Topic::Alerts(UserId::from_uuid(Uuid::from_u128(0xcccc)));
    let published = || BrokerMessage::Publish { topic, event_id: None, patient: None, text: text.clone() };
    assert_hidden("BrokerMessage", &published(), &intake);
    assert_hidden("FromBroker", &FromBroker(published()), &intake);
    assert_hidden("Push", &Push { topic, event_id: Some(7), patient: None, text: text.clone() }, &intake);
    assert_hidden("Inbound", &Inbound::Text(text.to_string()), &intake);
    assert_hidden("Outbound", &Outbound::Text(text.clone()), &intake);
    assert_hidden("CatchUp", &CatchUp { frames: vec![form.clone(), submitted.clone()], last_event_id: 0 }, &intake);

    // The patient record, names, emails, break-glass reasons.
    let record_hidden = record_secrets();
    let record_hidden: Vec<&str> = record_hidden.iter().map(String::as_str).collect();
    assert_hidden("PhiText", &PhiText::new(sentinel("legal-name")), &record_hidden);
    assert_hidden("PatientRecord", &record(), &record_hidden);
    assert_hidden("EmergencyContact", &record().emergency_contact, &record_hidden);
    let patient = Patient { id: PatientId::generate(), record: record(), created_at_ms: 0, updated_at_ms: 0 };
    assert_hidden("Patient", &patient, &record_hidden);
    let address = "sentinel.patient.qxj@mail.example";
    let email = Email::parse(address).unwrap();
    assert_hidden("Email", &email, &[address, "sentinel.patient"]);
    let account = NewAccount { role: Role::Patient, email, patient_id: Some(patient.id), name: None };
    assert_hidden("NewAccount", &account, &[address, "sentinel.patient"]);
    let grant = BreakGlassGrant {
        grant_id: Uuid::from_u128(0xdddd),
        clinician_id: UserId::from_uuid(Uuid::from_u128(0xcccc)),
        patient_id: patient.id,
        reason: Some(PhiText::new(sentinel("break-glass-reason"))),
        created_at_ms: 0,
        expires_at_ms: 1,
    };
    assert_hidden("BreakGlassGrant", &grant, &[&sentinel("break-glass-reason")]);

    // Reminders: the appointment's details, the patient's OpenPGP key, the email itself.
    let details =
        Details { starts_at_ms: STARTS_AT_MS, ends_at_ms: STARTS_AT_MS + 1, clinician: sentinel("clinician-name") };
    assert_hidden("Details", &details, &[&sentinel("clinician-name"), &STARTS_AT_MS.to_string()]);
    let gpg = Gpg::with_key("Sentinel Patient <sentinel.key.qxj@mail.example>");
    let armored = gpg.public_key();
    let key = PgpKey::parse(&armored).unwrap();
    let key_hidden = ["Sentinel Patient", "sentinel.key.qxj", "PGP PUBLIC KEY", armored.lines().nth(2).unwrap()];
    assert_hidden("PgpKey", &key, &key_hidden);
    let preferences = Preferences { email_enabled: true, lead_minutes: Some(vec![60]), pgp_key: Some(key) };
    assert_hidden("Preferences", &preferences, &key_hidden);
    let message = lettre::Message::builder()
        .from("Practice <practice@practice.example>".parse().unwrap())
        .to(format!("Sentinel Patient <{address}>").parse().unwrap())
        .subject("Your appointment")
        .body(sentinel("email-body"))
        .unwrap();
    assert_hidden("Deliver", &Deliver { message }, &[address, "Sentinel Patient", &sentinel("email-body")]);

    // Decrypted messages in the client SDK.
    let event = confidant_client::Event::Message {
        conversation: Uuid::from_u128(0xeeee),
        seq: 1,
        sender_device: Uuid::from_u128(0xffff),
        text: sentinel("message-plaintext").into_bytes(),
        attachments: Vec::new(),
    };
    let as_bytes = format!("{:?}", sentinel("message-plaintext").as_bytes());
    assert_hidden("client Event", &event, &[&sentinel("message-plaintext"), &as_bytes[1..as_bytes.len() - 1]]);

    // Clinical notes: their fields, what they were pre-filled with, addenda, and the frames.
    let mut fields = NoteFields::new();
    fields.insert("subjective", FieldValue::Text(sentinel("note-subjective")));
    fields.insert("diagnosis", FieldValue::List(vec![sentinel("note-diagnosis")]));
    let context = NoteContext {
        phq9: Some(Measure {
            total: NUMBER,
            severity: Severity::Severe,
            submitted_at_ms: 1,
            change_since_last_note: Some(i64::from(NUMBER)),
        }),
        gad7: None,
        diagnosis: vec![sentinel("plan-diagnosis")],
        goals: vec![sentinel("plan-goal")],
    };
    let note_secrets = [
        sentinel("note-subjective"),
        sentinel("note-diagnosis"),
        sentinel("plan-diagnosis"),
        sentinel("plan-goal"),
        NUMBER.to_string(),
    ];
    let note_secrets: Vec<&str> = note_secrets.iter().map(String::as_str).collect();
    assert_hidden("NoteFields", &fields, &note_secrets);
    assert_hidden("FieldValue", &FieldValue::Text(sentinel("note-subjective")), &note_secrets);
    let content = NoteContent { fields: fields.clone(), context };
    assert_hidden("NoteContent", &content, &note_secrets);
    let note_id = Uuid::from_u128(0xabcd);
    let draft = ClientFrame::NoteDraft { v: VERSION, id: "n1".into(), note_id, fields: fields.clone() };
    let opened = ServerFrame::NoteDraft {
        v: VERSION,
        id: "n2".into(),
        note_id,
        template_key: "soap".into(),
        template_version: 1,
        fields,
    };
    assert_hidden("ClientFrame::NoteDraft", &draft, &note_secrets);
    assert_hidden("ServerFrame::NoteDraft", &opened, &note_secrets);
    let addendum = Addendum {
        id: note_id,
        note_id,
        author_id: UserId::from_uuid(Uuid::from_u128(0xcccc)),
        body: PhiText::new(sentinel("addendum")),
        signed_at_ms: 1,
        signed_digest: "00".into(),
        late_entry: false,
    };
    assert_hidden("Addendum", &addendum, &[&sentinel("addendum")]);
}

#[test]
fn secrets_print_no_material_in_debug_output() {
    let key = KeyBytes::from_slice(&[0x5a; 32]).unwrap();
    assert_hidden("KeyBytes", &key, &["90, 90", "5a5a", "Wlpa"]);
    let wrapped = vec![0xa5; 48];
    let stored = StoredKey {
        key_id: 1,
        audit_id: Uuid::from_u128(0xaaaa),
        purpose: Purpose::Field,
        state: KeyState::Active,
        wrapped: Some(wrapped),
        master_key_id: "fingerprint".into(),
        created_at_ms: 0,
        deactivated_at_ms: None,
    };
    assert_hidden("StoredKey", &stored, &["165"]);
    let totp = confidant::identity::totp::TotpSecret::from_bytes(&[0x42; 20]).unwrap();
    assert_hidden("TotpSecret", &totp, &[totp.base32().as_str(), "66, 66"]);
    for code in confidant::identity::recovery::generate() {
        assert_hidden("RecoveryCode", &code, &[code.as_str()]);
    }
    let setting = confidant::settings::Secret::new(sentinel("setting-secret"));
    assert_hidden("settings Secret", &setting, &[&sentinel("setting-secret")]);
    let auth = confidant_protocol::ClientFrame::auth(sentinel("access-token"));
    assert_hidden("ClientFrame::Auth", &auth, &[&sentinel("access-token")]);
}

/// Compiles only while no listed type implements `$trait`: with it, the two blanket impls
/// below would both apply and the call would be ambiguous (the `static_assertions` trick).
macro_rules! assert_not_implemented {
    ($trait:path: $($t:ty),+ $(,)?) => {$({
        trait AmbiguousIfImplemented<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfImplemented<()> for T {}
        impl<T: ?Sized + $trait> AmbiguousIfImplemented<u8> for T {}
        <$t as AmbiguousIfImplemented<_>>::check();
    })+};
}

#[test]
fn phi_has_no_display_and_keys_and_tokens_have_no_debug() {
    assert_not_implemented!(std::fmt::Display:
        PhiText, Email, PatientRecord, IntakeAnswers, Answer, ScreeningScore, Severity, Score, Details, PgpKey,
        confidant_client::Event, NoteFields, FieldValue, NoteContent, NoteContext, Measure,
    );
    assert_not_implemented!(std::fmt::Debug:
        confidant::identity::tokens::Token,
        confidant::identity::sessions::Issued,
        confidant::identity::accounts::Credentials,
        confidant::identity::enrollment::TotpEnrollment,
        confidant::crypto::MasterKey,
        confidant::crypto::Keyring,
        confidant::crypto::Sealer,
        confidant::crypto::envelope::DataKey,
        confidant::reminders::content::Letter<'static>,
    );
}
