//! One crate's module tree, read from its files (`mod x;` -> x.rs or x/mod.rs, inline modules),
//! and name resolution over it: a path is followed through `use` and `pub use` (globs too) to
//! the module or the file that defines the item it names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::lexer::tokenize;
use super::syntax::{ModuleSyntax, parse};

/// A module of the crate: a file's own module or an inline one.
pub struct Module {
    /// Its path from the crate root (`["http", "auth"]`); empty for a root.
    pub path: Vec<String>,
    /// The file it is written in, relative to the workspace root with `/` separators.
    pub file: String,
    pub parent: Option<usize>,
    /// The root this module hangs from: the library's, or a binary's own.
    pub root: usize,
    pub children: BTreeMap<String, usize>,
    pub syntax: ModuleSyntax,
}

/// What a path leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Module(usize),
    /// An item, by the module that defines it and its name. A name that a module does not
    /// visibly define (made by a macro, say) is taken to be defined by that module.
    Item(usize, String),
}

/// The library and binary targets of one package.
pub struct Crate {
    /// The name other targets of the package use for the library (`confidant_client`).
    pub lib_name: String,
    pub lib_root: Option<usize>,
    pub modules: Vec<Module>,
}

impl Crate {
    /// Reads the package whose sources are in `src_dir` (relative to `workspace`): `lib.rs`,
    /// `main.rs` and `bin/*.rs`, and every module they declare.
    pub fn load(workspace: &Path, src_dir: &str, lib_name: &str) -> Crate {
        let mut krate = Crate { lib_name: lib_name.replace('-', "_"), lib_root: None, modules: Vec::new() };
        let lib = format!("{src_dir}/lib.rs");
        if workspace.join(&lib).is_file() {
            krate.lib_root = Some(krate.load_file(workspace, &lib, None, Vec::new()));
        }
        let mut roots = vec![format!("{src_dir}/main.rs")];
        if let Ok(entries) = fs::read_dir(workspace.join(src_dir).join("bin")) {
            let mut bins: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".rs"))
                .map(|name| format!("{src_dir}/bin/{name}"))
                .collect();
            bins.sort();
            roots.extend(bins);
        }
        for root in roots.into_iter().filter(|r| workspace.join(r).is_file()) {
            krate.load_file(workspace, &root, None, Vec::new());
        }
        krate
    }

    /// Reads one file as the module at `path` under `parent`, and the modules it declares.
    fn load_file(&mut self, workspace: &Path, file: &str, parent: Option<usize>, path: Vec<String>) -> usize {
        let source = fs::read_to_string(workspace.join(file)).unwrap_or_default();
        let syntax = parse(&tokenize(&source));
        let is_root_or_mod_rs = parent.is_none() || file.ends_with("/mod.rs");
        let dir = if is_root_or_mod_rs {
            file.rsplit_once('/').map_or(String::new(), |(d, _)| d.to_owned())
        } else {
            file.trim_end_matches(".rs").to_owned()
        };
        let mut ids: Vec<usize> = Vec::new();
        let mut dirs: Vec<String> = Vec::new();
        for module in syntax.modules {
            let id = self.modules.len();
            let (module_parent, module_path, module_dir) = match module.parent {
                None => (parent, path.clone(), dir.clone()),
                Some(p) => {
                    let mut inner = self.modules[ids[p]].path.clone();
                    inner.push(module.name.clone());
                    (Some(ids[p]), inner, format!("{}/{}", dirs[p], module.name))
                }
            };
            let root = module_parent.map_or(id, |p| self.modules[p].root);
            if let Some(p) = module_parent {
                let name = if module.parent.is_none() {
                    path.last().cloned().unwrap_or_default()
                } else {
                    module.name.clone()
                };
                self.modules[p].children.insert(name, id);
            }
            self.modules.push(Module {
                path: module_path,
                file: file.to_owned(),
                parent: module_parent,
                root,
                children: BTreeMap::new(),
                syntax: module,
            });
            ids.push(id);
            dirs.push(module_dir);
        }
        for (k, &id) in ids.iter().enumerate() {
            let names = self.modules[id].syntax.file_children.clone();
            for name in names {
                let flat = format!("{}/{name}.rs", dirs[k]);
                let nested = format!("{}/{name}/mod.rs", dirs[k]);
                let child_file = if workspace.join(&flat).is_file() { flat } else { nested };
                let mut child_path = self.modules[id].path.clone();
                child_path.push(name.clone());
                self.load_file(workspace, &child_file, Some(id), child_path);
            }
        }
        ids[0]
    }

    /// The file a target is written in.
    pub fn file_of(&self, target: &Target) -> &str {
        match target {
            Target::Module(m) | Target::Item(m, _) => &self.modules[*m].file,
        }
    }

    /// What `segments`, written in module `from`, lead to; `None` for other crates and `std`.
    pub fn resolve(&self, from: usize, segments: &[String]) -> Option<Target> {
        self.resolve_guarded(from, segments, &mut Vec::new())
    }

    fn resolve_guarded(&self, from: usize, segments: &[String], guard: &mut Vec<(usize, String)>) -> Option<Target> {
        let first = segments.first()?;
        let (mut current, mut rest) = match first.as_str() {
            "crate" => (Target::Module(self.modules[from].root), &segments[1..]),
            "self" => (Target::Module(from), &segments[1..]),
            "super" => {
                let mut module = from;
                let mut k = 0;
                while segments.get(k).is_some_and(|s| s == "super") {
                    module = self.modules[module].parent?;
                    k += 1;
                }
                (Target::Module(module), &segments[k..])
            }
            name if name == self.lib_name => (Target::Module(self.lib_root?), &segments[1..]),
            name => (self.lookup(from, name, segments.len() > 1, true, guard)?, &segments[1..]),
        };
        while let (Target::Module(module), Some((segment, tail))) = (&current, rest.split_first()) {
            let found = self.lookup(*module, segment, !tail.is_empty(), false, guard);
            current = found.unwrap_or_else(|| Target::Item(*module, segment.clone()));
            rest = tail;
        }
        Some(current)
    }

    /// What `name` means inside `module`: a child module, an item, a `use` binding, or a name
    /// a glob brings in. `local` also admits `use`s written inside the module's functions.
    pub fn lookup(
        &self,
        module: usize,
        name: &str,
        want_module: bool,
        local: bool,
        guard: &mut Vec<(usize, String)>,
    ) -> Option<Target> {
        let key = (module, name.to_owned());
        if guard.contains(&key) {
            return None;
        }
        guard.push(key);
        let m = &self.modules[module];
        let child = m.children.get(name).map(|&c| Target::Module(c));
        let item = (m.syntax.items.contains(name) && child.is_none()).then(|| Target::Item(module, name.to_owned()));
        let visible = |u: &&super::syntax::UseEntry| u.module_level || local;
        let mut via_use = || {
            m.syntax
                .uses
                .iter()
                .filter(visible)
                .filter(|u| u.binding.as_deref() == Some(name))
                .find_map(|u| self.resolve_guarded(module, &u.path, guard))
        };
        let found =
            if want_module { child.or_else(&mut via_use).or(item) } else { item.or_else(&mut via_use).or(child) };
        let found = found.or_else(|| {
            m.syntax.uses.iter().filter(visible).filter(|u| u.binding.is_none()).find_map(|u| {
                match self.resolve_guarded(module, &u.path, guard)? {
                    Target::Module(glob) => self.lookup(glob, name, want_module, false, guard),
                    Target::Item(..) => None,
                }
            })
        });
        guard.pop();
        found
    }
}
