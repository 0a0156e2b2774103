//! The current attachments of a run's structures, read in pages: each page
//! is ONE row whose text the database builds from length-prefixed fields
//! and the reader slices back, with no escaping and no JSON.

use sqlx::{AnyConnection, Row};

use super::{
    CurrentState, StoreError,
    sql::{Binds, Interner, db, is_sqlite, query},
};
use crate::domain::{Email, StructureId};

/// Rows per page.
const PAGE: usize = 10_000;

/// The columns of each row of a page's answer, in order. The structure is
/// the page's (one structure per query), so it is not repeated per row.
const FIELDS: [&str; 5] = ["email", "service", "rights", "last_name", "first_name"];
const EMAIL: usize = 0;
const SERVICE: usize = 1;
const RIGHTS: usize = 2;
const LAST_NAME: usize = 3;
const FIRST_NAME: usize = 4;

/// What the length before each field counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// `octet_length`: bytes as stored, which are the bytes the answer
    /// holds on SQLite (whose `length` counts characters up to the first
    /// NUL) and on a PostgreSQL server whose encoding is UTF8 (or SQL_ASCII,
    /// never converted).
    Bytes,
    /// `char_length`: characters, on a PostgreSQL server in another
    /// encoding: its text reaches us converted to UTF-8, with other byte
    /// lengths but the same characters (and never a NUL).
    Chars,
}

/// The current attachments of `structures`, sorted by (structure, e-mail,
/// service): the order the diff merges in.
///
/// Read in pages of [`PAGE`] rows, walked by key (no OFFSET). A page's
/// answer is ONE row: row by row, sqlx hands every row from its SQLite
/// thread to the async task and copies each value twice, the largest single
/// cost of a plan once (BENCHMARKS.md). Each field of each row is its
/// length, `:` and its text (a bare `:` for NULL): the database writes no
/// escapes and the reader slices, where a JSON page cost the database's
/// JSON functions on one side and a JSON parse on the other.
pub(crate) async fn current_attachments(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<CurrentState, StoreError> {
    let unit = length_unit(conn).await?;
    read_current(conn, structures, unit).await
}

/// How this connection's answers measure text (see [`Unit`]).
async fn length_unit(conn: &mut AnyConnection) -> Result<Unit, StoreError> {
    const CTX: &str = "read the server encoding";
    if is_sqlite(conn) {
        return Ok(Unit::Bytes);
    }
    let row = sqlx::query("SELECT current_setting('server_encoding')").fetch_one(&mut *conn).await.map_err(db(CTX))?;
    let encoding: String = row.try_get(0).map_err(db(CTX))?;
    Ok(if matches!(encoding.as_str(), "UTF8" | "SQL_ASCII") { Unit::Bytes } else { Unit::Chars })
}

/// [`current_attachments`] with lengths in `unit` (the tests choose it).
pub(super) async fn read_current(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
) -> Result<CurrentState, StoreError> {
    const CTX: &str = "read current attachments";
    let sqlite = is_sqlite(conn);
    let mut out = CurrentState::default();
    let mut interner = Interner::default();
    // One structure at a time: `structure = ? AND (email, service) > (?, ?)`
    // is a range of the primary key, so each page starts where the last ended.
    for structure in structures {
        let mut after: Option<(String, String)> = None;
        loop {
            let mut b = Binds::new(conn);
            let mut filter = format!("structure = {}", b.push(structure.as_str().to_string()));
            if let Some((email, service)) = after.take() {
                let (e, v) = (b.push(email), b.push(service));
                filter.push_str(&format!(" AND (email, service) > ({e}, {v})"));
            }
            let sql = page_sql(sqlite, unit, &filter);
            let row = query(sql, b, CTX)?.fetch_one(&mut *conn).await.map_err(db(CTX))?;
            // SQLite answers a BLOB, so text that is not UTF-8 is reported
            // with its row and column rather than failing the decoding.
            let answer: Option<&[u8]> = if sqlite {
                row.try_get(0).map_err(db(CTX))?
            } else {
                row.try_get::<Option<&str>, _>(0).map_err(db(CTX))?.map(str::as_bytes)
            };
            let page = read_page(answer.unwrap_or_default(), unit, structure, &mut interner, &mut out)?;
            if page.rows == PAGE {
                // The page's last key in the database's order. SQLite does not
                // promise an aggregate's input order, but its binary collation is
                // Rust's byte order: the largest key read. A PostgreSQL collation
                // may differ from byte order: the database says.
                after = if sqlite {
                    page.largest.map(|(e, v)| (e.to_string(), v.to_string()))
                } else {
                    Some((row.try_get(1).map_err(db(CTX))?, row.try_get(2).map_err(db(CTX))?))
                };
            }
            if after.is_none() {
                break;
            }
        }
    }
    // SQLite's binary collation gives the diff's order already; a PostgreSQL
    // collation may not (it may ignore punctuation, say): `finish` checks.
    Ok(out.finish())
}

/// One page of at most [`PAGE`] rows of one structure, as ONE row: the
/// fields of every row, and on PostgreSQL the page's last key (see
/// [`read_current`]).
fn page_sql(sqlite: bool, unit: Unit, filter: &str) -> String {
    let length = match unit {
        Unit::Bytes => "octet_length",
        Unit::Chars => "char_length",
    };
    // `concat` writes NULL as '': a NULL field is an empty length.
    let fields: Vec<String> = FIELDS.iter().map(|c| format!("{length}({c}), ':', {c}")).collect();
    let row = format!("concat({}) AS r", fields.join(", "));
    let page = |columns: &str| {
        format!(
            "SELECT {columns} FROM current_attachments WHERE {filter} \
             ORDER BY structure, email, service LIMIT {PAGE}"
        )
    };
    if sqlite {
        format!("SELECT CAST(group_concat(r, '') AS BLOB) FROM ({})", page(&row))
    } else {
        // Arrays compare element by element in the columns' collation, as
        // the ORDER BY and the filter's row comparison do.
        format!(
            "SELECT string_agg(r, ''), (max(ARRAY[email, service]))[1], (max(ARRAY[email, service]))[2] \
             FROM ({}) AS page",
            page(&format!("{row}, email, service"))
        )
    }
}

/// What [`read_page`] read.
struct Page<'a> {
    rows: usize,
    /// The largest (e-mail, service) in byte order.
    largest: Option<(&'a str, &'a str)>,
}

