//! Recognising SQL in a string literal, the way this code base writes it: upper-case keywords
//! opening a statement (at the start, or after `;` or `(`), `$N` placeholders, `{name}` holes
//! for `format!`.

use super::lexer::{Kind, Token};

/// Whether a string literal's content (as written in the source) holds an SQL statement.
pub fn is_sql(literal: &str) -> bool {
    let words = words(literal);
    (0..words.len()).any(|k| (k == 0 || matches!(words[k - 1].as_str(), ";" | "(")) && statement_at(&words[k..]))
}

/// The lines of the SQL string literals among `code`, and of `include_str!`s of `.sql` files.
pub fn sql_lines(code: &[Token]) -> Vec<usize> {
    let mut lines = Vec::new();
    for (k, t) in code.iter().enumerate() {
        if t.kind != Kind::Str {
            continue;
        }
        let included_sql_file = k >= 3
            && code[k - 1].punct("(")
            && code[k - 2].punct("!")
            && code[k - 3].ident("include_str")
            && t.text.ends_with(".sql");
        if included_sql_file || is_sql(t.text) {
            lines.push(t.line);
        }
    }
    lines
}

/// The literal's words: escapes and line continuations undone, `(`, `)`, `;` and `,` apart.
fn words(literal: &str) -> Vec<String> {
    let mut text = String::with_capacity(literal.len());
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // `\n`, `\t`, `\"`, or a line continuation: all separate words.
                chars.next();
                text.push(' ');
            }
            '(' | ')' | ';' | ',' => {
                text.push(' ');
                text.push(c);
                text.push(' ');
            }
            _ => text.push(c),
        }
    }
    text.split_whitespace().map(str::to_owned).collect()
}

fn upper(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

/// A table or CTE name: an identifier or a `{name}` hole.
fn name(word: &str) -> bool {
    let inner = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')).unwrap_or(word);
    inner.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Whether `w` opens one of the statements the project writes.
fn statement_at(w: &[String]) -> bool {
    let at = |k: usize| w.get(k).map_or("", String::as_str);
    match at(0) {
        "SELECT" => !at(1).is_empty(),
        "INSERT" => at(1) == "INTO",
        "UPDATE" => name(at(1)) && at(2) == "SET",
        "DELETE" => at(1) == "FROM",
        "CREATE" => {
            let kind = if matches!(at(1), "UNIQUE" | "TEMP" | "TEMPORARY") { at(2) } else { at(1) };
            matches!(kind, "TABLE" | "INDEX" | "TRIGGER" | "ROLE" | "VIEW")
        }
        "ALTER" | "DROP" | "GRANT" | "REVOKE" => upper(at(1)),
        "WITH" => {
            let k = usize::from(at(1) == "RECURSIVE");
            name(at(k + 1)) && at(k + 2) == "AS" && at(k + 3) == "("
        }
        "COPY" => at(1) == "(" || (name(at(1)) && matches!(at(2), "FROM" | "TO" | "(")),
        "PRAGMA" => name(at(1)),
        "VACUUM" | "COMMIT" | "ROLLBACK" => at(1).is_empty() || at(1) == ";" || upper(at(1)),
        "BEGIN" => at(1).is_empty() || matches!(at(1), ";" | "IMMEDIATE" | "DEFERRED" | "EXCLUSIVE" | "TRANSACTION"),
        "SET" => matches!(at(1), "LOCAL" | "SESSION"),
        "SAVEPOINT" => name(at(1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_sql;

    #[test]
    fn statements_are_sql_and_prose_is_not() {
        for sql in [
            "SELECT COUNT(*) FROM t WHERE a = $1",
            "\n    INSERT INTO t (a) VALUES ($1)",
            "UPDATE {name} SET key_id = $1",
            "DELETE FROM t WHERE a = $1",
            "CREATE UNIQUE INDEX i ON t (a)",
            "CREATE ROLE",
            "WITH added AS (SELECT 1) SELECT * FROM added",
            "COPY (SELECT a FROM t) TO STDOUT (FORMAT binary)",
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
            "BEGIN IMMEDIATE",
            "SET LOCAL confidant.audit_purge = 'on'",
            "x; VACUUM",
        ] {
            assert!(is_sql(sql), "{sql}");
        }
        for prose in ["select a device", "Update the settings", "BEGIN", "WITH care", "update"] {
            assert_eq!(is_sql(prose), prose == "BEGIN", "{prose}");
        }
    }
}
