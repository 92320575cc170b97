//! What `audit verify` trusts and what it checks the chains against: it verifies against public
//! keys (pinned, or registered by the nodes) and never reads or makes a private key; witnesses
//! outside the audit store catch a tail deleted together with its checkpoints; the checkpoint
//! files and table must agree; the nodes of a practice verify each other's chains.

use confidant::audit::checkpoint::{Checkpoint, to_hex};
use confidant::audit::{Evidence, Problem, Witnesses, verify_trail};
use ed25519_dalek::SigningKey;

use crate::audit::{
    AuditFixture, audit_db, confidant, cut_the_tail_and_every_checkpoint_row, fixture, stopped_node, stored_rows,
};
use crate::helpers::{Backend, Options, python_tools, spawn_app_with};

/// The key the fixture's node signs with.
fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

async fn verify(f: &AuditFixture, pinned: &[SigningKey], witnesses: &Witnesses) -> confidant::audit::TrailReport {
    let evidence = Evidence {
        checkpoint_dir: f._dir.path().join("checkpoints"),
        witnesses,
        heads: Vec::new(),
        pinned: pinned.iter().map(SigningKey::verifying_key).collect(),
        local_chains: vec![f.node.to_string()],
    };
    verify_trail(&f.storage, evidence).await.unwrap()
}

fn witness_of(f: &AuditFixture) -> Witnesses {
    Witnesses::new([f._dir.path().join("witness")], None)
}

async fn a_chain_rewritten_and_re_signed_with_another_key_fails_against_the_pinned_key(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(12).await; // checkpoints at seq 5 and 10
    assert!(verify(&f, &[node_key()], &Witnesses::default()).await.broken.is_none());

    // The attacker changes entry 3, recomputes every hash after it, re-signs each checkpoint
    // with a key of their own (table and file) and registers that key.
    let forger = SigningKey::from_bytes(&[9; 32]);
    let mut rows = stored_rows(&f).await;
    rows[2].outcome = "denied".into();
    let mut statements = String::new();
    for i in 2..rows.len() {
        if i > 2 {
            rows[i].prev_hash = rows[i - 1].hash.clone();
        }
        rows[i].hash = rows[i].compute_hash().to_vec();
        statements.push_str(&format!(
            "UPDATE audit_entries SET outcome = '{}', prev_hash = {}, hash = {} WHERE seq = {};",
            rows[i].outcome,
            f.blob(&rows[i].prev_hash),
            f.blob(&rows[i].hash),
            rows[i].seq
        ));
    }
    f.tamper(&statements).await;
    let file = f._dir.path().join("checkpoints").join(format!("{}.checkpoints", f.node));
    let mut lines = String::new();
    let mut inserts = String::from("DELETE FROM audit_checkpoints;");
    for seq in [5, 10] {
        let row = &rows[seq as usize - 1];
        let hash: [u8; 32] = row.hash.clone().try_into().unwrap();
        let forged = Checkpoint::sign(&forger, &f.node.to_string(), row.as_head(), 1);
        assert_eq!(forged.hash, hash);
        lines.push_str(&format!("{}\n", forged.to_line()));
        inserts.push_str(&format!(
            "INSERT INTO audit_checkpoints (node_id, seq, hash, at_ms, signature) VALUES ('{}', {seq}, {}, 1, {});",
            f.node,
            f.blob(&hash),
            f.blob(&forged.signature)
        ));
    }
    std::fs::write(&file, lines).unwrap();
    f.tamper_checkpoints(&inserts).await;
    f.raw(&format!(
        "INSERT INTO audit_keys (public_key, node_id, registered_at_ms) VALUES ({}, '{}', 1);",
        f.blob(forger.verifying_key().as_bytes()),
        f.node
    ))
    .await;

    let pinned = verify(&f, &[node_key()], &Witnesses::default()).await;
    let broken = pinned.broken.clone().expect("the forged checkpoints are not the pinned key's");
    assert_eq!((broken.seq, broken.problem), (5, Problem::BadCheckpointSignature));
    assert!(pinned.basis()[0].contains(&to_hex(node_key().verifying_key().as_bytes())), "{:?}", pinned.basis());
    assert!(pinned.basis()[0].contains("(pinned)"));

    // The fixture's witness directory still holds the heads the node signed.
    let witnessed = verify(&f, &[node_key()], &witness_of(&f)).await;
    assert_eq!(witnessed.broken.map(|b| b.problem), Some(Problem::BadCheckpointSignature));

    // Trusting the audit store's own registry is trusting the attacker: the report says so.
    let unpinned = verify(&f, &[], &Witnesses::default()).await;
    assert!(unpinned.broken.is_none());
    assert!(!unpinned.pinned);
    assert!(unpinned.basis().iter().any(|l| l.contains("no key is pinned")), "{:?}", unpinned.basis());
}