/// Adds the rows of a page's answer to `out`. Errors name the structure, the
/// address (when it reads) and the column.
fn read_page<'a>(
    answer: &'a [u8],
    unit: Unit,
    structure: &StructureId,
    interner: &mut Interner,
    out: &mut CurrentState,
) -> Result<Page<'a>, StoreError> {
    let corrupt = |email: Option<&str>, column: usize, message: String| StoreError::Corrupt {
        table: "current_attachments",
        row: format!("{structure}/{}", email.unwrap_or("?")),
        column: FIELDS[column],
        message,
    };
    // Checked whole, once; then every field is a slice of it.
    let text = std::str::from_utf8(answer).map_err(|e| {
        let (row, column) = field_at(answer, unit, e.valid_up_to());
        let email = row[EMAIL].map(|(a, b)| String::from_utf8_lossy(&answer[a..b]));
        corrupt(email.as_deref(), column, "not UTF-8".into())
    })?;
    let mut page = Page { rows: 0, largest: None };
    // A person's attachments come one after the other: their address repeats.
    let mut previous: Option<(&'a str, Address<'a>)> = None;
    for row in (Rows { answer, at: 0, unit }) {
        let row = row.map_err(|e| {
            let email = e.email.and_then(|(a, b)| text.get(a..b));
            corrupt(email, e.column, e.message)
        })?;
        let field = |i: usize, email: Option<&str>| -> Result<Option<&'a str>, StoreError> {
            // With lengths in bytes, a wrong one may cut a character.
            row[i]
                .map(|(a, b)| text.get(a..b).ok_or_else(|| corrupt(email, i, "a length cuts a character".into())))
                .transpose()
        };
        let stored = field(EMAIL, None)?.ok_or_else(|| corrupt(None, EMAIL, "NULL".into()))?;
        let email = match previous.take() {
            Some((last, address)) if last == stored => address,
            _ if Email::is_normalized(stored) => Address::Stored(stored),
            // As before: an address stored in another spelling of itself
            // reads as its normal form.
            _ => Address::Parsed(
                Email::parse(stored).map_err(|e| corrupt(Some(stored), EMAIL, format!("{stored:?}: {e}")))?,
            ),
        };
        let email_shown = Some(stored);
        // A NULL service or rights reads as '' (structure level, no rights).
        let service = field(SERVICE, email_shown)?.unwrap_or_default();
        let rights = field(RIGHTS, email_shown)?.unwrap_or_default();
        let placement = (
            &interner.service(service).map_err(|m| corrupt(email_shown, SERVICE, m))?,
            &interner.rights(rights).map_err(|m| corrupt(email_shown, RIGHTS, m))?,
        );
        let name = (field(LAST_NAME, email_shown)?, field(FIRST_NAME, email_shown)?);
        out.push_address(structure, email.as_str(), placement, name);
        // The key as stored, which the next page's filter compares.
        if page.largest.is_none_or(|largest| (stored, service) > largest) {
            page.largest = Some((stored, service));
        }
        page.rows += 1;
        previous = Some((stored, email));
    }
    Ok(page)
}

