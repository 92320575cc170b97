//! Encrypted attachments (docs/MESSAGING.md, "Attachments"): a patient's and a clinician's SDK
//! devices exchange files that only they can open; the server stores and serves ciphertext to
//! the conversation's members alone, refuses what is too large, and deletes each attachment
//! with its message (or a day after an upload no message named).

use std::time::{SystemTime, UNIX_EPOCH};

use confidant_client::{AttachmentError, ClientError, Connection, Device, Event};
use confidant_protocol::ClientFrame;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};
use crate::messaging::{Conversing, await_cursor, contains, dr_and_ada_conversing, next_message, server, stored_bytes};
use crate::signin::{Person, patient, patient_record};

/// A letter (as a PDF would hold it) with a sentence nobody at the server may ever read.
const CANARY: &str = "canary: the attached letter says I stopped taking sertraline";

fn letter() -> Vec<u8> {
    let mut file = b"%PDF-1.7\n".to_vec();
    for _ in 0..2000 {
        file.extend_from_slice(CANARY.as_bytes());
        file.push(b'\n');
    }
    file
}

/// The next message's text and attachments.
async fn received(device: &mut Device, socket: &mut Connection) -> (String, Vec<confidant_client::AttachmentRef>) {
    match next_message(device, socket).await {
        Event::Message { text, attachments, .. } => (String::from_utf8(text).unwrap(), attachments),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Runs `sql` with `binds` (text) on the app's main database; rows affected, or the one count.
async fn main_db(app: &TestApp, backend: Backend, sql: &str, bytes: Option<Vec<u8>>, binds: &[String]) -> i64 {
    use sqlx::Connection as _;
    macro_rules! run {
        ($db:expr) => {{
            if sql.starts_with("SELECT") {
                let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()));
                for bind in binds {
                    query = query.bind(bind.clone());
                }
                query.fetch_one(&mut $db).await.unwrap()
            } else {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                if let Some(bytes) = bytes {
                    query = query.bind(bytes);
                }
                for bind in binds {
                    query = query.bind(bind.clone());
                }
                i64::try_from(query.execute(&mut $db).await.unwrap().rows_affected()).unwrap()
            }
        }};
    }
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.data_dir.path().join("confidant.db").display());
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            run!(db)
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&app.main_db.as_ref().unwrap().url()).await.unwrap();
            run!(db)
        }
    }
}

async fn attachments_stored(app: &TestApp, backend: Backend) -> i64 {
    main_db(app, backend, "SELECT COUNT(*) FROM attachments", None, &[]).await
}

/// The app's main store, opened as another node would, for calling the retention purge.
async fn main_storage(app: &TestApp, backend: Backend) -> confidant::storage::Storage {
    use confidant::storage::{Location, Storage, Store};
    let env = [("CONFIDANT_DATA_DIR".to_owned(), app.data_dir.path().display().to_string())];
    let settings = confidant::settings::load_from(None, env).unwrap();
    let location = match backend {
        Backend::Sqlite => Location::of(Store::Main, &settings),
        Backend::Postgres => {
            Location::Postgres(confidant::settings::DatabaseUrl::try_from(app.main_db.as_ref().unwrap().url()).unwrap())
        }
    };
    Storage::connect(Store::Main, &location, &settings.database).await.unwrap()
}

/// A raw upload as `person`: the status and body.
async fn upload_as(app: &TestApp, person: &Person, conversation: Uuid, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conversation}/attachments")))
        .bearer_auth(&person.session.access)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

