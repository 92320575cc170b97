//! Reading chains back for verification, a page of consecutive entries at a time, in the
//! cheapest form each backend produces. Verification reads every entry ever written, so the
//! per-row cost on the database side decides its speed (docs/PERFORMANCE.md):
//!
//! - SQLite runs in our process; one JSON text per page (`json_group_array`) costs it about a
//!   microsecond per entry, a third of what sqlx spends on one row read through its row API.
//! - PostgreSQL builds that JSON at ~5 µs per entry, but streams `COPY ... (FORMAT binary)` at
//!   ~1.5 µs, and the binary rows need no decoding beyond their length prefixes. `COPY` is not
//!   in sqlx's `Any` driver, so pages come through the native driver on connections of their
//!   own (to the same database, with the same credentials).
//!
//! Neither form carries `node_id`: a page is one node's, selected by it. The statements are
//! `Backend::audit_page_sql` and `Backend::audit_page_settings_sql`; this module only knows
//! whether a native PostgreSQL connection exists (`COPY`) or the pool serves the page (JSON).

use std::borrow::Cow;
use std::ops::ControlFlow;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::audit::chain::{EntryContent, Hash};
use crate::storage::{Backend, Storage, StorageError};

/// Entries per page.
pub(in crate::audit) const PAGE: i64 = 16_384;

/// Where pages come from.
#[derive(Clone)]
pub(in crate::audit) enum PageSource {
    /// The audit store's own pool (SQLite: one JSON text and one blob of hashes per page).
    Json(Storage),
    /// Native PostgreSQL connections for `COPY`.
    Copy { pool: PgPool, backend: Backend },
}

impl PageSource {
    /// A source for `storage` able to serve `connections` pages at once.
    pub(in crate::audit) async fn open(storage: &Storage, connections: u32) -> Result<Self, StorageError> {
        match storage.postgres_url() {
            Some(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(connections)
                    .connect(url.expose())
                    .await
                    .map_err(|source| StorageError::Connect { store: "audit store", source })?;
                Ok(PageSource::Copy { pool, backend: storage.backend() })
            }
            None => Ok(PageSource::Json(storage.clone())),
        }
    }

    /// The entries of `node`'s chain with `from <= seq < to`; `None` when there are none.
    pub(in crate::audit) async fn fetch(
        &self,
        node: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<RawPage>, StorageError> {
        match self {
            PageSource::Json(storage) => {
                let (text, hashes): (Option<String>, Option<Vec<u8>>) =
                    sqlx::query_as(storage.backend().audit_page_sql())
                        .bind(node.to_owned())
                        .bind(from)
                        .bind(to)
                        .fetch_one(storage.pool())
                        .await?;
                let text = text.filter(|text| text != "[]");
                Ok(text.map(|text| RawPage::Json { text, hashes: hashes.unwrap_or_default() }))
            }
            PageSource::Copy { pool, backend } => {
                let mut conn = pool.acquire().await?;
                if let Some(settings) = backend.audit_page_settings_sql() {
                    sqlx::query(settings)
                        .bind(node.to_owned())
                        .bind(from.to_string())
                        .bind(to.to_string())
                        .execute(&mut *conn)
                        .await?;
                }
                let mut chunks = conn.copy_out_raw(backend.audit_page_sql()).await?;
                let mut page = Vec::new();
                while let Some(chunk) = chunks.try_next().await? {
                    page.extend_from_slice(&chunk);
                }
                Ok((page.len() > COPY_EMPTY_LEN).then_some(RawPage::CopyBinary(page)))
            }
        }
    }

    /// Closes the native connections, if any.
    pub(in crate::audit) async fn close(&self) {
        if let PageSource::Copy { pool, .. } = self {
            pool.close().await;
        }
    }
}

/// One stored entry, borrowed from its page.
pub(in crate::audit) struct Entry<'a> {
    /// What its hash covers.
    pub content: EntryContent<'a>,
    /// Its stored `prev_hash`, `None` when not 32 bytes (only possible by tampering).
    pub prev_hash: Option<Hash>,
    /// Its stored `hash`, likewise.
    pub hash: Option<Hash>,
}

/// A page as the database delivered it.
pub(in crate::audit) enum RawPage {
    /// A JSON array of 17-element arrays (the columns after `node_id`, the two hashes replaced
    /// by their lengths), and the hashes themselves concatenated (each entry's `prev_hash` and
    /// `hash`, or nothing where either is NULL).
    Json { text: String, hashes: Vec<u8> },
    /// A PostgreSQL binary `COPY` stream of the same 17 columns.
    CopyBinary(Vec<u8>),
}