/// A row's address: the stored text when it is an [`Email`]'s already (the
/// usual case), else parsed.
enum Address<'a> {
    Stored(&'a str),
    Parsed(Email),
}

impl Address<'_> {
    fn as_str(&self) -> &str {
        match self {
            Address::Stored(s) => s,
            Address::Parsed(e) => e.as_str(),
        }
    }
}

/// Where a field's text is in the answer (start, end), `None` for NULL.
type Span = Option<(usize, usize)>;

/// The rows of a page's answer: each the [`FIELDS`] one after the other,
/// each `<length>:<text>`, or `:` for NULL.
struct Rows<'a> {
    answer: &'a [u8],
    at: usize,
    unit: Unit,
}

/// A row that does not read back: its address if read, the field that did not.
#[derive(Debug)]
struct BadRow {
    email: Span,
    column: usize,
    message: String,
}

impl Iterator for Rows<'_> {
    type Item = Result<[Span; FIELDS.len()], BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == self.answer.len() {
            return None;
        }
        let mut row = [None; FIELDS.len()];
        for column in 0..FIELDS.len() {
            let at = self.at;
            match self.field() {
                Ok(span) => row[column] = span,
                Err(m) => {
                    // Nothing after a broken field reads.
                    self.at = self.answer.len();
                    let message = format!("the answer does not read back at byte {at}: {m}");
                    return Some(Err(BadRow { email: row[EMAIL], column, message }));
                }
            }
        }
        Some(Ok(row))
    }
}

impl Rows<'_> {
    fn field(&mut self) -> Result<Span, String> {
        let rest = &self.answer[self.at..];
        // The length's digits, read as they go (a field costs a few bytes).
        let mut n: Option<usize> = Some(0);
        let mut digits = 0;
        while let Some(&b) = rest.get(digits).filter(|b| b.is_ascii_digit()) {
            n = n.and_then(|n| n.checked_mul(10)?.checked_add(usize::from(b - b'0')));
            digits += 1;
        }
        if rest.get(digits) != Some(&b':') {
            return Err("a length and ':' expected".into());
        }
        let start = self.at + digits + 1;
        if digits == 0 {
            self.at = start;
            return Ok(None);
        }
        let n = n.ok_or_else(|| format!("length {} too large", String::from_utf8_lossy(&rest[..digits])))?;
        let after = &self.answer[start..];
        let end = match self.unit {
            Unit::Bytes => (n <= after.len()).then_some(n),
            Unit::Chars => char_end(after, n),
        };
        let Some(end) = end else {
            let unit = match self.unit {
                Unit::Bytes => "bytes",
                Unit::Chars => "characters",
            };
            return Err(format!("{n} {unit} announced, fewer left"));
        };
        self.at = start + end;
        Ok(Some((start, start + end)))
    }
}

/// The row read up to `offset` and the column there: where an answer
/// stops being UTF-8.
fn field_at(answer: &[u8], unit: Unit, offset: usize) -> ([Span; FIELDS.len()], usize) {
    let mut rows = Rows { answer, at: 0, unit };
    loop {
        let mut row = [None; FIELDS.len()];
        for column in 0..FIELDS.len() {
            match rows.field() {
                Ok(span) => row[column] = span,
                Err(_) => return (row, column),
            }
            if rows.at > offset {
                return (row, column);
            }
        }
    }
}

