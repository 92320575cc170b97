//! A small Rust tokenizer for the architecture checks: identifiers, punctuation, string and
//! char literals with their lines; comments (line, block, doc) are dropped.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An identifier or keyword (`r#type` is given as `type`).
    Ident,
    /// Punctuation: `::` is one token, every other character is its own.
    Punct,
    /// A string literal (plain, byte, C or raw); the text is its content as written.
    Str,
    /// A char or byte literal.
    Char,
    /// A lifetime or loop label.
    Lifetime,
    /// A number literal.
    Number,
}

/// One token and the line it starts on (1-based).
#[derive(Clone, Copy, Debug)]
pub struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub line: usize,
}

impl Token<'_> {
    pub fn is(&self, kind: Kind, text: &str) -> bool {
        self.kind == kind && self.text == text
    }

    pub fn punct(&self, text: &str) -> bool {
        self.is(Kind::Punct, text)
    }

    pub fn ident(&self, text: &str) -> bool {
        self.is(Kind::Ident, text)
    }
}

/// Identifiers are ASCII here; any non-ASCII byte is taken as part of one (Unicode identifiers).
fn ident_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic() || b >= 0x80
}

fn ident_continue(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric() || b >= 0x80
}

/// Splits `source` into tokens, dropping whitespace and comments.
pub fn tokenize(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let lines_in = |from: usize, to: usize| bytes[from..to].iter().filter(|&&b| b == b'\n').count();
    let mut push =
        |kind: Kind, from: usize, to: usize, line: usize| tokens.push(Token { kind, text: &source[from..to], line });
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        if b == b'\n' {
            line += 1;
            i += 1;
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'/' && next == Some(b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if b == b'/' && next == Some(b'*') {
            let start = i;
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += lines_in(start, i);
        } else if b == b'"' {
            let end = plain_string_end(bytes, i + 1);
            push(Kind::Str, i + 1, end.saturating_sub(1).max(i + 1), line);
            line += lines_in(i, end);
            i = end;
        } else if b == b'\'' {
            let (end, kind) = quote_end(bytes, i);
            push(kind, i, end, line);
            i = end;
        } else if ident_start(b) {
            let start = i;
            while i < bytes.len() && ident_continue(bytes[i]) {
                i += 1;
            }
            let word = &source[start..i];
            let after = bytes.get(i).copied();
            if matches!(word, "r" | "br" | "cr") && matches!(after, Some(b'"' | b'#')) {
                let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
                if bytes.get(i + hashes) == Some(&b'"') {
                    let body = i + hashes + 1;
                    let end = raw_string_end(bytes, body, hashes);
                    push(Kind::Str, body, end.saturating_sub(hashes + 1).max(body), line);
                    line += lines_in(start, end);
                    i = end;
                    continue;
                }
                if word == "r" && hashes == 1 && bytes.get(i + 1).is_some_and(|&b| ident_start(b)) {
                    let name = i + 1;
                    i = name;
                    while i < bytes.len() && ident_continue(bytes[i]) {
                        i += 1;
                    }
                    push(Kind::Ident, name, i, line);
                    continue;
                }
            }
            if matches!(word, "b" | "c") && after == Some(b'"') {
                let end = plain_string_end(bytes, i + 1);
                push(Kind::Str, i + 1, end.saturating_sub(1).max(i + 1), line);
                line += lines_in(start, end);
                i = end;
                continue;
            }
            if word == "b" && after == Some(b'\'') {
                let (end, kind) = quote_end(bytes, i);
                push(kind, start, end, line);
                i = end;
                continue;
            }
            push(Kind::Ident, start, i, line);
        } else if b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && ident_continue(bytes[i]) {
                i += 1;
            }
            push(Kind::Number, start, i, line);
        } else if b == b':' && next == Some(b':') {
            push(Kind::Punct, i, i + 2, line);
            i += 2;
        } else {
            push(Kind::Punct, i, i + 1, line);
            i += 1;
        }
    }
    tokens
}

/// The index just past the closing quote of a plain string whose content starts at `i`.
fn plain_string_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index just past the closing `"###` of a raw string whose content starts at `i`.
fn raw_string_end(bytes: &[u8], mut i: usize, hashes: usize) -> usize {
    while i < bytes.len() {
        if bytes[i] == b'"' && (1..=hashes).all(|k| bytes.get(i + k) == Some(&b'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    bytes.len()
}

/// A char literal (`'a'`, `'"'`, `'\''`, `'é'`, `b'x'`) or a lifetime (`'a`, `'static`)
/// starting at `start` (its quote, or the `b` of a byte literal): where it ends and which it is.
fn quote_end(bytes: &[u8], start: usize) -> (usize, Kind) {
    let quote = if bytes[start] == b'b' { start + 1 } else { start };
    let Some(&first) = bytes.get(quote + 1) else { return (bytes.len(), Kind::Punct) };
    if first == b'\\' {
        let mut i = quote + 3;
        while i < bytes.len() && bytes[i] != b'\'' {
            i += 1;
        }
        return ((i + 1).min(bytes.len()), Kind::Char);
    }
    // One character, however many bytes its UTF-8 takes, then the closing quote.
    let width = match first {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    };
    if bytes.get(quote + 1 + width) == Some(&b'\'') {
        return (quote + 2 + width, Kind::Char);
    }
    let mut i = quote + 1;
    while i < bytes.len() && ident_continue(bytes[i]) {
        i += 1;
    }
    (i, Kind::Lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<(Kind, String)> {
        tokenize(source).into_iter().map(|t| (t.kind, t.text.to_owned())).collect()
    }

    #[test]
    fn comments_chars_and_lifetimes_do_not_confuse_the_scanner() {
        let source = "let a = '\"'; // crate::hidden\n/* \"SELECT */ fn f<'a>(v: &'a str) -> char { '\\'' }\nlet s = \"http://x\"; let r = r#\"a \"b\" c\"#; r#type; let e = '\u{e9}';";
        let found = kinds(source);
        assert!(found.contains(&(Kind::Char, "'\"'".into())));
        assert!(found.contains(&(Kind::Lifetime, "'a".into())));
        assert!(found.contains(&(Kind::Char, "'\\''".into())));
        assert!(found.contains(&(Kind::Str, "http://x".into())));
        assert!(found.contains(&(Kind::Str, "a \"b\" c".into())));
        assert!(found.contains(&(Kind::Ident, "type".into())));
        assert!(found.contains(&(Kind::Char, "'\u{e9}'".into())));
        assert!(!found.iter().any(|(_, t)| t.contains("SELECT") || t == "hidden"));
    }

    #[test]
    fn lines_count_through_multi_line_strings_and_comments() {
        let tokens = tokenize("\"a\nb\"\n/* x\ny */ z");
        assert_eq!(tokens[0].line, 1);
        assert_eq!(tokens[1].line, 4);
    }
}
