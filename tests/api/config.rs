//! Bad configuration stops start-up with exit code 2 and a message naming the key; the help
//! texts explain the commands.

use crate::helpers::{run_to_exit, server_command};

/// Runs `confidant serve` with one extra variable and returns (exit code, output).
fn serve_with(key: &str, value: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    command.arg("serve").env(key, value);
    run_to_exit(command)
}

fn assert_rejected(key: &str, value: &str, names: &str) {
    let (code, output) = serve_with(key, value);
    assert_eq!(code, Some(2), "{key}={value}: {output}");
    assert!(output.contains(names), "{key}={value}: the message should name {names}: {output}");
    assert!(!output.contains("panicked") && !output.contains("stack backtrace"), "{output}");
}

#[test]
fn a_listen_value_that_is_not_an_address_is_rejected() {
    assert_rejected("CONFIDANT_LISTEN", "localhost-port-8443", "`listen`");
}

#[test]
fn a_database_url_that_is_not_postgres_is_rejected() {
    assert_rejected("CONFIDANT_DATABASE_URL", "mysql://root@127.0.0.1/confidant", "`database_url`");
}

#[test]
fn a_remote_database_without_tls_is_rejected_and_its_password_not_echoed() {
    let (code, output) = serve_with("CONFIDANT_AUDIT_DATABASE_URL", "postgres://audit:s3cret-pw@db.example.org/audit");
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("`audit_database_url`") && output.contains("sslmode"), "{output}");
    assert!(!output.contains("s3cret-pw"), "{output}");
}

#[test]
fn a_tls_version_older_than_1_2_is_rejected() {
    assert_rejected("CONFIDANT_TLS__MIN_VERSION", "1.0", "`tls.min_version`");
}

#[test]
fn a_missing_certificate_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    let missing = dir.path().join("missing.pem");
    command.arg("serve").env("CONFIDANT_TLS_CERT", &missing).env("CONFIDANT_TLS_KEY", &missing);

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("`tls.cert`"), "{output}");
}

#[test]
fn an_unknown_key_is_rejected() {
    assert_rejected("CONFIDANT_HTTP__MAX_BODY", "10", "max_body");
}

#[test]
fn an_unreadable_config_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(dir.path());
    command.args(["--config", "/nonexistent/confidant.toml", "serve"]);

    let (code, output) = run_to_exit(command);

    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("--config"), "{output}");
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, top) = run_to_exit({
        let mut c = server_command(dir.path());
        c.arg("--help");
        c
    });
    assert_eq!(code, Some(0));
    for expected in ["serve", "migrate", "--config", "CONFIDANT_DATABASE_URL"] {
        assert!(top.contains(expected), "`confidant --help` lacks {expected}: {top}");
    }
    for (command, expected) in [("serve", "SIGTERM"), ("migrate", "migrations")] {
        let (code, help) = run_to_exit({
            let mut c = server_command(dir.path());
            c.args([command, "--help"]);
            c
        });
        assert_eq!(code, Some(0));
        assert!(help.contains(expected), "`confidant {command} --help` lacks {expected}: {help}");
    }
}