async fn a_tail_deleted_with_every_checkpoint_covering_it_is_caught_by_a_witness(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(12).await; // checkpoints at seq 5 and 10, in the table, the file and the witness

    f.tamper("DELETE FROM audit_entries WHERE seq >= 8;").await;
    f.tamper_checkpoints("DELETE FROM audit_checkpoints WHERE seq >= 8;").await;
    let file = f._dir.path().join("checkpoints").join(format!("{}.checkpoints", f.node));
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| Checkpoint::from_line(l).unwrap().seq < 8)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, kept.concat()).unwrap();
    assert!(
        verify(&f, &[node_key()], &Witnesses::default()).await.broken.is_none(),
        "without a witness, the cut is consistent"
    );

    let report = verify(&f, &[node_key()], &witness_of(&f)).await;

    let broken = report.broken.clone().expect("the witness holds a head the chain no longer reaches");
    assert_eq!((broken.node_id, broken.seq, broken.problem), (f.node.to_string(), 8, Problem::Truncated));
    assert!(report.basis().iter().any(|l| l.contains("witness directory") && l.contains("2 checkpoint(s)")));
}

async fn the_checkpoint_file_and_table_must_agree(backend: Backend) {
    let f = fixture(backend).await;
    f.record_events(12).await; // checkpoints at seq 5 and 10
    let file = f._dir.path().join("checkpoints").join(format!("{}.checkpoints", f.node));
    let original = std::fs::read_to_string(&file).unwrap();

    let without_5: String = original.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, without_5).unwrap();
    let broken = verify(&f, &[node_key()], &Witnesses::default()).await.broken.unwrap();
    assert_eq!((broken.seq, broken.problem), (5, Problem::CheckpointMissingFromFile));

    std::fs::write(&file, original).unwrap();
    f.tamper_checkpoints("DELETE FROM audit_checkpoints WHERE seq = 5;").await;
    let broken = verify(&f, &[node_key()], &Witnesses::default()).await.broken.unwrap();
    assert_eq!((broken.seq, broken.problem), (5, Problem::CheckpointMissingFromTable));
}

crate::on_both_backends_actix!(
    a_chain_rewritten_and_re_signed_with_another_key_fails_against_the_pinned_key,
    a_tail_deleted_with_every_checkpoint_covering_it_is_caught_by_a_witness,
    the_checkpoint_file_and_table_must_agree,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_no_private_key_and_names_the_key_it_trusts() {
    let data_dir = stopped_node().await;
    let (_, public) = confidant(&data_dir, &["audit", "public-key"]);
    let public = public.trim().to_owned();
    let key_file = data_dir.path().join("audit-signing.key");
    std::fs::remove_file(&key_file).unwrap();

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);
    assert_eq!(code, Some(0), "the untouched trail verifies without the key file: {output}");
    assert!(output.contains(&format!("trusted key {public} (registered")), "{output}");
    assert!(output.contains("no key is pinned"), "{output}");
    assert!(!key_file.exists(), "verify made a key");

    let (code, output) = confidant(&data_dir, &["audit", "verify", "--trusted-key", &public]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains(&format!("trusted key {public} (pinned)")), "{output}");
    assert!(!output.contains("no key is pinned"), "{output}");

    let stranger = to_hex(SigningKey::from_bytes(&[3; 32]).verifying_key().as_bytes());
    let (code, output) = confidant(&data_dir, &["audit", "verify", "--trusted-key", &stranger]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("not signed by a trusted key"), "{output}");

    let (code, output) = confidant(&data_dir, &["audit", "verify", "--trusted-key", "not-a-key"]);
    assert_eq!(code, Some(2), "{output}");

    let (code, output) = confidant(&data_dir, &["audit", "public-key"]);
    assert_eq!(code, Some(1), "public-key reads the key, never makes one: {output}");
    assert!(!key_file.exists());
}

