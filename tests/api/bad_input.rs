//! Bad input toward a browser device (issue 28): a second clinician's devices, driven here
//! through the client SDK and raw socket frames, misbehave in a conversation with the patient's
//! browser while `tests/browser/interop.py` looks on, in turns (`browser_script.rs`). Each
//! misdeed is refused by the server (checked here, over the socket) or shown in the browser as
//! undecryptable or unverifiable for that message alone; a valid message follows each and is
//! shown, and the script checks that a reload keeps everything received.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_client::{Api, ClientError, Connection, Device, Event, Payload, open_attachment, seal_attachment};
use confidant_protocol::{ClientFrame, ServerFrame};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::browser_script::BrowserScript;
use crate::messaging::{WAIT, converse};

/// A 1x1 PNG (the browser script's own).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The second clinician's two devices in one conversation with the patient's browser: `a` does
/// the misbehaving, `b` is removed and then tries to commit.
struct Mallory {
    a: Device,
    a_socket: Connection,
    b: Option<(Device, Connection)>,
    conversation: Uuid,
}

fn refused_with(answer: &Result<ServerFrame, ClientError>, code: &str) -> bool {
    matches!(answer, Err(ClientError::Refused { code: c, .. }) if c == code)
}

impl Mallory {
    /// Keeps both sockets read (their heartbeats answered, what is pushed taken in) for a moment.
    async fn pump(&mut self) {
        self.a.next_event(&mut self.a_socket, Duration::from_millis(50)).await.unwrap();
        if let Some((b, socket)) = &mut self.b {
            b.next_event(socket, Duration::from_millis(50)).await.unwrap();
        }
    }

    /// Tells the script `step` is done (`what` says what it should see) and waits until it has
    /// looked, keeping the sockets read meanwhile.
    async fn step(&mut self, script: &mut BrowserScript, step: &str, what: Value) {
        script.tell(step, &what.to_string());
        self.await_script(script, &format!("{step}.seen")).await;
    }

    /// Waits for the script to write `step`, keeping the sockets read meanwhile.
    async fn await_script(&mut self, script: &mut BrowserScript, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !script.wrote(step) {
            assert!(Instant::now() < deadline, "the browser never wrote {step:?}");
            self.pump().await;
        }
    }

    /// `bytes` sent as they are (an `mls.send`): the server's answer, settled when accepted.
    async fn send_raw(&mut self, bytes: &[u8], attachments: Vec<Uuid>) -> Result<ServerFrame, ClientError> {
        let (conversation, message) = (self.conversation, B64.encode(bytes));
        let answer =
            self.a_socket.request(|id| ClientFrame::mls_send_with(id, conversation, message, attachments)).await;
        if let Ok(frame @ ServerFrame::MlsAccepted { .. }) = &answer {
            self.a.settle_message(conversation, frame.clone()).unwrap();
        }
        answer
    }

    /// A valid message, as every step ends with.
    async fn say(&mut self, text: &str) {
        self.a.send(&mut self.a_socket, self.conversation, text.as_bytes()).await.unwrap();
    }
}

fn seq_of(answer: &Result<ServerFrame, ClientError>) -> u64 {
    match answer {
        Ok(ServerFrame::MlsAccepted { seq, .. }) => *seq,
        other => panic!("expected mls.accepted, got {other:?}"),
    }
}

