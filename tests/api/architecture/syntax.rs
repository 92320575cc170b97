//! What one source file declares, read from its tokens: its modules (the file's own and inline
//! ones), their items, `mod` lines, `use` trees, the paths written in code and the string
//! literals. Whatever sits under `#[cfg(test)]` is left out: tests may import anything.

use std::collections::{BTreeMap, BTreeSet};

use super::lexer::{Kind, Token};

/// One name brought in by a `use` tree.
#[derive(Clone, Debug)]
pub struct UseEntry {
    /// The path as written, `self` in a group already folded into its prefix.
    pub path: Vec<String>,
    /// The name it binds (`as` alias, `_`), or `None` for a glob (`x::*`).
    pub binding: Option<String>,
    /// `pub`, `pub(crate)`, ... (a re-export), not a private import.
    pub public: bool,
    /// Written at module level (a function's own `use` is not seen from other modules).
    pub module_level: bool,
    pub line: usize,
}

/// A path written in code (`crate::a::B::new`, `super::x::f`, `schedule::frame`).
#[derive(Clone, Debug)]
pub struct PathRef {
    pub segments: Vec<String>,
    pub line: usize,
}

/// A module written in a file: the file's own (index 0) or an inline `mod name { ... }`.
#[derive(Debug, Default)]
pub struct ModuleSyntax {
    pub name: String,
    pub parent: Option<usize>,
    /// Items defined here (functions, types, traits, constants, statics, macros).
    pub items: BTreeSet<String>,
    /// `mod name;` lines: children in files of their own.
    pub file_children: Vec<String>,
    /// Inline `mod name { ... }` children, as indices into [`FileSyntax::modules`].
    pub inline_children: Vec<usize>,
    pub uses: Vec<UseEntry>,
    pub paths: Vec<PathRef>,
    /// Every identifier written in code outside `use` declarations, with its first line.
    pub idents: BTreeMap<String, usize>,
}

/// Everything read from one file.
#[derive(Debug, Default)]
pub struct FileSyntax<'a> {
    pub modules: Vec<ModuleSyntax>,
    /// The file's tokens outside `#[cfg(test)]` items.
    pub code: Vec<Token<'a>>,
}

enum Frame {
    Module(usize),
    Block,
}

const ITEM_KEYWORDS: [&str; 8] = ["fn", "struct", "enum", "union", "trait", "type", "const", "static"];

/// Reads the module structure of one file's tokens.
pub fn parse<'a>(tokens: &[Token<'a>]) -> FileSyntax<'a> {
    let mut file = FileSyntax { modules: vec![ModuleSyntax::default()], code: Vec::new() };
    let mut skipped = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut test_next = false;
    let mut i = 0;
    while i < tokens.len() {
        let module = stack
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Module(m) => Some(*m),
                Frame::Block => None,
            })
            .unwrap_or(0);
        let module_level = matches!(stack.last(), None | Some(Frame::Module(_)));
        let t = &tokens[i];
        if t.punct("#") {
            let inner = tokens.get(i + 1).is_some_and(|t| t.punct("!"));
            let open = i + 1 + usize::from(inner);
            if tokens.get(open).is_some_and(|t| t.punct("[")) {
                let close = matching(tokens, open);
                let attribute = &tokens[open + 1..close];
                if is_cfg_test(attribute) {
                    if inner && stack.is_empty() {
                        return FileSyntax::default();
                    }
                    test_next = !inner;
                }
                // Paths in attributes are code too: `#[openapi(paths(account::me))]`, and
                // serde's `with = "load::optional_path"` written in a string.
                let serde = attribute.first().is_some_and(|t| t.ident("serde"));
                let module = &mut file.modules[module];
                for k in open + 1..close {
                    let t = &tokens[k];
                    match t.kind {
                        Kind::Ident => note_ident(module, tokens, k),
                        Kind::Str if serde => {
                            if let Some(segments) = path_in_string(t.text) {
                                module.paths.push(PathRef { segments, line: t.line });
                            }
                        }
                        _ => {}
                    }
                }
                i = close + 1;
                continue;
            }
        }
        if test_next {
            test_next = false;
            let end = skip_item(tokens, i);
            skipped.push(i..end);
            i = end;
            continue;
        }
        match t.kind {
            Kind::Punct if t.text == "{" => {
                // The body of a macro invoked at module level holds items of that module.
                let macro_body = module_level && i >= 2 && tokens[i - 1].punct("!");
                stack.push(if macro_body { Frame::Module(module) } else { Frame::Block });
            }
            Kind::Punct if t.text == "}" => {
                stack.pop();
            }
            Kind::Ident if t.text == "use" => {
                let public = is_public(tokens, i);
                let end = statement_end(tokens, i);
                let mut entries = Vec::new();
                let mut j = i + 1;
                use_tree(tokens, &mut j, end, Vec::new(), &mut entries);
                for (path, binding) in entries {
                    file.modules[module].uses.push(UseEntry { path, binding, public, module_level, line: t.line });
                }
                i = end + 1;
                continue;
            }
            Kind::Ident if t.text == "mod" && module_level => {
                if let Some(name) = tokens.get(i + 1).filter(|t| t.kind == Kind::Ident) {
                    let name = name.text.to_owned();
                    file.modules[module].items.insert(name.clone());
                    if tokens.get(i + 2).is_some_and(|t| t.punct("{")) {
                        let child = file.modules.len();
                        file.modules.push(ModuleSyntax { name, parent: Some(module), ..ModuleSyntax::default() });
                        file.modules[module].inline_children.push(child);
                        stack.push(Frame::Module(child));
                        i += 3;
                        continue;
                    }
                    file.modules[module].file_children.push(name);
                    i += 2;
                    continue;
                }
            }
            Kind::Ident => {
                if module_level && let Some(name) = item_name(tokens, i) {
                    file.modules[module].items.insert(name);
                }
                note_ident(&mut file.modules[module], tokens, i);
            }
            _ => {}
        }
        i += 1;
    }
    file.code = (0..tokens.len()).filter(|k| !skipped.iter().any(|r| r.contains(k))).map(|k| tokens[k]).collect();
    file
}

