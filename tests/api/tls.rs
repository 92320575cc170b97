//! Transport security: TLS 1.3 by default, TLS 1.2 only when configured, nothing older ever;
//! the development certificate is short-lived, says what it is, is generated once and reused
//! until it is due, then re-issued with the same key; a configured certificate is served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};

/// Handshakes with only `versions` offered; returns the negotiated version and the server's
/// leaf certificate, or the handshake error.
fn handshake(
    address: SocketAddr,
    trusted: &Path,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<(ProtocolVersion, CertificateDer<'static>), String> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(trusted).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut connection = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).map_err(|e| e.to_string())?;
    }
    let leaf = connection.peer_certificates().unwrap()[0].clone().into_owned();
    Ok((connection.protocol_version().unwrap(), leaf))
}

/// Sends a TLS 1.1 ClientHello (no supported_versions extension, so 1.1 is the client's best)
/// and returns the first record the server answers with.
fn tls11_client_hello(address: SocketAddr) -> Vec<u8> {
    let cipher_suites: &[u8] = &[0xc0, 0x13, 0xc0, 0x14, 0x00, 0x2f, 0x00, 0x35]; // ECDHE-RSA-AES-CBC, RSA-AES-CBC
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // empty session id
    body.extend_from_slice(&(cipher_suites.len() as u16).to_be_bytes());
    body.extend_from_slice(cipher_suites);
    body.extend_from_slice(&[1, 0]); // compression: null only
    let mut handshake = vec![0x01]; // ClientHello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02]; // handshake record, TLS 1.1
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);

    let mut socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket.write_all(&record).unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    answer
}

