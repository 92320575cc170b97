//! Messaging in the browser (issue 28; docs/PERFORMANCE.md, "Messaging in the browser"). Times
//! the SDK's MLS core natively here, then starts the real server on its embedded defaults
//! (SQLite) pinned to core 0, furnishes a practice over the API (a clinician with TOTP enrolled,
//! a patient on the clinician's care team) and runs `benches/portal_messaging.py` in Debian's
//! headless Chromium over loopback. It prints:
//!
//! 1. MLS encrypt and decrypt per message, native (this process) and in the browser (the portal's
//!    MLS module, two devices paired in one page), the same calls on the same message in the
//!    same run; target: wasm within 3x native;
//! 2. send -> visible: the patient's page sends, the clinician's page shows it (wall clock on
//!    both sides, a MutationObserver in the receiving page), p50/p99; target p99 100 ms;
//! 3. opening a conversation of 1,000 messages: click -> the newest 50 drawn; target 300 ms;
//! 4. the memory of a tab holding 50 conversations (its renderer process, and the JS heap).
//!
//! `cargo bench --bench portal_messaging`. Knobs: BENCH_MLS (1,000 messages through MLS),
//! BENCH_MESSAGES (1,000 sent through the pages; the first BENCH_TIMED, 200, each timed alone),
//! BENCH_CONVERSATIONS (50). Prints its figures; not a test.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a program that prints figures

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_client::{Device, NewMember};
use confidant_protocol::VERSION;
use confidant_protocol::frames::{MlsKind, ServerFrame};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use uuid::Uuid;

mod support;

use support::browser::{cpu_model, run_script};

/// What each timed message says: a typical line of a patient's message.
const TEXT: &str = "Could we move Thursday's session to the afternoon? Mornings are hard this week.";
/// Messages per timed batch: the browser's clock is coarse (100 us outside cross-origin
/// isolation), so both sides time batches and report the per-message mean of each.
const BATCH: usize = 50;
/// Messages through MLS before the timed ones, on both sides: in the browser the first few
/// hundred run in V8's baseline wasm code (2-5x slower) until the hot functions are optimized,
/// which a returning person's browser has from its code cache from the start; natively, the
/// caches warm. The figures are of the steady state.
const WARM: usize = 500;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let mls = knob("BENCH_MLS", 1000).max(BATCH);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "messaging-in-the-browser benchmark on {cores} cores ({}): server on core 0 (SQLite, embedded \
         defaults), browser unpinned; {mls} messages through MLS on each side",
        cpu_model()
    );
    let (encrypt, decrypt) = native_mls(mls);
    println!(
        "[native MLS] per message, median of {} batches of {BATCH} after {WARM} untimed: encrypt {:.1} us, decrypt {:.1} us",
        mls / BATCH,
        median(&encrypt),
        median(&decrypt)
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(browser(mls, median(&encrypt), median(&decrypt)));
}

/// A device of a fresh account, as the server would have registered it.
fn device() -> (Device, Uuid, Uuid) {
    let (user, id) = (Uuid::new_v4(), Uuid::new_v4());
    let signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    (Device::new(signer, id, user).unwrap(), user, id)
}

/// Two devices in one conversation, with the server's answers written here; then `count`
/// messages from the first, each settled as accepted, and taken in by the second. Per-message
/// means of each batch, in microseconds: (encrypt, decrypt).
fn native_mls(count: usize) -> (Vec<f64>, Vec<f64>) {
    let ((mut alice, _, alice_device), (mut bob, bob_user, bob_device)) = (device(), device());
    let conversation = alice.start_conversation().unwrap().id;
    alice.conversation_registered(conversation);
    let package = B64.encode(&bob.key_packages(1, false).unwrap()[0]);
    let joining = [NewMember { user: bob_user, device: bob_device, key_package: package }];
    let staged = alice.stage_add(conversation, &joining).unwrap().unwrap();
    let accepted = |seq: u64| ServerFrame::MlsAccepted {
        v: VERSION,
        id: "bench".into(),
        conversation_id: conversation,
        seq,
        epoch: 1,
    };
    alice.settle_commit(conversation, Ok(accepted(1))).unwrap();
    let welcome = ServerFrame::MlsWelcome {
        v: VERSION,
        conversation_id: conversation,
        seq: 1,
        welcome: staged.welcome.unwrap(),
        ratchet_tree: B64.encode(alice.ratchet_tree(conversation).unwrap()),
    };
    bob.receive(&welcome).unwrap();

    let (mut encrypt, mut decrypt) = (Vec::new(), Vec::new());
    for batch in 0..(WARM + count) / BATCH {
        let first = 2 + (batch * BATCH) as u64;
        let started = Instant::now();
        let sent: Vec<ServerFrame> = (first..first + BATCH as u64)
            .map(|seq| {
                let message = B64.encode(alice.encrypt(conversation, TEXT.as_bytes()).unwrap());
                alice.settle_message(conversation, accepted(seq)).unwrap();
                ServerFrame::MlsMessage {
                    v: VERSION,
                    conversation_id: conversation,
                    seq,
                    kind: MlsKind::Application,
                    sender_device: alice_device,
                    message,
                }
            })
            .collect();
        let encrypted = started.elapsed().as_secs_f64() * 1e6 / BATCH as f64;
        let started = Instant::now();
        for frame in &sent {
            bob.receive(frame).unwrap().expect("a message for bob");
        }
        if batch >= WARM / BATCH {
            encrypt.push(encrypted);
            decrypt.push(started.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
        }
    }
    (encrypt, decrypt)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

async fn browser(mls: usize, native_encrypt_us: f64, native_decrypt_us: f64) {
    let knobs = [
        ("BENCH_MLS", mls.to_string()),
        ("BENCH_BATCH", BATCH.to_string()),
        ("BENCH_WARM", WARM.to_string()),
        ("BENCH_TEXT", TEXT.to_owned()),
        ("NATIVE_ENCRYPT_US", format!("{native_encrypt_us:.2}")),
        ("NATIVE_DECRYPT_US", format!("{native_decrypt_us:.2}")),
    ];
    run_script("portal_messaging.py", &knobs).await;
}