/// A page that is not in the form its query produces: a bug (or a driver change), not tampering,
/// which shows up as entries that do not verify.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::audit) struct Malformed;

impl RawPage {
    /// Hands the page's entries of `node_id`'s chain to `visit` in the order they arrived, until
    /// it breaks. The entries are parsed one at a time and never collected: an intact page (in
    /// practice delivered in chain order) is checked in one pass through its bytes.
    pub(in crate::audit) fn for_each(
        &self,
        node_id: &str,
        visit: &mut dyn FnMut(&Entry<'_>) -> ControlFlow<()>,
    ) -> Result<(), Malformed> {
        match self {
            RawPage::Json { text, hashes } => {
                let mut each = EachJsonEntry { node_id, hashes: HashCursor { rest: hashes }, visit, stopped: false };
                let mut input = serde_json::Deserializer::from_str(text);
                match serde::Deserializer::deserialize_seq(&mut input, &mut each) {
                    Ok(()) if each.hashes.rest.is_empty() => input.end().map_err(|_| Malformed),
                    Err(_) if each.stopped => Ok(()),
                    Ok(()) | Err(_) => Err(Malformed),
                }
            }
            RawPage::CopyBinary(bytes) => {
                for entry in CopyRows::new(bytes, node_id)? {
                    if visit(&entry?).is_break() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Parses all of the page's entries of `node_id`'s chain and hands them to `check`, for
    /// checks that need them all at once (sorted).
    pub(in crate::audit) fn with_entries<R>(
        &self,
        node_id: &str,
        check: impl FnOnce(&mut [Entry<'_>]) -> R,
    ) -> Result<R, Malformed> {
        match self {
            RawPage::Json { text, hashes } => {
                let rows: Vec<JsonEntry<'_>> = serde_json::from_str(text).map_err(|_| Malformed)?;
                let mut cursor = HashCursor { rest: hashes };
                let mut entries =
                    rows.iter().map(|row| row.entry(node_id, &mut cursor)).collect::<Result<Vec<_>, _>>()?;
                if !cursor.rest.is_empty() {
                    return Err(Malformed);
                }
                Ok(check(&mut entries))
            }
            RawPage::CopyBinary(bytes) => {
                let mut entries = CopyRows::new(bytes, node_id)?.collect::<Result<Vec<_>, _>>()?;
                Ok(check(&mut entries))
            }
        }
    }
}

/// Visits the elements of a JSON page one by one.
struct EachJsonEntry<'n, 'v> {
    node_id: &'n str,
    hashes: HashCursor<'n>,
    visit: &'v mut dyn FnMut(&Entry<'_>) -> ControlFlow<()>,
    /// The visitor broke off (the parse then ends with an error that means nothing).
    stopped: bool,
}

impl<'de> serde::de::Visitor<'de> for &mut EachJsonEntry<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of audit entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut rows: A) -> Result<(), A::Error> {
        while let Some(row) = rows.next_element::<JsonEntry<'de>>()? {
            let entry = row.entry(self.node_id, &mut self.hashes).map_err(|_| serde::de::Error::custom("hashes"))?;
            if (self.visit)(&entry).is_break() {
                self.stopped = true;
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// An entry as the SQLite page query writes it (an array, read in field order). Text is
/// borrowed where it has no escapes: all of it, short of tampering, which must still parse so
/// that verification can name the entry.
#[derive(serde::Deserialize)]
struct JsonEntry<'a> {
    seq: i64,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    at_ms: i64,
    #[serde(borrow)]
    actor_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor_role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source_ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    patient_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    prev_hash_len: Option<usize>,
    hash_len: Option<usize>,
}

impl JsonEntry<'_> {
    /// The entry, its hashes taken from `hashes`.
    fn entry<'s>(&'s self, node_id: &'s str, hashes: &mut HashCursor<'_>) -> Result<Entry<'s>, Malformed> {
        let (prev_hash, hash) = match (self.prev_hash_len, self.hash_len) {
            (Some(prev), Some(this)) => (hashes.take(prev)?, hashes.take(this)?),
            _ => (None, None), // `NULL || x` is NULL: the pair is not in the blob
        };
        Ok(Entry {
            content: EntryContent {
                node_id,
                seq: self.seq,
                event_id: &self.event_id,
                at_ms: self.at_ms,
                texts: [
                    self.actor_kind.as_deref(),
                    self.actor_user_id.as_deref(),
                    self.actor_role.as_deref(),
                    self.session_id.as_deref(),
                    self.request_id.as_deref(),
                    self.source_ip.as_deref(),
                    self.action.as_deref(),
                    self.resource_type.as_deref(),
                    self.resource_id.as_deref(),
                    self.patient_id.as_deref(),
                    self.outcome.as_deref(),
                    self.reason.as_deref(),
                ],
            },
            prev_hash,
            hash,
        })
    }
}

/// Walks the concatenated hashes of a JSON page.
struct HashCursor<'a> {
    rest: &'a [u8],
}

impl HashCursor<'_> {
    /// The next `len` bytes as a hash; `None` when they are not 32 (only possible by tampering).
    fn take(&mut self, len: usize) -> Result<Option<Hash>, Malformed> {
        let (taken, rest) = self.rest.split_at_checked(len).ok_or(Malformed)?;
        self.rest = rest;
        Ok(taken.try_into().ok())
    }
}

/// The PostgreSQL binary `COPY` signature that opens every stream.
const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// A stream holding no rows: the signature, flags and extension length, and the trailer.
const COPY_EMPTY_LEN: usize = COPY_SIGNATURE.len() + 4 + 4 + 2;

/// The rows of a binary `COPY` stream of the 17 page columns
/// (<https://www.postgresql.org/docs/current/sql-copy.html>, "Binary Format"): a header, then
/// per row a 16-bit field count and per field a 32-bit length (-1 for NULL) and that many bytes,
/// in the types' binary send forms (`bigint` 8 bytes big-endian, `text` UTF-8, `bytea` raw);
/// a field count of -1 ends the stream.
struct CopyRows<'a> {
    input: CopyReader<'a>,
    node_id: &'a str,
    done: bool,
}

