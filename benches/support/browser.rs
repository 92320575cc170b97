//! What the browser benchmarks share: a server furnished over the API with the portal's
//! people, the script run against it in the Python that drives Chromium, and the CPU's name
//! for the record.
#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::node::{Node, PASSWORD, enroll_totp, http_client, sign_in};

pub const DESK: &str = "desk@bench.example";
pub const CLINICIAN: &str = "dr@bench.example";
pub const PATIENT_EMAIL: &str = "patient@bench.example";
pub const PATIENT_PASSWORD: &str = "Quiet-Harbour-Lamp-7731";

/// Starts the server on its embedded defaults (SQLite, core 0), furnishes the practice, and runs
/// `benches/<script>` in the browser's Python with each person's details and `knobs` in its
/// environment: CONFIDANT_URL, CERT, DESK_TOKEN, CLINICIAN_EMAIL, CLINICIAN_TOTP_SECRET,
/// CLINICIAN_ID, PATIENT_ID, PATIENT_EMAIL, STAFF_PASSWORD, PATIENT_PASSWORD. Fails when the
/// script does.
pub async fn run_script(script: &str, knobs: &[(&str, String)]) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let python = browser_python();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    let practice = Practice::set_up(&node).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new(python)
        .arg(format!("{root}/benches/{script}"))
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
        .envs(knobs.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect(script);
    node.stop();
    assert!(status.success(), "benches/{script} failed");
}

/// What the browser script needs to act as each person.
pub struct Practice {
    pub desk_token: String,
    pub clinician_id: String,
    pub clinician_totp: String,
    pub patient_id: String,
}

impl Practice {
    /// Front desk and a clinician (TOTP enrolled), a patient with an accepted invitation on the
    /// clinician's care team, and a PHQ-9 assigned to the patient by the clinician.
    pub async fn set_up(node: &Node) -> Self {
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
pub fn browser_python() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/browser-tools");
    let output = Command::new(tools).output().expect("scripts/browser-tools");
    assert!(output.status.success(), "browser-tools: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// The CPU's model name, for the record.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into())
}
