//! The JSON text that batch statements expand into rows (`json_each` / `jsonb_array_elements`,
//! see [`super::Backend::audit_append_sql`]): one parameter carries a whole batch, so a batch
//! costs one statement whatever its size. Written by hand because it is on the hot path of
//! every audited request and every message; `format!` per byte cost a twentieth of the
//! messaging server's CPU.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex (what SQLite's `unhex` and PostgreSQL's `decode(.., 'hex')` read).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// A JSON string (or `null`), escaped per RFC 8259.
pub fn push_str(out: &mut String, text: Option<&str>) {
    let Some(text) = text else {
        out.push_str("null");
        return;
    };
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u00");
                let code = u8::try_from(u32::from(c)).unwrap_or(0);
                push_hex(out, &[code]);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x0f, 0xa0, 0xff]);
        assert_eq!(out, "000fa0ff");
    }

    #[test]
    fn strings_are_escaped_as_json_reads_them() {
        let text = "quote \" backslash \\ newline \n bell \u{7} é";
        let mut out = String::new();
        push_str(&mut out, Some(text));
        assert_eq!(out, "\"quote \\\" backslash \\\\ newline \\u000a bell \\u0007 é\"");
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        let mut absent = String::new();
        push_str(&mut absent, None);
        assert_eq!(absent, "null");
    }
}