/// Records the identifier at `i`: as written in code, and as the start of a path (`a::b::c`)
/// unless it is itself inside one.
fn note_ident(module: &mut ModuleSyntax, tokens: &[Token], i: usize) {
    let t = &tokens[i];
    let after_path_separator = i > 0 && tokens[i - 1].punct("::");
    if !after_path_separator && tokens.get(i + 1).is_some_and(|t| t.punct("::")) {
        let mut segments = vec![t.text.to_owned()];
        let mut j = i + 1;
        while tokens.get(j).is_some_and(|t| t.punct("::")) && tokens.get(j + 1).is_some_and(|t| t.kind == Kind::Ident) {
            segments.push(tokens[j + 1].text.to_owned());
            j += 2;
        }
        if segments.len() > 1 {
            module.paths.push(PathRef { segments, line: t.line });
        }
    }
    if !module.idents.contains_key(t.text) {
        module.idents.insert(t.text.to_owned(), t.line);
    }
}

/// The name an item keyword at `i` defines, if it is one.
fn item_name(tokens: &[Token], i: usize) -> Option<String> {
    let keyword = tokens[i].text;
    let name_at = |j: usize| {
        tokens
            .get(j)
            .filter(|t| t.kind == Kind::Ident && !matches!(t.text, "fn" | "unsafe" | "async" | "extern" | "mut" | "_"))
            .map(|t| t.text.to_owned())
    };
    if keyword == "macro_rules" && tokens.get(i + 1).is_some_and(|t| t.punct("!")) {
        return name_at(i + 2);
    }
    if !ITEM_KEYWORDS.contains(&keyword) {
        return None;
    }
    if keyword == "static" && tokens.get(i + 1).is_some_and(|t| t.ident("mut")) {
        return name_at(i + 2);
    }
    name_at(i + 1)
}

/// Whether the `use` at `i` is preceded by a visibility (`pub`, `pub(crate)`, `pub(in x)`).
fn is_public(tokens: &[Token], i: usize) -> bool {
    if i == 0 {
        return false;
    }
    if tokens[i - 1].ident("pub") {
        return true;
    }
    if tokens[i - 1].punct(")") {
        let mut j = i - 1;
        while j > 0 && !tokens[j].punct("(") {
            j -= 1;
        }
        return j > 0 && tokens[j - 1].ident("pub");
    }
    false
}

/// Reads one use tree between `*j` and `end` (the `;`), adding (path, binding) pairs.
fn use_tree(
    tokens: &[Token],
    j: &mut usize,
    end: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    if *j < end && tokens[*j].punct("::") {
        *j += 1;
    }
    while *j < end {
        let t = &tokens[*j];
        if t.punct("*") {
            out.push((prefix, None));
            *j += 1;
            return;
        }
        if t.punct("{") {
            *j += 1;
            loop {
                if *j >= end || tokens[*j].punct("}") {
                    *j += 1;
                    return;
                }
                if tokens[*j].punct(",") {
                    *j += 1;
                    continue;
                }
                use_tree(tokens, j, end, prefix.clone(), out);
            }
        }
        if t.kind != Kind::Ident {
            *j += 1;
            return;
        }
        let name = t.text.to_owned();
        *j += 1;
        if *j < end && tokens[*j].punct("::") {
            *j += 1;
            prefix.push(name);
            continue;
        }
        let mut binding = if name == "self" { prefix.last().cloned().unwrap_or_default() } else { name.clone() };
        if name != "self" {
            prefix.push(name);
        }
        if *j + 1 < end && tokens[*j].ident("as") {
            binding = tokens[*j + 1].text.to_owned();
            *j += 2;
        }
        out.push((prefix, Some(binding)));
        return;
    }
}

/// The index of the `;` that ends the statement starting at `i`.
fn statement_end(tokens: &[Token], mut i: usize) -> usize {
    while i < tokens.len() && !tokens[i].punct(";") {
        i += 1;
    }
    i
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        if t.kind != Kind::Punct {
            continue;
        }
        match t.text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// The index just past the item starting at `i`: its `;`, or the end of its first `{ ... }`.
fn skip_item(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.kind == Kind::Punct {
            match t.text {
                "(" | "[" => depth += 1,
                "{" => {
                    if depth == 0 {
                        return matching(tokens, i) + 1;
                    }
                    depth += 1;
                }
                ")" | "]" | "}" => {
                    if depth == 0 {
                        return i;
                    }
                    depth -= 1;
                }
                ";" if depth == 0 => return i + 1,
                _ => {}
            }
        }
        i += 1;
    }
    i
}

/// Whether an attribute's tokens (inside `#[...]`) say `cfg(test)`.
fn is_cfg_test(attribute: &[Token]) -> bool {
    attribute.len() == 4
        && attribute[0].ident("cfg")
        && attribute[1].punct("(")
        && attribute[2].ident("test")
        && attribute[3].punct(")")
}

/// A path such as `load::optional_path` written in a string (serde's `with`, `deserialize_with`).
fn path_in_string(text: &str) -> Option<Vec<String>> {
    let segments: Vec<String> = text.split("::").map(str::to_owned).collect();
    let is_ident = |s: &String| {
        s.chars().next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && s.chars().all(|c| c == '_' || c.is_alphanumeric())
    };
    (segments.len() > 1 && segments.iter().all(is_ident)).then_some(segments)
}
