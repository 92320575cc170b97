//! Sign-in cost benchmark: argon2id at the OWASP parameters per hash and per verify, an
//! unknown account's dummy verify against a wrong password's (they must cost the same), and
//! verifies per second through the bounded blocking pool under a burst. Prints its figures;
//! not a test. Run with `cargo bench --bench identity`.
#![allow(clippy::print_stdout, clippy::expect_used)] // a program that prints figures; set-up failures abort it

use std::time::{Duration, Instant};

use confidant::identity::password::PasswordHasher;
use futures_util::future::join_all;

const SAMPLES: u32 = 20;
const BURST: usize = 64;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("sign-in cost benchmark on {cores} cores (argon2id m=19456 KiB, t=2, p=1)");
        let hasher = PasswordHasher::new(cores);
        let stored = hasher.hash("a long unremarkable passphrase 42").await.expect("hash");
        let _ = hasher.verify_or_dummy("warm-up", None).await;

        let mean = |total: Duration| total / SAMPLES;
        let t = Instant::now();
        for _ in 0..SAMPLES {
            hasher.hash("a long unremarkable passphrase 42").await.expect("hash");
        }
        println!("[argon2id] hash: {:.1?} per password", mean(t.elapsed()));

        let (mut wrong, mut unknown) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            assert!(!hasher.verify_or_dummy("wrong password 12345", Some(&stored)).await.expect("verify"));
            wrong += t.elapsed();
            let t = Instant::now();
            assert!(!hasher.verify_or_dummy("wrong password 12345", None).await.expect("verify"));
            unknown += t.elapsed();
        }
        println!(
            "[sign-in] wrong password {:.1?}, unknown account {:.1?} (ratio {:.2})",
            mean(wrong),
            mean(unknown),
            unknown.as_secs_f64() / wrong.as_secs_f64()
        );

        let t = Instant::now();
        let checks = (0..BURST).map(|_| hasher.verify("a long unremarkable passphrase 42", &stored));
        let ok = join_all(checks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        let took = t.elapsed();
        println!(
            "[burst] {ok}/{BURST} concurrent sign-ins verified in {took:.2?}: {:.0} verifies/s with {cores} at a time",
            BURST as f64 / took.as_secs_f64()
        );
    });
}
