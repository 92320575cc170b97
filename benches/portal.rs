//! The portal's speed in a real browser (issue 26; docs/PERFORMANCE.md, "Portal"). Starts the
//! real server on its embedded defaults (SQLite) pinned to core 0, furnishes a practice over the
//! API (front desk and a clinician with TOTP enrolled, a patient whose invitation is accepted,
//! on the clinician's care team, with a PHQ-9 assigned), then runs `benches/portal.py` in
//! Debian's headless Chromium (Playwright, from `scripts/browser-tools`; the browser is not
//! pinned) over loopback. It prints:
//!
//! 1. bytes transferred by the first load (compressed, wasm included), from Chromium's network
//!    events, each load in a fresh browser context (cold cache); target <= 800 KB;
//! 2. navigation start -> interactive sign-in form (`#email` present and enabled, the wasm app
//!    mounted), median and spread over cold loads, and where the time goes; target 300 ms;
//! 3. schedule change -> visible in the clinician's page (Week view): front desk books and
//!    reschedules over the REST API, timed from just before the request is written to a
//!    MutationObserver in the clinician's page seeing the row (same wall clock), p50/p99;
//!    target p99 100 ms;
//! 4. autosave round trip of a patient's PHQ-9 answer, radio checked -> `data-save=saved`,
//!    p50/p99; target p99 50 ms.
//!
//! `cargo bench --bench portal` (needs nothing but Chromium and the venv, which
//! `scripts/browser-tools` installs on first use). Knobs: BENCH_LOADS (10 cold loads),
//! BENCH_CHANGES (200 schedule changes), BENCH_ANSWERS (200 autosaved answers). Prints its
//! figures; not a test.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a program that prints figures

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod support;

use support::node::{Node, PASSWORD, enroll_totp, http_client, sign_in};

const DESK: &str = "desk@bench.example";
const CLINICIAN: &str = "dr@bench.example";
const PATIENT_EMAIL: &str = "patient@bench.example";
const PATIENT_PASSWORD: &str = "Quiet-Harbour-Lamp-7731";

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (loads, changes, answers) = (knob("BENCH_LOADS", 10), knob("BENCH_CHANGES", 200), knob("BENCH_ANSWERS", 200));
    println!(
        "portal benchmark on {cores} cores ({}): server on core 0 (SQLite, embedded defaults), browser unpinned; \
         {loads} cold loads, {changes} schedule changes, {answers} autosaved answers",
        cpu_model()
    );
    let python = browser_python();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    let practice = Practice::set_up(&node).await;

    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(python)
        .arg(format!("{root}/benches/portal.py"))
        .env("CONFIDANT_URL", format!("https://{}", node.address))
        .env("CERT", node.cert())
        .env("DESK_TOKEN", &practice.desk_token)
        .env("CLINICIAN_EMAIL", CLINICIAN)
        .env("CLINICIAN_TOTP_SECRET", &practice.clinician_totp)
        .env("CLINICIAN_ID", &practice.clinician_id)
        .env("PATIENT_ID", &practice.patient_id)
        .env("PATIENT_EMAIL", PATIENT_EMAIL)
        .env("STAFF_PASSWORD", PASSWORD)
        .env("PATIENT_PASSWORD", PATIENT_PASSWORD)
        .env("BENCH_LOADS", loads.to_string())
        .env("BENCH_CHANGES", changes.to_string())
        .env("BENCH_ANSWERS", answers.to_string())
        .status()
        .expect("benches/portal.py");
    node.stop();
    assert!(status.success(), "benches/portal.py failed");
}

/// What the browser script needs to act as each person.
struct Practice {
    desk_token: String,
    clinician_id: String,
    clinician_totp: String,
    patient_id: String,
}

impl Practice {
    /// Front desk and a clinician (TOTP enrolled), a patient with an accepted invitation on the
    /// clinician's care team, and a PHQ-9 assigned to the patient by the clinician.
    async fn set_up(node: &Node) -> Self {
        for (role, email) in [("front_desk", DESK), ("clinician", CLINICIAN)] {
            node.cli(&["user", "create", "--role", role, "--email", email], &format!("{PASSWORD}\n"));
        }
        let client = http_client(node);
        let desk = sign_in(&client, node, DESK).await;
        enroll_totp(&client, node, &desk).await;
        let clinician = sign_in(&client, node, CLINICIAN).await;
        let clinician_totp = enroll_totp(&client, node, &clinician).await;
        let api = Api { client: &client, node };

        let staff = api.call("GET", "/api/v1/staff", &desk, None).await;
        let member = staff.as_array().unwrap().iter().find(|m| m["display_name"] == CLINICIAN).unwrap();
        let clinician_id = member["user_id"].as_str().unwrap().to_owned();
        let record = json!({ "legal_name": "Bench Patient", "date_of_birth": "1980-01-01", "email": PATIENT_EMAIL });
        let patient = api.call("POST", "/api/v1/patients", &desk, Some(record)).await;
        let patient_id = patient["id"].as_str().unwrap().to_owned();
        let invite = json!({ "role": "patient", "email": PATIENT_EMAIL, "patient_id": patient_id });
        let invitation = api.call("POST", "/api/v1/users/invitations", &desk, Some(invite)).await;
        let accept = json!({ "token": invitation["invitation_token"], "password": PATIENT_PASSWORD });
        api.call("POST", "/api/v1/invitations/accept", "", Some(accept)).await;
        api.call("PUT", &format!("/api/v1/patients/{patient_id}/care-team/{clinician_id}"), &desk, None).await;
        let form = json!({ "form": "phq9" });
        api.call("POST", &format!("/api/v1/patients/{patient_id}/intake-forms"), &clinician, Some(form)).await;
        Self { desk_token: desk, clinician_id, clinician_totp, patient_id }
    }
}

/// The set-up's API calls: each must succeed.
struct Api<'a> {
    client: &'a reqwest::Client,
    node: &'a Node,
}

impl Api<'_> {
    /// `method path` with `token` (none when empty) and a JSON `body`; the answer's JSON (`null`
    /// when empty). Panics with the server's answer unless it succeeded.
    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method.parse().unwrap(), self.node.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// The Python interpreter with Playwright (`scripts/browser-tools` installs it on first use).
fn browser_python() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/browser-tools");
    let output = Command::new(tools).output().expect("scripts/browser-tools");
    assert!(output.status.success(), "browser-tools: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The CPU's model name, for the record.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into())
}