fn assert_refuses_tls11(address: SocketAddr) {
    let answer = tls11_client_hello(address);
    // A fatal alert record (content type 21), never a ServerHello (content type 22).
    assert_eq!(answer.first(), Some(&0x15), "expected an alert, got {answer:02x?}");
    assert_eq!(answer.get(5), Some(&2), "alert level must be fatal: {answer:02x?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_is_accepted() {
    let app = spawn_app(Backend::Sqlite).await;

    let (version, _) = handshake(app.address, &app.dev_cert(), &[&rustls::version::TLS13]).unwrap();

    assert_eq!(version, ProtocolVersion::TLSv1_3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_refused_unless_configured() {
    let app = spawn_app(Backend::Sqlite).await;

    let refused = handshake(app.address, &app.dev_cert(), &[&rustls::version::TLS12]);

    assert!(refused.is_err(), "TLS 1.2 was accepted by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_accepted_when_configured() {
    let min_version = ("CONFIDANT_TLS__MIN_VERSION", "1.2".to_owned());
    let app = spawn_app_with(Backend::Sqlite, Options { env: vec![min_version], ..Options::default() }).await;

    let (version, _) = handshake(app.address, &app.dev_cert(), &[&rustls::version::TLS12]).unwrap();

    assert_eq!(version, ProtocolVersion::TLSv1_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_by_default() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_refuses_tls11(app.address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_1_is_refused_even_when_tls_1_2_is_allowed() {
    let min_version = ("CONFIDANT_TLS__MIN_VERSION", "1.2".to_owned());
    let app = spawn_app_with(Backend::Sqlite, Options { env: vec![min_version], ..Options::default() }).await;
    assert_refuses_tls11(app.address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_certificate_is_generated_once_logged_and_reused() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, first_leaf) = handshake(app.address, &app.dev_cert(), &[&rustls::version::TLS13]).unwrap();
    let fingerprint = fingerprint(&first_leaf);
    let generated =
        app.logs().into_iter().find(|l| l.contains("generated a self-signed development certificate")).unwrap();
    assert!(generated.contains(&fingerprint), "the log line lacks the fingerprint: {generated}");
    assert!(generated.contains("dev-cert.pem"), "the log line lacks the path: {generated}");

    let (status, options) = app.into_parts_after("TERM");
    assert!(status.success());
    let restarted = spawn_app_with(Backend::Sqlite, options).await;
    let (_, second_leaf) = handshake(restarted.address, &restarted.dev_cert(), &[&rustls::version::TLS13]).unwrap();

    assert_eq!(first_leaf, second_leaf);
    assert!(!restarted.logs().iter().any(|l| l.contains("generated a self-signed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_certificate_is_served_instead_of_the_development_one() {
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    let env =
        vec![("CONFIDANT_TLS_CERT", cert.display().to_string()), ("CONFIDANT_TLS_KEY", key.display().to_string())];

    let app = spawn_app_with(Backend::Sqlite, Options { env, ..Options::default() }).await;
    let (_, leaf) = handshake(app.address, &cert, &[&rustls::version::TLS13]).unwrap();

    assert_eq!(leaf.as_ref(), issued.cert.der().as_ref());
    assert!(!app.dev_cert().exists(), "no development certificate is made when one is configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_certificate_is_short_lived_says_so_and_is_renewed_at_start_up_when_due() {
    const DAY_SECS: i64 = 86_400;
    let app = spawn_app(Backend::Sqlite).await;
    let (_, leaf) = handshake(app.address, &app.dev_cert(), &[&rustls::version::TLS13]).unwrap();
    let (issued, now) = (x509(&leaf), time::OffsetDateTime::now_utc().unix_timestamp());
    let (not_before, not_after) = validity(&issued);
    assert!(not_after - not_before <= 31 * DAY_SECS, "valid for {} days", (not_after - not_before) / DAY_SECS);
    assert!(not_after - now >= 29 * DAY_SECS);
    for name in [&issued.tbs_certificate.subject, &issued.tbs_certificate.issuer] {
        assert!(name.to_string().contains("development certificate - not for production"), "{name}");
    }
    let started = app.logs().into_iter().find(|l| l.contains("development certificate")).unwrap();
    assert!(started.contains("expires_at"), "the start-up line lacks the expiry: {started}");

    // Twenty-five days later (as the certificate sees it): five days left, inside the window.
    let (status, options) = app.into_parts_after("TERM");
    assert!(status.success());
    let dir = options.data_dir.as_ref().unwrap().path().join("tls");
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("dev-key.pem")).unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, confidant::tls::DEVELOPMENT_MARK);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(25);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let due = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("dev-cert.pem"), due.pem()).unwrap();

    let restarted = spawn_app_with(Backend::Sqlite, options).await;
    let (_, renewed) = handshake(restarted.address, &restarted.dev_cert(), &[&rustls::version::TLS13]).unwrap();

    assert_ne!(renewed.as_ref(), due.der().as_ref());
    assert!(validity(&x509(&renewed)).1 - now >= 29 * DAY_SECS);
    let public_key = |c: &x509_cert::Certificate| c.tbs_certificate.subject_public_key_info.subject_public_key.clone();
    assert_eq!(public_key(&x509(&renewed)), public_key(&issued), "renewal keeps the key");
    assert!(restarted.logs().iter().any(|l| l.contains("renewed the self-signed development certificate")));
}

fn x509(der: &CertificateDer<'_>) -> x509_cert::Certificate {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(der.as_ref()).unwrap()
}

/// Not before and not after, in seconds since the Unix epoch.
fn validity(cert: &x509_cert::Certificate) -> (i64, i64) {
    let secs = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    (secs(cert.tbs_certificate.validity.not_before), secs(cert.tbs_certificate.validity.not_after))
}

fn fingerprint(der: &CertificateDer<'_>) -> String {
    Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Sends `request` as raw bytes over TLS and returns everything the server answers until it
/// closes the connection.
fn raw_exchange(address: SocketAddr, trusted: &Path, request: &[u8]) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(trusted).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connection = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let socket = TcpStream::connect(address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, socket);
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer); // the server closes without close_notify: not our concern here
    answer
}

/// A request line HTTP/1 cannot parse is answered by actix-http itself, before any middleware,
/// with a bare 400 and a closed connection (docs/SECURITY.md says why it carries no request id or
/// security headers); it leaves no ERROR line in the log, since a client's garbage is not a
/// server fault. A request that parses still gets the sanitized JSON error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_line_gets_a_bare_400_and_no_error_log() {
    let app = spawn_app(Backend::Sqlite).await;
    for request in [
        &b"GET /\xff HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let answer = String::from_utf8_lossy(&raw_exchange(app.address, &app.dev_cert(), request)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 400 "), "{request:?}: {answer}");
        assert!(answer.to_lowercase().contains("content-length: 0"), "no body, so nothing echoed: {answer}");
    }
    let parsed = raw_exchange(
        app.address,
        &app.dev_cert(),
        b"GET /%ff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let parsed = String::from_utf8_lossy(&parsed);
    assert!(parsed.contains("\"request_id\"") && parsed.contains("content-security-policy"), "{parsed}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors: Vec<String> = app.logs().into_iter().filter(|l| l.contains("\"level\":\"ERROR\"")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