/// The node's seal also writes the main store's witness table: deleting the newest entry, every
/// checkpoint row and the checkpoint files still leaves the head there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_store_witnesses_the_head_of_a_node_whose_checkpoints_were_all_deleted() {
    let data_dir = stopped_node().await;
    cut_the_tail_and_every_checkpoint_row(&data_dir).await;
    std::fs::remove_dir_all(data_dir.path().join("audit-checkpoints")).unwrap();

    let (code, output) = confidant(&data_dir, &["audit", "verify"]);

    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("the main store's witness table: 1 checkpoint(s)"), "{output}");
    assert!(output.contains("broken at seq 2") && output.contains("truncated"), "{output}");
}

/// A configured witness directory that is missing (not mounted) fails verification rather
/// than passing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_witness_directory_is_an_error_not_a_pass() {
    let data_dir = stopped_node().await;
    let missing = data_dir.path().join("not-mounted");
    let (code, output) = confidant(&data_dir, &["audit", "verify", "--witness", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("not-mounted cannot be read"), "{output}");
}

/// Two nodes on one PostgreSQL each sign their chain with their own key; each registers it, so
/// verification from either node's data directory finds both chains intact out of the box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_verify_each_others_chains() {
    let a = spawn_app_with(Backend::Postgres, Options::default()).await;
    let shared = (a.main_db.as_ref().unwrap().url(), a.audit_db.as_ref().unwrap().url());
    let mut b =
        spawn_app_with(Backend::Postgres, Options { shared_databases: Some(shared), ..Default::default() }).await;
    assert!(b.stop_with("TERM").success());
    let (a_key, b_key) = (a.cli(&["audit", "public-key"], "").1, b.cli(&["audit", "public-key"], "").1);
    assert_ne!(a_key.trim(), b_key.trim(), "each node has its own key");

    for node in [&a, &b] {
        let (code, output) = a.cli_in(node.data_dir.path(), &["audit", "verify"]);
        assert_eq!(code, Some(0), "{output}");
        assert!(output.contains("2 chain(s)"), "{output}");
        assert!(output.contains(a_key.trim()) && output.contains(b_key.trim()), "{output}");
    }
    let both = format!("--trusted-key={}", a_key.trim());
    let (code, output) = a.cli(&["audit", "verify", &both, "--trusted-key", b_key.trim()], "");
    assert_eq!(code, Some(0), "both pinned: {output}");
    let (code, output) = a.cli(&["audit", "verify", &both], "");
    assert_eq!(code, Some(1), "B's chain is not signed by A's key alone: {output}");
}

/// A verifier's verdict: `None` for intact, else (node, seq, problem).
type Verdict = Option<(String, i64, String)>;

