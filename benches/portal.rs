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

mod support;

use support::browser::{cpu_model, run_script};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (loads, changes, answers) = (knob("BENCH_LOADS", 10), knob("BENCH_CHANGES", 200), knob("BENCH_ANSWERS", 200));
    println!(
        "portal benchmark on {cores} cores ({}): server on core 0 (SQLite, embedded defaults), browser unpinned; \
         {loads} cold loads, {changes} schedule changes, {answers} autosaved answers",
        cpu_model()
    );
    let knobs = [
        ("BENCH_LOADS", loads.to_string()),
        ("BENCH_CHANGES", changes.to_string()),
        ("BENCH_ANSWERS", answers.to_string()),
    ];
    run_script("portal.py", &knobs).await;
}
