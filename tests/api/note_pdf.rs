//! A signed clinical note as a PDF for release of records (issue 29, item 8): it holds what the
//! note's screen shows (sections, signature, addenda) and nothing more, read back with poppler's
//! `pdftotext`; its download is audited as a read; a draft is refused, and a psychotherapy note is
//! never exported, to anyone. Both backends.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::Backend;
use crate::notes::{begin, clinic, save, sign, signed_soap};
use crate::signin::Person;

/// `GET /api/v1/notes/{note}/pdf` as `who`: the status and the body's bytes.
async fn download(app: &crate::helpers::TestApp, who: &Person, note: &str) -> (StatusCode, Vec<u8>, String, String) {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/notes/{note}/pdf")))
        .bearer_auth(&who.session.access)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (kind, cache) = (header(CONTENT_TYPE), header(CACHE_CONTROL));
    (status, response.bytes().await.unwrap().to_vec(), kind, cache)
}

/// The text of a PDF, as poppler's `pdftotext` reads it (`scripts/browser-tools` installs it).
fn pdf_text(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-layout", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils; scripts/browser-tools --install)");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "pdftotext: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn a_signed_note_renders_to_pdf_with_its_addenda_and_nothing_more(backend: Backend) {
    let c = clinic(backend, false).await;
    let app = &c.app;
    let note = signed_soap(app, &c.dr_a, &c.p1, "Slept better after the exposure homework.").await;
    let code = c.dr_c.totp.as_ref().unwrap().fresh_code().await;
    let body = json!({ "text": "Correction: the homework was twice daily, not once.", "totp_code": code });
    let (status, addendum) =
        c.dr_c.session.call(app, Method::POST, &format!("/api/v1/notes/{note}/addenda"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{addendum}");
    let (_, shown) = c.dr_a.session.get(app, &format!("/api/v1/notes/{note}")).await;
    let digest = shown["signed_digest"].as_str().unwrap().to_owned();

    let skip = app.audit_entries().len();
    let (status, pdf, kind, cache) = download(app, &c.dr_a, &note).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((kind.as_str(), cache.as_str()), ("application/pdf", "no-store"));
    assert!(pdf.starts_with(b"%PDF-"), "a PDF document");
    let text = pdf_text(&pdf);
    for shown in [
        "SOAP progress note",
        "Subjective",
        "Slept better after the exposure homework.",
        "Plan",
        "Weekly CBT.",
        "Status: Signed",
        &format!("Signature digest: {}", &digest[..16]),
        "Addenda",
        "Correction: the homework was twice daily, not once.",
    ] {
        assert!(text.contains(shown), "the PDF lacks {shown:?}:\n{text}");
    }
    // Nothing the screen does not show: no patient demographics, no full digest, no email.
    for absent in ["Ada", "Lovelace", "1980", "@", &digest[16..]] {
        assert!(!text.contains(absent), "the PDF shows {absent:?}:\n{text}");
    }
    let reads: Vec<_> = app.audit_entries().into_iter().skip(skip).collect();
    assert!(
        reads.iter().any(|e| e["action"] == "read"
            && e["resource_id"] == note.as_str()
            && e["patient_id"] == c.p1.as_str()
            && e["reason"] == "note_exported_pdf"),
        "the export is on record as a read: {reads:?}"
    );

    // A colleague of the care team may export it; nobody else.
    assert_eq!(download(app, &c.dr_c, &note).await.0, StatusCode::OK);
    for outsider in [&c.dr_b, &c.desk, &c.billing, &c.owner, &c.ada] {
        assert_eq!(download(app, outsider, &note).await.0, StatusCode::FORBIDDEN, "{}", outsider.email);
    }

    // A draft is not part of the record; a psychotherapy note is never exported, even to its author.
    let draft = begin(app, &c.dr_a, &c.p1, "soap").await;
    assert_eq!(download(app, &c.dr_a, &draft).await.0, StatusCode::CONFLICT);
    let private = begin(app, &c.dr_a, &c.p1, "psychotherapy").await;
    let (_, template) = c.dr_a.session.get(app, &format!("/api/v1/notes/{private}")).await;
    let mut fields = serde_json::Map::new();
    for section in template["template"]["sections"].as_array().unwrap() {
        let value = if section["type"] == "list" || section["type"] == "multi_choice" {
            json!([section["options"][0].as_str().unwrap_or("item")])
        } else if section["type"] == "choice" {
            section["options"][0].clone()
        } else if section["type"] == "date" {
            json!("2026-12-01")
        } else {
            json!("Process notes of the session.")
        };
        fields.insert(section["id"].as_str().unwrap().to_owned(), value);
    }
    assert_eq!(save(app, &c.dr_a, &private, serde_json::Value::Object(fields)).await.0, StatusCode::NO_CONTENT);
    let (status, body) = sign(app, &c.dr_a, &private).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(download(app, &c.dr_a, &private).await.0, StatusCode::FORBIDDEN);
}

crate::on_both_backends!(a_signed_note_renders_to_pdf_with_its_addenda_and_nothing_more);