/// Once the script says the patient's browser is ready: a conversation of `api`'s two devices
/// with the patient `ada` (about `record`), then each kind of bad input in its own step.
pub(crate) async fn misbehave(script: &mut BrowserScript, api: &Api, record: Uuid, ada: Uuid) {
    script.wait("ready").await;
    // Both devices are this clinician's: every device of Ada's (the browser) and b are added.
    let (a, a_socket, b, b_socket, conversation) = converse(api, api, record, ada).await;
    let mut m = Mallory { a, a_socket, b: Some((b, b_socket)), conversation };
    let first = "Dr. Mallory here: a few questions about your sleep.";
    m.say(first).await;
    m.step(script, "joined", json!({ "conversation": conversation, "after": first })).await;

    // a) Bytes that are no MLS message: the server reads the framing of every message and
    // refuses them; nothing reaches the browser, and the socket goes on.
    let valid = m.a.encrypt(conversation, b"never sent whole").unwrap();
    let truncated = &valid[..valid.len() - 3];
    for bytes in [&b"not an MLS message at all"[..], truncated] {
        let answer = m.send_raw(bytes, Vec::new()).await;
        assert!(refused_with(&answer, "invalid_mls"), "{answer:?}");
    }
    let answer = m.a_socket.request(|id| ClientFrame::mls_send(id, conversation, "%% not base64 %%".into())).await;
    assert!(refused_with(&answer, "malformed_frame"), "{answer:?}");
    let answer =
        m.a_socket.request(|id| ClientFrame::mls_commit(id, conversation, B64.encode(b"no commit"), None)).await;
    assert!(refused_with(&answer, "invalid_mls"), "{answer:?}");
    let after = "After the malformed ones: this arrives.";
    m.say(after).await;
    m.step(script, "malformed", json!({ "after": after, "failed": [] })).await;

    // b) A well-formed message with one byte of its ciphertext flipped: the server cannot tell
    // (it reads only the framing) and stores it; the browser cannot decrypt that one.
    let mut altered = m.a.encrypt(conversation, b"This sentence was altered on the way.").unwrap();
    *altered.last_mut().unwrap() ^= 0x01;
    let altered_seq = seq_of(&m.send_raw(&altered, Vec::new()).await);
    let after = "After the altered one: this arrives.";
    m.say(after).await;
    let what = json!({ "after": after, "failed": [altered_seq], "absent": "altered on the way" });
    m.step(script, "altered", what).await;

    // c) An earlier valid message's bytes again: stored again (the server cannot read it), but
    // its key was used up, so the browser shows it as undecryptable, never twice as text.
    let once = "This is said once.";
    let bytes = m.a.encrypt(conversation, once.as_bytes()).unwrap();
    seq_of(&m.send_raw(&bytes, Vec::new()).await);
    let replayed = m.send_raw(&bytes, Vec::new()).await;
    let failed: Vec<u64> = match &replayed {
        Ok(ServerFrame::MlsAccepted { seq, .. }) => vec![*seq],
        Err(ClientError::Refused { .. }) => Vec::new(),
        other => panic!("a replay was answered {other:?}"),
    };
    let after = "After the replay: this arrives.";
    m.say(after).await;
    m.step(script, "replayed", json!({ "after": after, "failed": failed, "once": once })).await;

    // d) An attachment altered after it was encrypted: the message carries the real key and
    // digests, the server holds other bytes. The browser refuses the file, shows nothing of it.
    let png = B64.decode(PNG).unwrap();
    let mut sealed = seal_attachment(&png).unwrap();
    let middle = sealed.ciphertext.len() / 2;
    sealed.ciphertext[middle] ^= 0x01;
    let uploaded = api.upload_attachment(conversation, sealed.ciphertext.clone()).await.unwrap();
    let reference = sealed.reference(uploaded.attachment_id, "scan.png", "image/png");
    let carried = "The scan you asked for.";
    let payload = Payload { text: carried.as_bytes().to_vec(), attachments: vec![reference.clone()] };
    let message = m.a.encrypt(conversation, &payload.encode()).unwrap();
    seq_of(&m.send_raw(&message, vec![uploaded.attachment_id]).await);
    let served = api.download_attachment(uploaded.attachment_id).await.unwrap();
    assert!(open_attachment(&reference, &served).is_err(), "the native client refuses it too");
    let after = "After the altered file: this arrives.";
    m.say(after).await;
    m.step(script, "altered_file", json!({ "after": after, "failed": [], "file": carried })).await;

    // e) A device removed from the group commits and sends as if it were still in: refused (no
    // longer a member), as is the removal commit sent again.
    let (mut b, mut b_socket) = m.b.take().unwrap();
    let early = b.encrypt(conversation, b"Written by a device about to be removed.").unwrap();
    let staged = m.a.stage_removal(conversation, m.a.user_id, b.device_id).unwrap();
    let removal = staged.commit.clone();
    m.a.send_commit(&mut m.a_socket, conversation, staged).await.unwrap();
    let again = m.a_socket.request(|id| ClientFrame::mls_commit(id, conversation, removal, None)).await;
    assert!(!matches!(again, Ok(ServerFrame::MlsAccepted { .. })), "a commit replayed: {again:?}");
    let update = b.stage_self_update(conversation).unwrap();
    let answer = b.send_commit(&mut b_socket, conversation, update).await;
    assert!(matches!(&answer, Err(ClientError::Refused { code, .. }) if code == "not_found"), "{answer:?}");
    let answer = b_socket.request(|id| ClientFrame::mls_send(id, conversation, B64.encode(&early))).await;
    assert!(refused_with(&answer, "not_found"), "{answer:?}");
    loop {
        match b.next_event(&mut b_socket, WAIT).await.unwrap() {
            Some(Event::Removed { conversation: c }) if c == conversation => break,
            Some(_) => continue,
            None => panic!("the removed device was never told"),
        }
    }
    b_socket.close().await;
    let after = "After the removed device tried: this arrives.";
    m.say(after).await;
    let what = json!({ "after": after, "failed": [], "absent": "about to be removed" });
    m.step(script, "removed_device", what).await;
    // The script reloads the page and checks that everything received is still there.
    m.await_script(script, "reloaded").await;

    // f) The browser is removed from the conversation; what follows is not for it. It keeps what
    // it had, says it is no longer in, and its other conversation goes on (checked with the
    // terminal).
    let browser = m.a.members(conversation).unwrap().into_iter().find(|(user, _)| *user == ada).unwrap().1;
    m.a.remove_device(&mut m.a_socket, conversation, ada, browser).await.unwrap();
    let unseen = "Sent after this browser left the conversation.";
    m.say(unseen).await;
    m.step(script, "left", json!({ "absent": unseen })).await;
}