/// Where the first `chars` characters of UTF-8 `bytes` end (`None` if it
/// has fewer).
fn char_end(bytes: &[u8], chars: usize) -> Option<usize> {
    if bytes.get(..chars).is_some_and(<[u8]>::is_ascii) {
        return Some(chars);
    }
    let mut seen = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // Continuation bytes are 0b10xx_xxxx; every other byte starts a character.
        if b & 0xC0 != 0x80 {
            if seen == chars {
                return Some(i);
            }
            seen += 1;
        }
    }
    (seen == chars).then_some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row<'a> = [Option<&'a str>; FIELDS.len()];

    /// The rows `answer` reads as, or the column and message of its first bad row.
    fn check(answer: &str, unit: Unit, expect: Result<Vec<Row<'_>>, (usize, &str)>) {
        let bytes = answer.as_bytes();
        let got: Result<Vec<Row<'_>>, BadRow> = Rows { answer: bytes, at: 0, unit }
            .map(|r| r.map(|row| row.map(|s| s.map(|(a, b)| &answer[a..b]))))
            .collect();
        match (got, expect) {
            (Ok(got), Ok(expect)) => assert_eq!(got, expect, "{answer:?} in {unit:?}"),
            (Err(e), Err((column, message))) => {
                assert_eq!(e.column, column, "{answer:?} in {unit:?}: {}", e.message);
                assert!(e.message.contains(message), "{answer:?} in {unit:?}: {:?} lacks {message:?}", e.message);
            }
            (got, expect) => panic!("{answer:?} in {unit:?}: {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn rows_read_back_by_their_lengths() {
        use Unit::{Bytes, Chars};
        let a = [Some("a@x.fr"), None, Some(""), None, Some("Jean")];
        check("", Bytes, Ok(vec![]));
        check("6:a@x.fr:0::4:Jean", Bytes, Ok(vec![a]));
        check("6:a@x.fr:0::4:Jean6:a@x.fr:0::4:Jean", Chars, Ok(vec![a, a]));
        // Text that looks like lengths and separators is only text.
        check("3:1:2::5:5:abc:", Bytes, Ok(vec![[Some("1:2"), None, None, Some("5:abc"), None]]));
        // Characters against bytes.
        check("2:éa::::", Chars, Ok(vec![[Some("éa"), None, None, None, None]]));
        check("3:éa::::", Bytes, Ok(vec![[Some("éa"), None, None, None, None]]));
        check("4:🦀::::", Bytes, Ok(vec![[Some("🦀"), None, None, None, None]]));
        check("1:🦀::::", Chars, Ok(vec![[Some("🦀"), None, None, None, None]]));
        check("1:\0::::", Bytes, Ok(vec![[Some("\0"), None, None, None, None]]));
        // What does not read back: the column where it stops.
        check("2:éa::::", Bytes, Err((1, "a length and ':' expected")));
        check("5:abc", Bytes, Err((0, "5 bytes announced, fewer left")));
        check("5:abc", Chars, Err((0, "5 characters announced, fewer left")));
        check("1:a", Bytes, Err((1, "a length and ':' expected")));
        check("1:a::::1:b", Bytes, Err((1, "at byte 10")));
        check("abc", Bytes, Err((0, "a length and ':' expected")));
        check("99999999999999999999999:", Bytes, Err((0, "too large")));
        check("-1:a::::", Bytes, Err((0, "a length and ':' expected")));
    }

    #[test]
    fn char_end_counts_characters_not_bytes() {
        for (text, chars, expect) in [
            ("", 0, Some(0)),
            ("abc", 3, Some(3)),
            ("abc", 4, None),
            ("é", 1, Some(2)),
            ("éa", 1, Some(2)),
            ("aé", 2, Some(3)),
            ("🦀x", 1, Some(4)),
            ("e\u{301}x", 2, Some(3)),
            ("é", 2, None),
        ] {
            assert_eq!(char_end(text.as_bytes(), chars), expect, "{text:?} {chars}");
        }
    }

    /// Where an answer stops being UTF-8: the row read so far and the column.
    #[test]
    fn field_at_names_the_row_and_column_of_a_bad_byte() {
        let answer = b"6:a@x.fr:0::4:Jean6:b@x.fr:0:4:Ma\xffr4:Jean";
        let bad = answer.iter().position(|&b| b == 0xff).unwrap();
        let (row, column) = field_at(answer, Unit::Bytes, bad);
        assert_eq!((row[EMAIL].map(|(a, b)| &answer[a..b]), column), (Some(&b"b@x.fr"[..]), LAST_NAME));
    }
}