async fn a_patient_and_a_clinician_exchange_attachments_that_only_they_can_read(backend: Backend) {
    let Conversing {
        app,
        ada,
        record,
        api_dr,
        api_ada,
        mut dr,
        mut dr_socket,
        mut phone,
        mut phone_socket,
        conversation,
        ..
    } = dr_and_ada_conversing(backend).await;
    let file = letter();

    // The clinician sends a letter; Ada's device downloads it, checks it and reads the same bytes.
    let (_, sent) = dr
        .send_attachment(
            &api_dr,
            &mut dr_socket,
            conversation,
            "the letter we discussed",
            &file,
            "letter-for-ada.pdf",
            "application/pdf",
        )
        .await
        .unwrap();
    let (text, attachments) = received(&mut phone, &mut phone_socket).await;
    assert_eq!(text, "the letter we discussed");
    assert_eq!(attachments, [sent]);
    let (name, media_type, size) = (&attachments[0].name, &attachments[0].media_type, attachments[0].size);
    assert_eq!(
        (name.as_str(), media_type.as_str(), size),
        ("letter-for-ada.pdf", "application/pdf", file.len() as u64)
    );
    let opened = phone.download_attachment(&api_ada, &attachments[0]).await.unwrap();
    assert_eq!(opened.as_slice(), file.as_slice());

    // And back: Ada sends a photo (3 MiB, more than any other request may carry).
    let photo: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    phone
        .send_attachment(&api_ada, &mut phone_socket, conversation, "", &photo, "rash.png", "image/png")
        .await
        .unwrap();
    let (text, attachments) = received(&mut dr, &mut dr_socket).await;
    assert_eq!((text.as_str(), attachments.len()), ("", 1));
    assert_eq!(dr.download_attachment(&api_dr, &attachments[0]).await.unwrap().as_slice(), photo.as_slice());

    // Plain text still travels as it always did, and reads as text.
    dr.send(&mut dr_socket, conversation, b"thanks, received").await.unwrap();
    assert_eq!(received(&mut phone, &mut phone_socket).await, ("thanks, received".to_owned(), Vec::new()));

    // The server served bytes it cannot read: no database file, dump or log line holds the
    // letter's sentence or its name.
    let stored = stored_bytes(&app, backend).await;
    for phrase in [CANARY, "letter-for-ada", "the letter we discussed"] {
        assert!(!contains(&stored, phrase), "the database holds {phrase:?}");
        app.assert_logs_free_of(phrase);
    }

    // Every upload and download is on record, with the patient the conversation is about.
    let recorded = |reason: &str| -> Vec<Value> {
        app.audit_entries()
            .into_iter()
            .filter(|e| e["reason"] == reason && e["resource_type"] == "attachment")
            .map(|e| {
                assert_eq!(e["patient_id"], record.as_str(), "{e}");
                e["actor_user_id"].clone()
            })
            .collect()
    };
    assert_eq!(recorded("attachment_uploaded").len(), 2);
    let readers = recorded("attachment_read");
    assert_eq!(readers.len(), 2);
    assert!(readers.contains(&Value::from(ada.session.user_id.clone())));
}