impl<'a> CopyRows<'a> {
    fn new(bytes: &'a [u8], node_id: &'a str) -> Result<Self, Malformed> {
        let mut input = CopyReader { rest: bytes };
        if input.take(COPY_SIGNATURE.len())? != COPY_SIGNATURE {
            return Err(Malformed);
        }
        let _flags = input.take(4)?;
        let extension = u32::from_be_bytes(input.array()?);
        input.take(usize::try_from(extension).map_err(|_| Malformed)?)?;
        Ok(Self { input, node_id, done: false })
    }

    fn row(&mut self) -> Result<Option<Entry<'a>>, Malformed> {
        let input = &mut self.input;
        match i16::from_be_bytes(input.array()?) {
            -1 if input.rest.is_empty() => return Ok(None),
            17 => {}
            _ => return Err(Malformed),
        }
        let seq = input.bigint()?;
        let event_id = input.text()?.ok_or(Malformed)?;
        let at_ms = input.bigint()?;
        let mut texts = [None; 12];
        for text in &mut texts {
            *text = input.text()?;
        }
        let prev_hash = input.field()?.ok_or(Malformed)?.try_into().ok();
        let hash = input.field()?.ok_or(Malformed)?.try_into().ok();
        let content = EntryContent { node_id: self.node_id, seq, event_id, at_ms, texts };
        Ok(Some(Entry { content, prev_hash, hash }))
    }
}

impl<'a> Iterator for CopyRows<'a> {
    type Item = Result<Entry<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let row = self.row().transpose();
        self.done = !matches!(row, Some(Ok(_)));
        row
    }
}

/// A cursor over a binary `COPY` stream.
struct CopyReader<'a> {
    rest: &'a [u8],
}

