//! Pebble, Let's Encrypt's ACME test CA, for the ACME tests: Debian's `pebble` (installed by
//! `scripts/pebble`; a test fails if it cannot be), with `pebble-challtestsrv` as its DNS so any
//! name resolves to 127.0.0.1. Pebble validates TLS-ALPN-01 by connecting to the port it is
//! given, so the node under test must listen there. Real validation: `PEBBLE_VA_ALWAYS_VALID=0`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::client_trusting;

/// A running Pebble and its DNS.
pub struct Pebble {
    /// Pebble's ACME directory.
    pub directory_url: String,
    /// Pebble's own HTTPS certificate (self-signed): what `tls.acme.root_ca_file` names.
    pub https_cert: PathBuf,
    management: SocketAddr,
    children: Vec<Child>,
    output: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pebble {
    /// Starts Pebble validating TLS-ALPN-01 on 127.0.0.1:`validation_port`.
    pub async fn start(validation_port: u16) -> Self {
        install();
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let (https_cert, https_key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&https_cert, issued.cert.pem()).unwrap();
        std::fs::write(&https_key, issued.signing_key.serialize_pem()).unwrap();
        let (acme, management, dns, dns_management, http) =
            (free_port(), free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": https_cert,
            "privateKey": https_key,
            "httpPort": http,
            "tlsPort": validation_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_file = dir.path().join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();

        let output = Arc::new(Mutex::new(Vec::new()));
        // Every A query is answered 127.0.0.1 and AAAA not at all: the node listens on IPv4.
        let mut dns_server = Command::new("pebble-challtestsrv");
        dns_server
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
        let dns_server = spawn(&mut dns_server, &output);
        let mut pebble = Command::new("pebble");
        pebble
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0");
        let pebble = spawn(&mut pebble, &output);
        let mut started = Self {
            directory_url: format!("https://127.0.0.1:{acme}/dir"),
            https_cert,
            management: SocketAddr::from(([127, 0, 0, 1], management)),
            children: vec![dns_server, pebble],
            output,
            _dir: dir,
        };
        started.wait_until_serving(&[acme, management, dns_management]).await;
        started
    }

    /// The root of the chains Pebble issues (made anew at each start), PEM.
    pub async fn issuing_root(&self) -> String {
        let client = client_trusting(&self.https_cert);
        let response = client.get(format!("https://{}/roots/0", self.management)).send().await.unwrap();
        assert!(response.status().is_success(), "Pebble's /roots/0 answered {}", response.status());
        response.text().await.unwrap()
    }

    /// How many orders Pebble has accepted so far.
    pub fn orders(&self) -> usize {
        self.output.lock().unwrap().iter().filter(|l| l.contains("Added order")).count()
    }

    /// Everything Pebble and its DNS printed, for failure messages.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    async fn wait_until_serving(&mut self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok()) {
                return;
            }
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("Pebble exited with {status}:\n{}", self.output());
                }
            }
            assert!(Instant::now() < deadline, "Pebble did not start within 30 s:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Installs Pebble through `scripts/pebble --install`; never skips: a machine without it fails.
fn install() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pebble");
    let status = Command::new(script).arg("--install").status().expect("cannot run scripts/pebble");
    assert!(
        status.success(),
        "scripts/pebble could not install Pebble (Debian's `pebble` package): the ACME tests need it"
    );
}

/// Starts `command`, collecting its output lines.
fn spawn(command: &mut Command, output: &Arc<Mutex<Vec<String>>>) -> Child {
    let name = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} (scripts/pebble installs it): {e}"));
    let streams: [Option<Box<dyn std::io::Read + Send>>; 2] =
        [child.stdout.take().map(|s| Box::new(s) as _), child.stderr.take().map(|s| Box::new(s) as _)];
    for stream in streams.into_iter().flatten() {
        let (output, name) = (output.clone(), name.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("[{name}] {line}");
                }
                output.lock().unwrap().push(line);
            }
        });
    }
    child
}
