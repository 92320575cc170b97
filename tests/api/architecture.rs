//! The structural rules of the code base, checked by reading the source tree (no build, no
//! server): no import circles between files, the transports apart and the composition root
//! imported by nobody, SQL only in storage files, and a client that speaks protocol types.
//! Each test fails with every violation, one line each, sorted.

mod imports;
mod lexer;
mod modules;
mod sql;
mod syntax;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use lexer::{Kind, tokenize};
use modules::{Crate, Target};

/// The source folders of the workspace's packages, each with its package's manifest.
const CRATES: [(&str, &str); 4] = [
    ("src", "Cargo.toml"),
    ("actors/src", "actors/Cargo.toml"),
    ("client/src", "client/Cargo.toml"),
    ("protocol/src", "protocol/Cargo.toml"),
];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `name` of a manifest's `[package]`.
fn package_name(manifest: &str) -> String {
    let text = fs::read_to_string(workspace().join(manifest)).expect("read the manifest");
    let package = text.split("[package]").nth(1).expect("a [package] table");
    let line = package.lines().find(|l| l.trim_start().starts_with("name")).expect("a package name");
    line.split('"').nth(1).expect("a quoted package name").to_owned()
}

fn crates() -> Vec<Crate> {
    CRATES.iter().map(|(src, manifest)| Crate::load(workspace(), src, &package_name(manifest))).collect()
}

/// Every `.rs` file under the source folders, relative to the workspace, sorted.
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read a source folder").map(|e| e.expect("a folder entry")) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for (src, _) in CRATES {
        walk(&workspace().join(src), &mut files);
    }
    let mut files: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(workspace()).expect("under the workspace").to_string_lossy().replace('\\', "/"))
        .collect();
    files.sort();
    files
}

/// What `check` finds in a file's tokens outside `#[cfg(test)]` items.
fn in_code<R>(file: &str, check: impl FnOnce(&[lexer::Token]) -> R) -> R {
    let source = fs::read_to_string(workspace().join(file)).expect("read a source file");
    check(&syntax::parse(&tokenize(&source)).code)
}

/// Fails with `rule` and every violation, one a line, ordered by file and line.
fn assert_none(rule: &str, mut violations: Vec<String>) {
    fn location(violation: &str) -> (&str, usize) {
        let mut parts = violation.splitn(3, ':');
        let file = parts.next().unwrap_or_default();
        (file, parts.next().and_then(|line| line.parse().ok()).unwrap_or(0))
    }
    violations.sort_by(|a, b| location(a).cmp(&location(b)).then_with(|| a.cmp(b)));
    violations.dedup();
    assert!(violations.is_empty(), "{rule}: {} violation(s)\n{}\n", violations.len(), violations.join("\n"));
}

#[test]
fn no_file_imports_itself_through_a_circle() {
    let mut report = Vec::new();
    for krate in crates() {
        for circle in imports::circles(&imports::edges(&krate)) {
            let mut lines = vec![format!("circle of {} files: {}", circle.files.len(), circle.files.join(", "))];
            // One line per tie (file -> file), each name with the lines that write it.
            let mut ties: BTreeMap<(&str, &str), BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
            for tie in &circle.ties {
                ties.entry((&tie.from, &tie.to)).or_default().entry(&tie.name).or_default().push(tie.line);
            }
            for ((from, to), names) in ties {
                let first = names.values().flatten().min().copied().unwrap_or_default();
                let names: Vec<String> = names
                    .iter()
                    .map(|(name, at)| {
                        format!("{name} ({})", at.iter().map(usize::to_string).collect::<Vec<_>>().join(", "))
                    })
                    .collect();
                lines.push(format!("  {from}:{first} -> {to}: {}", names.join(", ")));
            }
            report.push(lines.join("\n"));
        }
    }
    assert!(
        report.is_empty(),
        "files that import each other in a loop (break each circle: move what both sides need into a file of its own, \
         or turn one tie around): {} circle(s); each tie is `file:first line -> file: name (lines)`\n{}\n",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn transports_do_not_import_each_other() {
    let mut violations = Vec::new();
    for krate in crates().into_iter().filter(|k| k.lib_name == "confidant") {
        let top = |target: &Target| {
            let module = match target {
                Target::Module(m) | Target::Item(m, _) => &krate.modules[*m],
            };
            (module.root == krate.lib_root.unwrap_or(usize::MAX))
                .then(|| module.path.first().cloned().unwrap_or_default())
        };
        // One line per place: the names it takes from the other side.
        let mut found: BTreeMap<(String, usize, &str), BTreeSet<String>> = BTreeMap::new();
        for r in imports::references(&krate) {
            let file = &krate.modules[r.module].file;
            let rule = match top(&r.target).as_deref() {
                Some("ws") if file.starts_with("src/http/") => "src/http/ must not import src/ws/",
                Some("http") if file.starts_with("src/ws/") => "src/ws/ must not import src/http/",
                Some("server") if !matches!(file.as_str(), "src/main.rs" | "src/lib.rs" | "src/server.rs") => {
                    "only src/main.rs imports the composition root src/server.rs"
                }
                _ => continue,
            };
            let named = format!("{} ({})", r.written.join("::"), krate.file_of(&r.target));
            found.entry((file.clone(), r.line, rule)).or_default().insert(named);
        }
        for ((file, line, rule), named) in found {
            violations
                .push(format!("{file}:{line}: {rule}; names {}", named.into_iter().collect::<Vec<_>>().join(", ")));
        }
    }
    assert_none("transports and the composition root", violations);
}

#[test]
fn sql_lives_only_in_storage_files() {
    let mut violations = Vec::new();
    for file in source_files() {
        let allowed = file.starts_with("src/storage/") || file.ends_with("/store.rs") || file.contains("/store/");
        if allowed {
            continue;
        }
        let mut lines = in_code(&file, sql::sql_lines);
        lines.dedup();
        if let Some(first) = lines.first() {
            let all: Vec<String> = lines.iter().map(usize::to_string).collect();
            violations.push(format!(
                "{file}:{first}: SQL outside src/storage/ and store.rs files (lines {})",
                all.join(", ")
            ));
        }
    }
    assert_none("SQL lives in src/storage/, a store.rs or a store/ folder", violations);
}

#[test]
fn the_client_speaks_only_protocol_types() {
    let mut violations = Vec::new();
    for file in source_files().into_iter().filter(|f| f.starts_with("client/src/")) {
        in_code(&file, |code| {
            for (k, t) in code.iter().enumerate() {
                let next = |d: usize| code.get(k + d);
                if t.ident("json") && next(1).is_some_and(|n| n.punct("!")) {
                    violations.push(format!(
                        "{file}:{}: json! builds a frame by hand: use confidant_protocol's types",
                        t.line
                    ));
                }
                let indexes =
                    k > 0 && (code[k - 1].kind == Kind::Ident || code[k - 1].punct(")") || code[k - 1].punct("]"));
                if t.punct("[")
                    && indexes
                    && next(1).is_some_and(|n| n.is(Kind::Str, "type"))
                    && next(2).is_some_and(|n| n.punct("]"))
                {
                    violations.push(format!(
                        "{file}:{}: [\"type\"] reads a frame by hand: match on confidant_protocol's types",
                        t.line
                    ));
                }
            }
        });
    }
    assert_none("the client speaks only protocol types", violations);
}