impl<'a> CopyReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let (taken, rest) = self.rest.split_at_checked(n).ok_or(Malformed)?;
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }

    /// One field's bytes, `None` for NULL.
    fn field(&mut self) -> Result<Option<&'a [u8]>, Malformed> {
        match i32::from_be_bytes(self.array()?) {
            -1 => Ok(None),
            len => Ok(Some(self.take(usize::try_from(len).map_err(|_| Malformed)?)?)),
        }
    }

    fn text(&mut self) -> Result<Option<&'a str>, Malformed> {
        self.field()?.map(|bytes| std::str::from_utf8(bytes).map_err(|_| Malformed)).transpose()
    }

    fn bigint(&mut self) -> Result<i64, Malformed> {
        let bytes = self.field()?.ok_or(Malformed)?;
        Ok(i64::from_be_bytes(bytes.try_into().map_err(|_| Malformed)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(seq, event_id, reason, prev_hash, hash)` of a row written by [`copy_stream`].
    type Row<'a> = (i64, &'a str, Option<&'a str>, &'a [u8], &'a [u8]);

    /// What a page holds: `(seq, prev_hash, hash)` per entry.
    type Hashes = Vec<(i64, Option<Hash>, Option<Hash>)>;

    /// A binary `COPY` stream as PostgreSQL writes it (the text columns other than `action` and
    /// `reason` NULL).
    fn copy_stream(rows: &[Row<'_>]) -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        let field = |out: &mut Vec<u8>, bytes: Option<&[u8]>| match bytes {
            Some(bytes) => {
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        };
        for (seq, event_id, reason, prev, hash) in rows {
            out.extend_from_slice(&17i16.to_be_bytes());
            field(&mut out, Some(&seq.to_be_bytes()));
            field(&mut out, Some(event_id.as_bytes()));
            field(&mut out, Some(&1_700_000_000_000i64.to_be_bytes()));
            for i in 0..12 {
                let text = match i {
                    6 => Some("read"),
                    11 => *reason,
                    _ => None,
                };
                field(&mut out, text.map(str::as_bytes));
            }
            field(&mut out, Some(prev));
            field(&mut out, Some(hash));
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn seqs_and_hashes(page: &RawPage) -> Result<Hashes, Malformed> {
        page.with_entries("node", |entries| entries.iter().map(|e| (e.content.seq, e.prev_hash, e.hash)).collect())
    }

    #[test]
    fn binary_copy_rows_are_read_field_by_field() {
        let page = RawPage::CopyBinary(copy_stream(&[
            (1, "e1", None, &[0; 32], &[1; 32]),
            (2, "e2", Some("x"), &[1; 32], &[2; 32]),
        ]));
        let mut seen = Vec::new();
        page.for_each("node", &mut |entry| {
            let c = entry.content;
            seen.push((
                c.node_id.to_owned(),
                c.seq,
                c.event_id.to_owned(),
                c.at_ms,
                c.texts[6].map(str::to_owned),
                c.texts[11].map(str::to_owned),
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("node".into(), 1, "e1".into(), 1_700_000_000_000, Some("read".into()), None),
                ("node".into(), 2, "e2".into(), 1_700_000_000_000, Some("read".into()), Some("x".into())),
            ]
        );
        assert_eq!(
            seqs_and_hashes(&page).unwrap(),
            vec![(1, Some([0; 32]), Some([1; 32])), (2, Some([1; 32]), Some([2; 32]))]
        );
    }

    #[test]
    fn a_stored_hash_of_the_wrong_size_reads_as_none_not_as_an_error() {
        let page = RawPage::CopyBinary(copy_stream(&[(1, "e1", None, &[0; 31], &[1; 33])]));
        assert_eq!(seqs_and_hashes(&page).unwrap(), vec![(1, None, None)]);
    }

    #[test]
    fn a_cut_or_padded_binary_stream_is_malformed() {
        let stream = copy_stream(&[(1, "e1", None, &[0; 32], &[1; 32])]);
        for cut in [5, 30, stream.len() - 1] {
            assert_eq!(seqs_and_hashes(&RawPage::CopyBinary(stream[..cut].to_vec())), Err(Malformed), "cut at {cut}");
        }
        let mut padded = stream.clone();
        padded.push(0);
        assert_eq!(seqs_and_hashes(&RawPage::CopyBinary(padded)), Err(Malformed));
    }

    #[test]
    fn json_pages_take_each_entrys_hashes_by_the_lengths_it_states() {
        let row = |seq: i64, prev: serde_json::Value, hash: serde_json::Value| {
            let mut columns = vec![serde_json::json!(seq), serde_json::json!("e"), serde_json::json!(0)];
            columns.extend((0..12).map(|_| serde_json::Value::Null));
            columns.extend([prev, hash]);
            serde_json::Value::Array(columns)
        };
        let text = serde_json::json!([
            row(1, 32.into(), 32.into()),
            row(2, 2.into(), serde_json::Value::Null),
            row(3, 32.into(), 32.into())
        ]);
        let mut hashes = [[1u8; 32], [2; 32], [3; 32], [4; 32]].concat();
        let page = RawPage::Json { text: text.to_string(), hashes: hashes.clone() };
        assert_eq!(
            seqs_and_hashes(&page).unwrap(),
            vec![(1, Some([1; 32]), Some([2; 32])), (2, None, None), (3, Some([3; 32]), Some([4; 32]))],
            "a NULL hash leaves its pair out of the concatenation"
        );
        hashes.pop();
        assert_eq!(seqs_and_hashes(&RawPage::Json { text: text.to_string(), hashes }), Err(Malformed));
    }
}
