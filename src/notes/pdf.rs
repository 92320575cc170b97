//! A signed note as a PDF for release of records: what the note's screen shows and nothing
//! more (its title, facts, the scores it was begun with, its sections, the signature digest and
//! its signed addenda), set in the built-in Courier on US Letter so no font is embedded and the
//! text wraps by count. Built in memory; the caller has checked and audited the read.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use time::OffsetDateTime;
use time::macros::format_description;

use super::content::{Measure, NoteContent};
use super::store::{Addendum, NoteMeta};
use super::templates::Template;
use confidant_protocol::FieldValue;

/// US Letter, in points.
const PAGE: (f32, f32) = (612.0, 792.0);
const MARGIN: f32 = 54.0;
/// Courier's advance is 0.6 em: at 10 pt, 84 characters fill the 504 pt between the margins.
const BODY_SIZE: f32 = 10.0;
const COLUMNS: usize = 84;
const LEADING: f32 = 13.0;
const HEADING_SIZE: f32 = 13.0;

/// One line of the document: its text, and whether it is a heading (bold, larger).
struct Line {
    text: String,
    heading: bool,
}

/// Names the people a note mentions (author, supervisor, addenda authors) as the screen does.
pub type Names<'a> = &'a dyn Fn(confidant_actors::ids::UserId) -> String;

/// A signed note as read for its screen: facts, the template version it was written on, its
/// content and its addenda.
pub struct NoteDocument<'a> {
    pub meta: &'a NoteMeta,
    pub template: &'a Template,
    pub content: &'a NoteContent,
    pub addenda: &'a [Addendum],
}

/// The PDF of `note`, `names` naming its people.
pub fn render(note: &NoteDocument<'_>, names: Names<'_>) -> Vec<u8> {
    paginate(&lines(note, names))
}

fn when(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn day(ms: i64) -> String {
    let format = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "progress" => "Progress note",
        "intake_assessment" => "Intake assessment",
        "treatment_plan" => "Treatment plan",
        "discharge_summary" => "Discharge summary",
        _ => "Note",
    }
}

fn status_words(status: &str) -> &'static str {
    match status {
        "awaiting_cosign" => "Signed, awaiting co-signature",
        "final" => "Signed",
        _ => "Draft",
    }
}

fn measure(form: &str, m: &Measure) -> String {
    let change = match m.change_since_last_note {
        Some(d) if d > 0 => format!(", +{d} since the last note"),
        Some(d) => format!(", {d} since the last note"),
        None => String::new(),
    };
    format!("{form} {} ({}, {}){change}", m.total, m.severity.as_str().replace('_', " "), day(m.submitted_at_ms))
}

/// The document as lines, before wrapping.
fn lines(note: &NoteDocument<'_>, names: Names<'_>) -> Vec<Line> {
    let meta = note.meta;
    let mut out = Vec::new();
    let push = |out: &mut Vec<Line>, t: String, heading: bool| out.push(Line { text: t, heading });
    push(&mut out, note.template.title.clone(), true);
    push(&mut out, format!("Date of service: {}", day(meta.service_at_ms)), false);
    push(&mut out, format!("Kind: {}", kind_words(meta.kind.as_str())), false);
    let late = if meta.late_entry { " (late entry)" } else { "" };
    push(&mut out, format!("Status: {}{late}", status_words(meta.status.as_str())), false);
    push(&mut out, format!("Written by: {}", names(meta.author_id)), false);
    if let Some(at) = meta.signed_at_ms {
        push(&mut out, format!("Signed: {}", when(at)), false);
    }
    if let Some(cosigner) = meta.cosigner_id {
        let state = meta
            .cosigned_at_ms
            .map_or_else(|| "awaiting co-signature".to_owned(), |at| format!("co-signed {}", when(at)));
        push(&mut out, format!("Supervisor: {} ({state})", names(cosigner)), false);
    }
    let context = &note.content.context;
    if context.phq9.is_some() || context.gad7.is_some() || !context.diagnosis.is_empty() || !context.goals.is_empty() {
        push(&mut out, String::new(), false);
        push(&mut out, "When this note was begun".to_owned(), true);
        if let Some(m) = &context.phq9 {
            push(&mut out, format!("- {}", measure("PHQ-9", m)), false);
        }
        if let Some(m) = &context.gad7 {
            push(&mut out, format!("- {}", measure("GAD-7", m)), false);
        }
        if !context.diagnosis.is_empty() {
            push(&mut out, format!("- Diagnosis: {}", context.diagnosis.join("; ")), false);
        }
        if !context.goals.is_empty() {
            push(&mut out, format!("- Goals: {}", context.goals.join("; ")), false);
        }
    }
    for section in &note.template.sections {
        push(&mut out, String::new(), false);
        push(&mut out, section.label.clone(), true);
        match note.content.fields.get(&section.id) {
            Some(FieldValue::Text(t)) if !t.trim().is_empty() => {
                for line in t.lines() {
                    push(&mut out, line.to_owned(), false);
                }
            }
            Some(FieldValue::List(items)) if !items.is_empty() => {
                for item in items {
                    push(&mut out, format!("- {item}"), false);
                }
            }
            _ => push(&mut out, "Not filled in".to_owned(), false),
        }
    }
    if let Some(digest) = &meta.signed_digest {
        push(&mut out, String::new(), false);
        push(&mut out, format!("Signature digest: {}", &digest[..digest.len().min(16)]), false);
    }
    push(&mut out, String::new(), false);
    push(&mut out, "Addenda".to_owned(), true);
    if note.addenda.is_empty() {
        push(&mut out, "No addenda.".to_owned(), false);
    }
    for (n, a) in note.addenda.iter().enumerate() {
        let late = if a.late_entry { " (late entry)" } else { "" };
        push(&mut out, format!("{}. {} - signed {}{late}", n + 1, names(a.author_id), when(a.signed_at_ms)), false);
        for line in a.body.expose().lines() {
            push(&mut out, format!("   {line}"), false);
        }
    }
    out
}

