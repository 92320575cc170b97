//! A Confidant server process for the load benchmarks, pinned to core 0, and the client-side
//! steps they share (TLS roots, sign-in, TOTP enrolment).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each benchmark uses part of it; set-up failures abort it

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::Digest;
use tokio_tungstenite::Connector;

/// Every benchmark account's password.
pub const PASSWORD: &str = "a long unremarkable passphrase 42";
/// The portal's registered redirect URI.
pub const REDIRECT: &str = "https://127.0.0.1:8443/portal/";

/// A server process pinned to core 0.
pub struct Node {
    pub child: Child,
    pub address: SocketAddr,
    pub dir: std::path::PathBuf,
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn start(dir: &Path, extra: &[(&str, String)]) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("CONFIDANT_DATA_DIR".into(), dir.display().to_string()),
            ("CONFIDANT_LISTEN".into(), "127.0.0.1:0".into()),
            ("CONFIDANT_LOG__FORMAT".into(), "json".into()),
            ("CONFIDANT_LOG__FILTER".into(), "warn,confidant=info".into()),
            ("CONFIDANT_WS__MAX_UNAUTHENTICATED_PER_ADDRESS".into(), "1000".into()),
            ("CONFIDANT_IDENTITY__SESSION_IDLE_SECS".into(), "3600".into()),
            ("CONFIDANT_IDENTITY__ACCESS_TOKEN_SECS".into(), "3600".into()),
            ("CONFIDANT_DATABASE__MAX_CONNECTIONS".into(), "20".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let mut command = Command::new("taskset");
        // The tests' own variable names no setting: the server would refuse it as unknown.
        command
            .args(["-c", "0", &server_binary(), "serve"])
            .env_remove("CONFIDANT_TEST_POSTGRES_URL")
            .envs(env.iter().cloned());
        // Logs go to standard error.
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("server");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let address = loop {
            let line = lines.next().expect("server exited").unwrap();
            let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if event["message"] == "listening" {
                break event["address"].as_str().unwrap().trim_start_matches("https://").parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, address, dir: dir.to_owned(), env }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    pub fn cert(&self) -> std::path::PathBuf {
        self.dir.join("tls/dev-cert.pem")
    }

    pub fn pid(&self) -> u32 {
        // taskset execs the server, so the child's pid is the server's.
        self.child.id()
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    }

    pub fn cli(&self, args: &[&str], stdin: &str) {
        use std::io::Write;
        let mut child =
            self.cli_command(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "confidant {args:?} failed");
    }

    /// `confidant ARGS` with this node's settings (its stores, its master key), to run as the
    /// caller likes.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(server_binary());
        command.args(args).env_remove("CONFIDANT_TEST_POSTGRES_URL").envs(self.env.iter().cloned());
        command
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn ticks_per_sec() -> f64 {
    let out =
        Command::new("getconf").arg("CLK_TCK").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    out.ok().and_then(|s| s.parse().ok()).unwrap_or(100.0)
}

/// Trusts exactly the server's certificate.
pub fn connector(cert: &Path) -> Connector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert).unwrap()).unwrap();
    Connector::Rustls(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

/// Signs `email` in through the portal's OAuth flow (no second factor yet).
pub async fn sign_in(client: &reqwest::Client, node: &Node, email: &str) -> String {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorized: Value = client
        .post(node.url("/oauth/authorize"))
        .json(&json!({ "response_type": "code", "client_id": "portal", "redirect_uri": REDIRECT, "code_challenge": challenge,
            "code_challenge_method": "S256", "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = authorized["code"].as_str().expect("no TOTP yet").to_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "portal"),
        ("redirect_uri", REDIRECT),
        ("code", &code),
        ("code_verifier", &verifier),
    ];
    let tokens: Value = client.post(node.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Enrolls TOTP for the account of `token`, which then counts as having proved it. Returns the
/// base32 secret (for a browser that signs in as this account later).
pub async fn enroll_totp(client: &reqwest::Client, node: &Node, token: &str) -> String {
    let secret: Value =
        client.post(node.url("/api/v1/me/totp")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    let base32 = secret["secret"].as_str().unwrap().to_owned();
    let bytes = totp_rs::Secret::try_from_base32(&base32).unwrap();
    let secret = confidant::identity::totp::TotpSecret::from_bytes(bytes.as_bytes()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let code = confidant::identity::totp::code_at(&secret, now);
    let confirmed = client
        .post(node.url("/api/v1/me/totp/confirm"))
        .bearer_auth(token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert!(confirmed.status().is_success());
    base32
}

/// A patient record made by `token`'s clinician (who joins its care team); its id.
pub async fn create_patient(client: &reqwest::Client, node: &Node, token: &str, name: &str) -> String {
    let record = json!({ "legal_name": name, "date_of_birth": "1980-01-01" });
    let created: Value = client
        .post(node.url("/api/v1/patients"))
        .bearer_auth(token)
        .json(&record)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().expect("patient").to_owned()
}

/// A client trusting the node's certificate, resolving `localhost` to it.
pub fn http_client(node: &Node) -> reqwest::Client {
    let pem = std::fs::read(node.cert()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("localhost", node.address)
        .build()
        .unwrap()
}

/// The accounts every load benchmark starts from: a practice owner (`owner@bench.example`) and a
/// clinician (`dr@bench.example`), made on the command line; the owner signed in with TOTP
/// enrolled. Returns a client for the node and the owner's access token.
pub async fn owner_and_clinician(node: &Node) -> (reqwest::Client, String) {
    node.cli(
        &["user", "create", "--role", "practice_owner", "--email", "owner@bench.example"],
        &format!("{PASSWORD}\n"),
    );
    node.cli(&["user", "create", "--role", "clinician", "--email", "dr@bench.example"], &format!("{PASSWORD}\n"));
    let client = http_client(node);
    let owner = sign_in(&client, node, "owner@bench.example").await;
    enroll_totp(&client, node, &owner).await;
    (client, owner)
}

/// The server the benchmark runs: `BENCH_SERVER` if set, else the one cargo built with
/// the benchmark. A copied benchmark binary still starts `target/release/confidant`, whatever
/// was built last, so an A/B run gives each build's bench its own server through this variable.
fn server_binary() -> String {
    std::env::var("BENCH_SERVER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_confidant").to_owned())
}
