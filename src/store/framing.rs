//! The framing of a page answer: ONE row whose text the database builds
//! from length-prefixed fields (`<length>:<text>`, a bare `:` for NULL), which
//! the reader slices back with no escaping and no JSON. Used by the reads
//! that move a table's worth of rows (current attachments, identities, the
//! managers' queues).

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::{
    StoreError,
    sql::{db, is_sqlite},
};

/// What the length before each field counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
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

impl Unit {
    /// The SQL function that measures a field in this unit.
    fn length_function(self) -> &'static str {
        match self {
            Unit::Bytes => "octet_length",
            Unit::Chars => "char_length",
        }
    }
}

/// The SQL of one framed row of `columns`, named `r`: each column's length
/// in `unit`, `:` and its text (`concat` writes NULL as '': an empty length).
pub(super) fn framed_row(unit: Unit, columns: &[&str]) -> String {
    let length = unit.length_function();
    let fields: Vec<String> = columns.iter().map(|c| format!("{length}({c}), ':', {c}")).collect();
    format!("concat({}) AS r", fields.join(", "))
}

/// The aggregate that joins a page's framed rows (`r`) into one answer.
pub(super) fn page_aggregate(sqlite: bool) -> &'static str {
    if sqlite { "CAST(group_concat(r, '') AS BLOB)" } else { "string_agg(r, '')" }
}

/// The framed text of a page's answer, its first column (empty for an
/// empty page). SQLite answers a BLOB, so text that is not UTF-8 is
/// reported with its row and column by the reader rather than failing the
/// decoding.
pub(super) fn page_answer<'r>(row: &'r AnyRow, sqlite: bool, context: &'static str) -> Result<&'r [u8], StoreError> {
    let answer: Option<&[u8]> = if sqlite {
        row.try_get(0).map_err(db(context))?
    } else {
        row.try_get::<Option<&str>, _>(0).map_err(db(context))?.map(str::as_bytes)
    };
    Ok(answer.unwrap_or_default())
}

/// How this connection's answers measure text (see [`Unit`]).
pub(super) async fn length_unit(conn: &mut AnyConnection) -> Result<Unit, StoreError> {
    const CTX: &str = "read the server encoding";
    if is_sqlite(conn) {
        return Ok(Unit::Bytes);
    }
    let row = sqlx::query("SELECT current_setting('server_encoding')").fetch_one(&mut *conn).await.map_err(db(CTX))?;
    let encoding: String = row.try_get(0).map_err(db(CTX))?;
    Ok(if matches!(encoding.as_str(), "UTF8" | "SQL_ASCII") { Unit::Bytes } else { Unit::Chars })
}

/// Where a field's text is in the answer (start, end), `None` for NULL.
pub(super) type Span = Option<(usize, usize)>;

/// The rows of a page's answer: each `N` fields one after the other, each
/// `<length>:<text>`, or `:` for NULL.
pub(super) struct Rows<'a, const N: usize> {
    pub answer: &'a [u8],
    pub at: usize,
    pub unit: Unit,
}

/// A row that does not read back: its first field (the row's key) if read,
/// the field that did not.
#[derive(Debug)]
pub(super) struct BadRow {
    pub key: Span,
    pub column: usize,
    pub message: String,
}

impl<const N: usize> Iterator for Rows<'_, N> {
    type Item = Result<[Span; N], BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at == self.answer.len() {
            return None;
        }
        let mut row = [None; N];
        for column in 0..N {
            let at = self.at;
            match self.field() {
                Ok(span) => row[column] = span,
                Err(m) => {
                    // Nothing after a broken field reads.
                    self.at = self.answer.len();
                    let message = format!("the answer does not read back at byte {at}: {m}");
                    return Some(Err(BadRow { key: row[0], column, message }));
                }
            }
        }
        Some(Ok(row))
    }
}

impl<const N: usize> Rows<'_, N> {
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
pub(super) fn field_at<const N: usize>(answer: &[u8], unit: Unit, offset: usize) -> ([Span; N], usize) {
    let mut rows = Rows::<N> { answer, at: 0, unit };
    loop {
        let mut row = [None; N];
        for column in 0..N {
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

    type Row<'a> = [Option<&'a str>; 5];

    /// The rows `answer` reads as, or the column and message of its first bad row.
    fn check(answer: &str, unit: Unit, expect: Result<Vec<Row<'_>>, (usize, &str)>) {
        let bytes = answer.as_bytes();
        let got: Result<Vec<Row<'_>>, BadRow> = Rows::<5> { answer: bytes, at: 0, unit }
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
        let (row, column) = field_at::<5>(answer, Unit::Bytes, bad);
        assert_eq!((row[0].map(|(a, b)| &answer[a..b]), column), (Some(&b"b@x.fr"[..]), 3));
    }
}
