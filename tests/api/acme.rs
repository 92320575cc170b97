//! Certificates a practice can use: with `[tls.acme]` the node obtains a certificate for its
//! domain from an ACME CA (Pebble here) by TLS-ALPN-01 on its own listener, serves it in place of
//! the stand-in development certificate without a restart, and after a restart serves it from its
//! cache without ordering again.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use x509_cert::der::Decode;

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::pebble::{Pebble, free_port};

/// The practice's domain: Pebble's DNS resolves every name to 127.0.0.1.
const DOMAIN: &str = "confidant.test";

/// A configuration file with `[tls.acme]` for `DOMAIN` at `pebble`.
fn acme_config(dir: &Path, pebble: &Pebble) -> PathBuf {
    let file = dir.join("acme.toml");
    let text = format!(
        "[tls]\nmin_version = \"1.3\"\n[tls.acme]\ndomains = [\"{DOMAIN}\"]\ncontact = \"mailto:it@{DOMAIN}\"\n\
         directory_url = \"{}\"\nroot_ca_file = \"{}\"\n",
        pebble.directory_url,
        pebble.https_cert.display()
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Waits for a log line whose message contains `message`; fails at once on a failed order.
async fn wait_for_log(app: &TestApp, pebble: &Pebble, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let logs = app.logs();
        if logs.iter().any(|l| l.contains(message)) {
            return;
        }
        let failed = logs.iter().any(|l| l.contains("could not obtain a certificate from the ACME CA"));
        assert!(
            !failed && Instant::now() < deadline,
            "no `{message}` (failed: {failed}):\n{}\n--- Pebble:\n{}",
            logs.join("\n"),
            pebble.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Handshakes with `address` asking for `name`, trusting only `root_pem`; returns the leaf.
fn handshake(address: SocketAddr, name: &str, root_pem: &str) -> Result<CertificateDer<'static>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connection =
        ClientConnection::new(Arc::new(config), ServerName::try_from(name.to_owned()).unwrap()).unwrap();
    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).map_err(|e| e.to_string())?;
    }
    Ok(connection.peer_certificates().unwrap()[0].clone().into_owned())
}

fn issuer_of(leaf: &CertificateDer<'_>) -> String {
    x509_cert::Certificate::from_der(leaf.as_ref()).unwrap().tbs_certificate.issuer.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_obtained_by_tls_alpn_01_and_served_again_from_the_cache_after_a_restart() {
    // Pebble validates on the node's listening port, so the node listens on a port chosen first.
    let port = free_port();
    let pebble = Pebble::start(port).await;
    let config_dir = tempfile::tempdir().unwrap();
    let config = acme_config(config_dir.path(), &pebble).display().to_string();
    let env = vec![("CONFIDANT_CONFIG", config.clone()), ("CONFIDANT_LISTEN", format!("127.0.0.1:{port}"))];

    let app = spawn_app_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    wait_for_log(&app, &pebble, "installed a new certificate from the ACME CA").await;

    let root = pebble.issuing_root().await;
    let leaf = handshake(app.address, DOMAIN, &root).unwrap();
    assert!(issuer_of(&leaf).contains("Pebble"), "issued by {}", issuer_of(&leaf));
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(DOMAIN, app.address)
        .https_only(true)
        .build()
        .unwrap();
    let health = client.get(format!("https://{DOMAIN}:{port}/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    assert!(app.logs().iter().any(|l| l.contains("serving the development certificate until the CA issues one")));
    assert_eq!(pebble.orders(), 1);
    let cache = app.data_dir.path().join("acme");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    for file in std::fs::read_dir(&cache).unwrap() {
        let file = file.unwrap().path();
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    let (status, mut options) = app.into_parts_after("TERM");
    assert!(status.success());
    // Any port now: a node that ordered again could not be validated, and the test would fail.
    options.env = vec![("CONFIDANT_CONFIG", config)];
    let restarted = spawn_app_with(Backend::Sqlite, options).await;
    let served = handshake(restarted.address, DOMAIN, &root).unwrap();

    assert_eq!(served, leaf);
    let logs = restarted.logs();
    assert!(logs.iter().any(|l| l.contains("serving the cached ACME certificate")), "{}", logs.join("\n"));
    assert!(!logs.iter().any(|l| l.contains("ordering a certificate")), "{}", logs.join("\n"));
    assert_eq!(pebble.orders(), 1, "the restart placed a new order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_together_with_a_configured_certificate_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("both.toml");
    std::fs::write(
        &config,
        "[tls]\nmin_version = \"1.3\"\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\
         [tls.acme]\ndomains = [\"portal.example.org\"]\ncontact = \"mailto:it@example.org\"\n",
    )
    .unwrap();
    let mut command = crate::helpers::server_command(dir.path());
    command.arg("serve").env("CONFIDANT_CONFIG", &config);

    let (code, output) = crate::helpers::run_to_exit(command);

    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("tls.acme") && output.contains("tls.cert"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_the_ca_cannot_validate_is_logged_with_its_reason_and_retried_while_serving_the_stand_in() {
    // Pebble validates on a port where nothing listens: the node cannot prove the domain.
    let pebble = Pebble::start(free_port()).await;
    let config_dir = tempfile::tempdir().unwrap();
    let config = acme_config(config_dir.path(), &pebble).display().to_string();

    let app =
        spawn_app_with(Backend::Sqlite, Options { env: vec![("CONFIDANT_CONFIG", config)], ..Options::default() })
            .await;

    let deadline = Instant::now() + Duration::from_secs(90);
    let failure = loop {
        let logs = app.logs();
        if let Some(line) = logs.iter().find(|l| l.contains("could not obtain a certificate from the ACME CA")) {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(Instant::now() < deadline, "no failure logged:\n{}", logs.join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failure["level"], "ERROR");
    assert_eq!(failure["attempt"], 1);
    assert_eq!(failure["retry_in_secs"], 120);
    assert_eq!(failure["current_certificate_expires_at"], "none");
    let error = failure["error"].as_str().unwrap();
    assert!(error.contains("could not validate") && error.contains(DOMAIN) && error.contains("tls-alpn-01"), "{error}");
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(response.status().is_success(), "the development certificate is still served");
    assert!(
        !app.data_dir
            .path()
            .join("acme")
            .read_dir()
            .unwrap()
            .any(|f| { f.unwrap().file_name().to_string_lossy().starts_with("cert-") })
    );
}
