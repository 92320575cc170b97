//! A real SMTP server for the reminder tests: `scripts/smtp-test-server` (aiosmtpd) on loopback
//! with a certificate made here, writing every accepted message to a directory; and GnuPG in a
//! throw-away home for OpenPGP keys and decryption.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running test SMTP server.
pub struct SmtpServer {
    pub port: u16,
    /// Its certificate (also the CA file the client trusts).
    pub cert: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

/// A message the server accepted.
pub struct Received {
    pub raw: String,
    pub meta: serde_json::Value,
}

impl SmtpServer {
    /// Starts one; `mode` is `starttls`, `implicit` or `plain` (no TLS offered at all).
    pub fn start(mode: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let maildir = dir.path().join("mail");
        std::fs::create_dir(&maildir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/smtp-test-server");
        let mut child = Command::new(script)
            .args(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
            .args(["--maildir", maildir.to_str().unwrap(), "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("the test SMTP server did not start");
        let port = line.strip_prefix("PORT ").unwrap().trim().parse().unwrap();
        Self { port, cert, dir, child }
    }

    /// `smtp://127.0.0.1:PORT?tls=required` (STARTTLS) or `smtps://` for implicit TLS.
    pub fn url(&self, implicit: bool) -> String {
        if implicit {
            format!("smtps://127.0.0.1:{}", self.port)
        } else {
            format!("smtp://127.0.0.1:{}?tls=required", self.port)
        }
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let maildir = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&maildir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let meta = std::fs::read_to_string(eml.with_extension("json")).unwrap();
                Received { raw: std::fs::read_to_string(&eml).unwrap(), meta: serde_json::from_str(&meta).unwrap() }
            })
            .collect()
    }

    /// Waits (at most 30 s) until `n` messages were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(Instant::now() < deadline, "expected {n} messages, got {}", received.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GnuPG home with one key pair (ed25519 + cv25519), for `uid`.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    pub fn with_key(uid: &str) -> Self {
        Self::generated(&["--quick-gen-key", uid, "future-default", "default", "never"])
    }

    /// A key made in 2020 that expired a day later.
    pub fn with_expired_key(uid: &str) -> Self {
        Self::generated(&[
            "--faked-system-time",
            "20200101T000000",
            "--quick-gen-key",
            uid,
            "future-default",
            "default",
            "1d",
        ])
    }

    fn generated(args: &[&str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let gpg = Self { home };
        let out = gpg.run(&[&["--passphrase", ""], args].concat(), None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        gpg
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The public key, ASCII-armored.
    pub fn public_key(&self) -> String {
        let out = self.run(&["--armor", "--export"], None);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    /// `gpg --batch --decrypt` of an armored message; `None` if it does not decrypt.
    pub fn decrypt(&self, armored: &str) -> Option<String> {
        let out = self.run(&["--decrypt"], Some(armored));
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The armored OpenPGP message inside a raw email.
pub fn armored_block(raw: &str) -> String {
    let start = raw.find("-----BEGIN PGP MESSAGE-----").expect("no PGP message in the email");
    let end = raw.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
    raw[start..end].replace("\r\n", "\n")
}