/// `text` as WinAnsiEncoding bytes (the encoding of the built-in fonts here): Latin-1 as is,
/// the common typographic marks mapped, anything else a question mark.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => c as u8,
            '\t' => b' ',
            '\u{20ac}' => 0x80,
            '\u{2026}' => 0x85,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// Breaks `text` into pieces of at most `columns` characters, at spaces where it can.
fn wrap(text: &str, columns: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        while word.chars().count() > columns {
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(columns).collect();
            word = word.chars().skip(columns).collect();
            out.push(head);
        }
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > columns && !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    out.push(line);
    out
}

/// Lays the lines out on as many pages as they need, and writes the document.
fn paginate(lines: &[Line]) -> Vec<u8> {
    let rows_per_page = ((PAGE.1 - 2.0 * MARGIN) / LEADING) as usize;
    let mut pages: Vec<Vec<(String, bool)>> = vec![Vec::new()];
    for line in lines {
        let columns = if line.heading { (COLUMNS as f32 * BODY_SIZE / HEADING_SIZE) as usize } else { COLUMNS };
        for piece in wrap(&line.text, columns) {
            if pages.last().is_some_and(|p| p.len() >= rows_per_page) {
                pages.push(Vec::new());
            }
            if let Some(page) = pages.last_mut() {
                page.push((piece, line.heading));
            }
        }
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|n| Ref::new(first_page + 2 * n as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    pdf.type1_font(regular).base_font(Name(b"Courier")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Courier-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info).producer(pdf_writer::TextStr("Confidant"));
    for (n, rows) in pages.iter().enumerate() {
        let page_id = page_ids[n];
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
        page.finish();

        let mut content = Content::new();
        let mut y = PAGE.1 - MARGIN;
        for (text, heading) in rows {
            y -= LEADING;
            if text.is_empty() {
                continue;
            }
            content.begin_text();
            if *heading {
                content.set_font(Name(b"F2"), HEADING_SIZE);
            } else {
                content.set_font(Name(b"F1"), BODY_SIZE);
            }
            content.next_line(MARGIN, y);
            content.show(Str(&win_ansi(text)));
            content.end_text();
        }
        let footer = format!("Page {} of {}", n + 1, pages.len());
        content.begin_text();
        content.set_font(Name(b"F1"), 8.0);
        content.next_line(MARGIN, MARGIN / 2.0);
        content.show(Str(footer.as_bytes()));
        content.end_text();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_at_spaces_and_long_words_are_cut() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    #[test]
    fn text_outside_win_ansi_becomes_a_question_mark() {
        assert_eq!(win_ansi("café – “x” 漢"), b"caf\xe9 \x96 \x93x\x94 ?".to_vec());
    }
}