/// The verdicts of `confidant audit verify` and of tests/tools/audit_verifier.py (written from
/// docs/AUDIT.md alone) on one trail: `None` for intact, else (node, seq, problem) in the
/// verifier's words.
fn verdicts(data_dir: &tempfile::TempDir, trusted: &str) -> (Verdict, Verdict) {
    let (code, output) = confidant(data_dir, &["audit", "verify", "--trusted-key", trusted]);
    let ours = match code {
        Some(0) => None,
        Some(1) => {
            let line = output.lines().find(|l| l.starts_with("AUDIT TRAIL TAMPERED")).expect(&output);
            let node = line.split("chain of node ").nth(1).unwrap().split(' ').next().unwrap().to_owned();
            let seq = line.split("broken at seq ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
            let problem = [
                ("does not match its hash", "altered"),
                ("is missing before it", "missing"),
                ("does not match the entry before it", "broken_link"),
                ("truncated", "truncated"),
                ("chain was rewritten", "checkpoint_mismatch"),
                ("not signed by a trusted key", "untrusted_signature"),
                ("checkpoint file does not hold", "missing_from_file"),
                ("checkpoint table does not hold", "missing_from_table"),
            ]
            .iter()
            .find(|(words, _)| line.contains(words))
            .map(|(_, name)| (*name).to_owned())
            .expect(line);
            Some((node, seq, problem))
        }
        _ => panic!("{output}"),
    };
    let local: Vec<String> = ["node-id", "cli-node-id"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(data_dir.path().join(f)).ok())
        .flat_map(|id| ["--local".to_owned(), id.trim().to_owned()])
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/audit_verifier.py");
    let out = std::process::Command::new(python_tools())
        .arg(script)
        .arg("--db")
        .arg(data_dir.path().join("audit.db"))
        .arg("--checkpoints")
        .arg(data_dir.path().join("audit-checkpoints"))
        .args(["--trusted-key", trusted])
        .args(local)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("intact") || text.starts_with("broken"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let theirs = text.strip_prefix("broken ").map(|rest| {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        (parts[0].to_owned(), parts[1].parse().unwrap(), parts[2].to_owned())
    });
    (ours, theirs)
}

/// A trail with two chains (the node's: start and stop; the command line's: two exports), at rest.
async fn trail() -> (tempfile::TempDir, String) {
    let data_dir = stopped_node().await;
    for _ in 0..2 {
        let (code, output) =
            confidant(&data_dir, &["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01"]);
        assert_eq!(code, Some(0), "{output}");
    }
    let key = confidant(&data_dir, &["audit", "public-key"]).1.trim().to_owned();
    (data_dir, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_written_from_the_document_agrees() {
    let node_of =
        |dir: &tempfile::TempDir| std::fs::read_to_string(dir.path().join("node-id")).unwrap().trim().to_owned();

    let (intact, key) = trail().await;
    assert_eq!(verdicts(&intact, &key), (None, None), "both find the untouched trail intact");

    let stranger = to_hex(SigningKey::from_bytes(&[3; 32]).verifying_key().as_bytes());
    let (ours, theirs) = verdicts(&intact, &stranger);
    assert_eq!(ours, theirs, "an untrusted key");
    assert_eq!(ours.unwrap().2, "untrusted_signature");

    let tampering: [(&str, &str, Option<&str>); 4] = [
        (
            "changed",
            "DROP TRIGGER audit_entries_refuse_update; UPDATE audit_entries SET outcome = 'denied' WHERE seq = 1 AND node_id = '{node}';",
            Some("altered"),
        ),
        (
            "deleted",
            "DROP TRIGGER audit_entries_refuse_delete; DELETE FROM audit_entries WHERE seq = 1 AND node_id = '{node}';",
            Some("missing"),
        ),
        (
            "truncated",
            "DROP TRIGGER audit_entries_refuse_delete; DROP TRIGGER audit_checkpoints_refuse_delete; DELETE FROM audit_entries WHERE seq = 2 AND node_id = '{node}'; DELETE FROM audit_checkpoints WHERE node_id = '{node}';",
            Some("truncated"),
        ),
        (
            "row removed",
            "DROP TRIGGER audit_checkpoints_refuse_delete; DELETE FROM audit_checkpoints WHERE node_id = '{cli}' AND seq = 1;",
            Some("missing_from_table"),
        ),
    ];
    for (what, sql, expected) in tampering {
        let (dir, key) = trail().await;
        let mut c = audit_db(&dir).await;
        let cli = std::fs::read_to_string(dir.path().join("cli-node-id")).unwrap().trim().to_owned();
        let sql = sql.replace("{node}", &node_of(&dir)).replace("{cli}", &cli);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        drop(c);
        let (ours, theirs) = verdicts(&dir, &key);
        assert_eq!(ours, theirs, "{what}: the document's verifier and ours disagree");
        assert_eq!(ours.map(|b| b.2).as_deref(), expected, "{what}");
    }

    let (dir, key) = trail().await;
    let cli = std::fs::read_to_string(dir.path().join("cli-node-id")).unwrap().trim().to_owned();
    std::fs::remove_file(dir.path().join("audit-checkpoints").join(format!("{cli}.checkpoints"))).unwrap();
    let (ours, theirs) = verdicts(&dir, &key);
    assert_eq!(ours, theirs, "a checkpoint file removed");
    assert_eq!(ours.map(|b| (b.1, b.2)), Some((1, "missing_from_file".to_owned())));
}

/// Every file a node and the command line create in the data directory is owner-only (0600),
/// every directory 0700, even when started with a permissive umask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_in_the_data_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (data_dir, _) = trail().await; // a node started and stopped, then two audited exports
    let mut seen = Vec::new();
    let mut stack = vec![data_dir.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
                seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for expected in ["confidant.db", "audit.db", "node-id", "cli-node-id", "audit-signing.key", "master.key"] {
        assert!(seen.iter().any(|f| f == expected), "{expected} not in {seen:?}");
    }
    assert!(seen.iter().any(|f| f.ends_with(".checkpoints")), "{seen:?}");
}
