//! A browser test script (`tests/browser/*.py`, Python with Playwright driving Debian's
//! Chromium) run against a test server, either to its end or beside the test in turns.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::TestApp;

/// The Python interpreter with Playwright and axe-core (`scripts/browser-tools` installs them).
fn browser_python() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(format!("{root}/scripts/browser-tools")).output().unwrap();
    assert!(output.status.success(), "browser-tools: {}", String::from_utf8_lossy(&output.stderr));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A browser script running beside the test, which acts between its steps: the two take turns
/// through files in a directory of their own (`STEPS`), the script writing `NAME` when it is
/// ready for the test's step `NAME` or the test writing it when a step is done, and the other
/// waiting for it. The script is killed if the test fails first.
pub(crate) struct BrowserScript {
    script: String,
    child: std::process::Child,
    steps: tempfile::TempDir,
    output: Vec<std::thread::JoinHandle<String>>,
}

/// How long one side waits for the other's next step.
const STEP_WAIT: Duration = Duration::from_secs(120);

impl BrowserScript {
    /// Starts `tests/browser/{script}` against `app`.
    pub(crate) fn start(app: &TestApp, script: &str, env: &[(&str, String)]) -> Self {
        use std::io::Read;
        use std::process::Stdio;
        let root = env!("CARGO_MANIFEST_DIR");
        let shots =
            std::env::var("CARGO_TARGET_DIR").map_or_else(|_| PathBuf::from(root).join("target"), PathBuf::from);
        let steps = tempfile::tempdir().unwrap();
        let mut child = Command::new(browser_python())
            .arg(format!("{root}/tests/browser/{script}"))
            .env("CONFIDANT_URL", format!("https://{}", app.address))
            .env("SCREENSHOTS", shots.join("portal-screenshots"))
            .env("STEPS", steps.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut readers: Vec<Box<dyn Read + Send>> = Vec::new();
        readers.extend(child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>));
        readers.extend(child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>));
        let output = readers
            .into_iter()
            .map(|mut pipe| {
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = pipe.read_to_string(&mut text);
                    text
                })
            })
            .collect();
        Self { script: script.to_owned(), child, steps, output }
    }

    /// Whether the script wrote `step`; fails the test with its output if it ended without.
    pub(crate) fn wrote(&mut self, step: &str) -> bool {
        if self.steps.path().join(step).exists() {
            return true;
        }
        if let Some(status) = self.child.try_wait().unwrap() {
            self.fail(&format!("ended ({status}) before {step:?}"));
        }
        false
    }

    /// What the script wrote as `step`, once it has (polled every 50 ms, up to `STEP_WAIT`).
    pub(crate) async fn wait(&mut self, step: &str) -> String {
        let deadline = Instant::now() + STEP_WAIT;
        while !self.wrote(step) {
            if Instant::now() > deadline {
                self.fail(&format!("never wrote {step:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::read_to_string(self.steps.path().join(step)).unwrap()
    }

    /// Tells the script `step` is done, with `body` (written whole, then renamed into place).
    pub(crate) fn tell(&self, step: &str, body: &str) {
        let partial = self.steps.path().join(format!(".{step}.partial"));
        std::fs::write(&partial, body).unwrap();
        std::fs::rename(partial, self.steps.path().join(step)).unwrap();
    }

    /// Waits for the script to end; panics with its output unless it passed.
    pub(crate) fn finish(mut self) {
        let status = self.child.wait().unwrap();
        let text = self.output();
        assert!(status.success(), "{} failed:\n{text}", self.script);
    }

    fn output(&mut self) -> String {
        self.output.drain(..).map(|reader| reader.join().unwrap_or_default()).collect()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.output();
        panic!("{}: {why}:\n{text}", self.script);
    }
}

impl Drop for BrowserScript {
    fn drop(&mut self) {
        // A test that failed first leaves no browser behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
