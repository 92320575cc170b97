//! The file -> file import graph of one crate, and its circles (strongly connected components of
//! more than one file). An edge goes to the file that defines the item a path names, followed
//! through re-exports; a `pub use` that the re-exporting file does not itself use forwards, and
//! ties nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::modules::{Crate, Target};

/// A path written in a file (in a `use` or in code) that names something of its own crate.
pub struct Reference {
    pub module: usize,
    pub line: usize,
    /// The path as written.
    pub written: Vec<String>,
    pub target: Target,
    pub how: How,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum How {
    /// `use path as binding;`, `pub` or not.
    Use { binding: String, public: bool },
    /// `use path::*;`, `pub` or not.
    Glob { public: bool },
    /// A path written in code.
    Code,
}

/// Every reference of the crate's modules (outside `#[cfg(test)]`) to its own modules and items.
pub fn references(krate: &Crate) -> Vec<Reference> {
    let mut out = Vec::new();
    for (module, m) in krate.modules.iter().enumerate() {
        for u in &m.syntax.uses {
            let Some(target) = krate.resolve(module, &u.path) else { continue };
            let how = match &u.binding {
                Some(binding) => How::Use { binding: binding.clone(), public: u.public },
                None => How::Glob { public: u.public },
            };
            out.push(Reference { module, line: u.line, written: u.path.clone(), target, how });
        }
        for p in &m.syntax.paths {
            let first = p.segments[0].as_str();
            let names_module = matches!(first, "crate" | "self" | "super")
                || first == krate.lib_name
                || matches!(krate.lookup(module, first, true, true, &mut Vec::new()), Some(Target::Module(_)));
            if !names_module {
                continue;
            }
            let Some(target) = krate.resolve(module, &p.segments) else { continue };
            out.push(Reference { module, line: p.line, written: p.segments.clone(), target, how: How::Code });
        }
    }
    out
}

/// One name that ties one file to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub name: String,
    pub line: usize,
}

/// The import edges between different files of the crate.
pub fn edges(krate: &Crate) -> Vec<Edge> {
    let references = references(krate);
    let mut out = BTreeSet::new();
    // A `use` of a module counts through the paths that then go through its alias; one whose
    // alias no path uses counts as an edge to the module's file.
    let mut aliases_used: BTreeSet<(usize, String)> = BTreeSet::new();
    for r in references.iter().filter(|r| r.how == How::Code) {
        aliases_used.insert((r.module, r.written[0].clone()));
    }
    for r in &references {
        let m = &krate.modules[r.module];
        let mut line = r.line;
        let name = match (&r.how, &r.target) {
            (How::Use { binding, public }, Target::Module(_)) => {
                if *public || same_file_alias_used(krate, &aliases_used, r.module, binding) {
                    continue;
                }
                binding.clone()
            }
            // A re-export ties its file only where that file's own code uses the name.
            (How::Use { binding, public: true }, Target::Item(_, item)) => match first_use(krate, &m.file, binding) {
                Some(used_at) => {
                    line = used_at;
                    item.clone()
                }
                None => continue,
            },
            (How::Use { .. } | How::Code, Target::Item(_, item)) => item.clone(),
            (How::Code, Target::Module(_)) => r.written.last().cloned().unwrap_or_default(),
            (How::Glob { public: true }, _) => continue,
            (How::Glob { public: false }, _) => "*".to_owned(),
        };
        let to = krate.file_of(&r.target);
        if to != m.file {
            out.insert(Edge { from: m.file.clone(), to: to.to_owned(), name, line });
        }
    }
    out.into_iter().collect()
}

/// Whether a code path in any module of `module`'s file starts with `alias`.
fn same_file_alias_used(krate: &Crate, used: &BTreeSet<(usize, String)>, module: usize, alias: &str) -> bool {
    let file = &krate.modules[module].file;
    used.iter().any(|(m, a)| a == alias && &krate.modules[*m].file == file)
}

/// The first line where code (not a `use`) in `file` writes `name`.
fn first_use(krate: &Crate, file: &str, name: &str) -> Option<usize> {
    krate.modules.iter().filter(|m| m.file == file).filter_map(|m| m.syntax.idents.get(name).copied()).min()
}

/// Files that import each other in a loop, with the edges between them.
pub struct Circle {
    pub files: Vec<String>,
    pub ties: Vec<Edge>,
}

/// The strongly connected components of more than one file (Tarjan's algorithm).
pub fn circles(edges: &[Edge]) -> Vec<Circle> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
        graph.entry(&e.to).or_default();
    }
    let nodes: Vec<&str> = graph.keys().copied().collect();
    let index_of: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let successors: Vec<Vec<usize>> = nodes.iter().map(|n| graph[n].iter().map(|s| index_of[s]).collect()).collect();
    let components = tarjan(&successors);
    let mut out: Vec<Circle> = components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut files: Vec<String> = c.iter().map(|&i| nodes[i].to_owned()).collect();
            files.sort();
            let ties = edges.iter().filter(|e| files.contains(&e.from) && files.contains(&e.to)).cloned().collect();
            Circle { files, ties }
        })
        .collect();
    out.sort_by(|a, b| (a.files.len(), &a.files).cmp(&(b.files.len(), &b.files)));
    out
}

fn tarjan(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        successors: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for k in 0..s.successors[v].len() {
            let w = s.successors[v][k];
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let n = successors.len();
    let mut s = State {
        successors,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.components
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::{circles, edges};
    use crate::architecture::modules::Crate;

    /// The circles of a crate made of `files` (path, source) under `src/`.
    fn circles_of(files: &[(&str, &str)]) -> Vec<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        for (path, source) in files {
            let path = dir.path().join("src").join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, source).unwrap();
        }
        let krate = Crate::load(dir.path(), "src", "demo");
        circles(&edges(&krate)).into_iter().map(|c| c.files).collect()
    }

    #[test]
    fn a_circle_runs_through_the_defining_files_not_the_mod_rs_that_re_exports() {
        let found = circles_of(&[
            ("lib.rs", "mod a;\nmod b;\npub use a::Thing;\n"),
            ("a/mod.rs", "mod inner;\npub use inner::*;\n"),
            ("a/inner.rs", "pub struct Thing;\npub fn other() -> crate::b::Other { crate::b::Other }\n"),
            ("b.rs", "use crate::a;\npub struct Other;\npub fn thing() -> a::Thing { crate::Thing }\n"),
        ]);
        assert_eq!(found, vec![vec!["src/a/inner.rs".to_owned(), "src/b.rs".to_owned()]]);
    }

    #[test]
    fn re_exports_comments_strings_and_tests_tie_nothing() {
        let found = circles_of(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a/mod.rs", "mod one;\npub use one::One;\n"),
            ("a/one.rs", "// crate::b::Two\npub struct One;\nconst S: &str = \"crate::b::Two\";\n"),
            (
                "b.rs",
                "pub use crate::a::One;\npub struct Two(crate::a::One);\n#[cfg(test)]\nmod tests {\n    use crate::b::*;\n}\n",
            ),
            ("c.rs", "#[cfg(test)]\nmod tests { use crate::b::Two; }\n"),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }
}