async fn an_oversize_upload_is_refused_with_413_and_stores_nothing(backend: Backend) {
    let Conversing { app, clinician, conversation, .. } = dr_and_ada_conversing(backend).await;
    let limit = 10 * 1024 * 1024 + 28;

    // Declared too large: refused before the route reads a byte, with the JSON error body.
    let (status, body) = upload_as(&app, &clinician, conversation, vec![0x5a; limit + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    assert!(body["request_id"].is_string(), "{body}");
    assert_eq!(attachments_stored(&app, backend).await, 0);

    // Exactly the limit is taken; every other route keeps its 1 MiB.
    let (status, body) = upload_as(&app, &clinician, conversation, vec![0x5a; limit]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], limit);
    assert_eq!(attachments_stored(&app, backend).await, 1);
    let big_json = serde_json::json!({ "signature_key": "A".repeat(2 * 1024 * 1024) });
    let (status, _) = clinician.session.call(&app, reqwest::Method::POST, "/api/v1/devices", Some(big_json)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Bytes too short to be ciphertext, or not sent as bytes, are refused too.
    let (status, body) = upload_as(&app, &clinician, conversation, vec![1; 27]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    let response = app
        .client
        .post(app.url(&format!("/api/v1/conversations/{conversation}/attachments")))
        .bearer_auth(&clinician.session.access)
        .json(&serde_json::json!({ "file": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(attachments_stored(&app, backend).await, 1);

    // An upload retried with its Idempotency-Key gets the first answer, and is stored once.
    let key = Uuid::new_v4().to_string();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url(&format!("/api/v1/conversations/{conversation}/attachments")))
            .bearer_auth(&clinician.session.access)
            .header("content-type", "application/octet-stream")
            .header("idempotency-key", &key)
            .body(vec![7u8; 64])
            .send()
            .await
            .unwrap();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        answers.push((response.status(), replayed, response.json::<Value>().await.unwrap()["attachment_id"].clone()));
    }
    assert_eq!(answers[0].0, StatusCode::CREATED);
    assert_eq!((answers[1].0, answers[1].1), (StatusCode::CREATED, true));
    assert_eq!(answers[0].2, answers[1].2);
    assert_eq!(attachments_stored(&app, backend).await, 2);
}

async fn someone_outside_the_conversation_can_neither_upload_nor_download(backend: Backend) {
    let Conversing { app, clinician, api_dr, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let grace_record = patient_record(&app, &clinician, "Grace Hopper").await;
    let grace = patient(&app, &clinician, &grace_record, "grace@mail.example").await;
    let file = letter();
    dr.send_attachment(&api_dr, &mut dr_socket, conversation, "for Ada", &file, "letter.pdf", "application/pdf")
        .await
        .unwrap();
    let (_, attachments) = received(&mut phone, &mut phone_socket).await;
    let attachment = attachments[0].id;

    // Grace, another patient of the same clinician, with a device of her own: as if neither existed.
    let api_grace = server(&app).with_token(&grace.session.access);
    let _device = Device::register(&api_grace).await.unwrap();
    let (status, _) = upload_as(&app, &grace, conversation, vec![0; 64]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = grace.session.get(&app, &format!("/api/v1/attachments/{attachment}")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let missing = api_grace.download_attachment(attachment).await;
    assert!(matches!(missing, Err(ClientError::Refused { status: 404, .. })), "{missing:?}");
    let denied: Vec<Value> = app
        .audit_entries()
        .into_iter()
        .filter(|e| e["reason"] == "not_a_member" && e["actor_user_id"] == grace.session.user_id.as_str())
        .collect();
    assert_eq!(denied.len(), 3, "every attempt is on record as denied");
    assert!(denied.iter().all(|e| e["outcome"] == "denied"));
    assert_eq!(attachments_stored(&app, backend).await, 1);

    // A member may not claim someone else's upload for their own message, nor one already sent.
    let (status, body) = upload_as(&app, &clinician, conversation, vec![0; 64]).await;
    assert_eq!(status, StatusCode::CREATED);
    let drs: Uuid = body["attachment_id"].as_str().unwrap().parse().unwrap();
    for taken in [drs, attachment] {
        let message = phone.encrypt(conversation, b"not mine to send").unwrap();
        let frame = |id| ClientFrame::mls_send_with(id, conversation, base64(&message), vec![taken]);
        let refused = phone_socket.request(frame).await;
        assert!(matches!(refused, Err(ClientError::Refused { ref code, .. }) if code == "not_found"), "{refused:?}");
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn a_corrupted_attachment_is_refused_by_the_recipient_and_the_conversation_goes_on(backend: Backend) {
    let Conversing { app, api_dr, api_ada, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let file = letter();
    dr.send_attachment(&api_dr, &mut dr_socket, conversation, "the letter", &file, "letter.pdf", "application/pdf")
        .await
        .unwrap();
    let (_, attachments) = received(&mut phone, &mut phone_socket).await;
    let reference = &attachments[0];

    // Someone with the database flips one bit of the stored ciphertext.
    let mut altered = api_ada.download_attachment(reference.id).await.unwrap();
    altered[40] ^= 0x01;
    let sql = "UPDATE attachments SET ciphertext = $1 WHERE attachment_id = $2";
    assert_eq!(main_db(&app, backend, sql, Some(altered), &[reference.id.to_string()]).await, 1);
    let refused = phone.download_attachment(&api_ada, reference).await;
    assert!(matches!(refused, Err(ClientError::Attachment(AttachmentError::CiphertextDigest))), "{refused:?}");

    // Or substitutes another upload's bytes for it.
    let other = confidant_client::seal_attachment(b"a different file").unwrap();
    let sql = "UPDATE attachments SET ciphertext = $1 WHERE attachment_id = $2";
    main_db(&app, backend, sql, Some(other.ciphertext.clone()), &[reference.id.to_string()]).await;
    let refused = phone.download_attachment(&api_ada, reference).await;
    assert!(matches!(refused, Err(ClientError::Attachment(AttachmentError::CiphertextDigest))), "{refused:?}");

    // The conversation and both sockets live on, both ways.
    dr.send(&mut dr_socket, conversation, b"did the letter open?").await.unwrap();
    assert_eq!(received(&mut phone, &mut phone_socket).await.0, "did the letter open?");
    phone.send(&mut phone_socket, conversation, b"no, it was damaged").await.unwrap();
    assert_eq!(received(&mut dr, &mut dr_socket).await.0, "no, it was damaged");
    let again = dr
        .send_attachment(&api_dr, &mut dr_socket, conversation, "again", &file, "letter.pdf", "application/pdf")
        .await;
    assert!(again.is_ok(), "{again:?}");
    let (_, attachments) = received(&mut phone, &mut phone_socket).await;
    assert_eq!(phone.download_attachment(&api_ada, &attachments[0]).await.unwrap().as_slice(), file.as_slice());
}

async fn retention_deletes_an_attachment_with_its_message_and_an_unsent_one_after_a_day(backend: Backend) {
    let Conversing { app, api_dr, api_ada, mut dr, mut dr_socket, mut phone, mut phone_socket, conversation, .. } =
        dr_and_ada_conversing(backend).await;
    let (seq, sent) = dr
        .send_attachment(
            &api_dr,
            &mut dr_socket,
            conversation,
            "kept with its message",
            b"%PDF a",
            "a.pdf",
            "application/pdf",
        )
        .await
        .unwrap();
    let unsent = api_dr
        .upload_attachment(conversation, confidant_client::seal_attachment(b"never sent").unwrap().ciphertext)
        .await
        .unwrap();
    let (_, attachments) = received(&mut phone, &mut phone_socket).await;
    assert_eq!(attachments, std::slice::from_ref(&sent));
    // Ada answers; once both devices acknowledged the answer, the message is delivered everywhere.
    let reply = phone.send(&mut phone_socket, conversation, b"got it").await.unwrap();
    assert_eq!(received(&mut dr, &mut dr_socket).await.0, "got it");
    assert!(reply > seq);
    dr.flush_acks(&mut dr_socket).await.unwrap();
    await_cursor(&app, backend, dr.device_id, conversation, reply).await;
    phone.flush_acks(&mut phone_socket).await.unwrap();
    await_cursor(&app, backend, phone.device_id, conversation, reply).await;
    let linked = "SELECT COUNT(*) FROM attachments WHERE message_seq IS NOT NULL";
    assert_eq!(main_db(&app, backend, linked, None, &[]).await, 1, "the message names its attachment");

    let storage = main_storage(&app, backend).await;
    let retention_ms = 30 * 24 * 60 * 60 * 1000;
    let day_ms = 24 * 60 * 60 * 1000;
    let now = now_ms();

    // Within the day, both stay.
    let purged = confidant::messaging::purge(&storage, now, retention_ms).await.unwrap();
    assert_eq!(purged.attachments, 0);
    assert_eq!(attachments_stored(&app, backend).await, 2);

    // A day on, the upload no message named is gone; the sent one lives as long as its message.
    let purged = confidant::messaging::purge(&storage, now + day_ms + 60_000, retention_ms).await.unwrap();
    assert_eq!((purged.messages, purged.attachments), (0, 1));
    let gone = api_dr.download_attachment(unsent.attachment_id).await;
    assert!(matches!(gone, Err(ClientError::Refused { status: 404, .. })), "{gone:?}");
    assert_eq!(phone.download_attachment(&api_ada, &sent).await.unwrap().as_slice(), b"%PDF a");

    // Past retention, delivered everywhere: the message goes, and its attachment with it.
    let purged = confidant::messaging::purge(&storage, now + retention_ms + day_ms, retention_ms).await.unwrap();
    assert!(purged.messages >= 1, "{purged:?}");
    assert_eq!(purged.attachments, 1);
    assert_eq!(attachments_stored(&app, backend).await, 0);
    let gone = phone.download_attachment(&api_ada, &sent).await;
    assert!(matches!(gone, Err(ClientError::Refused { status: 404, .. })), "{gone:?}");
    // The conversation goes on.
    dr.send(&mut dr_socket, conversation, b"after the purge").await.unwrap();
    assert_eq!(received(&mut phone, &mut phone_socket).await.0, "after the purge");
}

crate::on_both_backends!(
    a_patient_and_a_clinician_exchange_attachments_that_only_they_can_read,
    an_oversize_upload_is_refused_with_413_and_stores_nothing,
    someone_outside_the_conversation_can_neither_upload_nor_download,
    a_corrupted_attachment_is_refused_by_the_recipient_and_the_conversation_goes_on,
    retention_deletes_an_attachment_with_its_message_and_an_unsent_one_after_a_day,
);
