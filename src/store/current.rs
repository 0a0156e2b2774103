//! The current attachments of a run's structures, read in pages: each page
//! is ONE row whose text the database builds from length-prefixed fields
//! and the reader slices back, with no escaping and no JSON.

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::{
    CurrentState, StoreError,
    framing::{Rows, Unit, field_at, framed_row, length_unit, page_aggregate, page_answer},
    sql::{Binds, Interner, db, is_sqlite, overlap, query},
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

/// [`current_attachments`] with lengths in `unit` (the tests choose it).
pub(super) async fn read_current(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
) -> Result<CurrentState, StoreError> {
    let sqlite = is_sqlite(conn);
    let mut out = CurrentState::default();
    let mut interner = Interner::default();
    // One structure at a time: `structure = ? AND (email, service) > (?, ?)`
    // is a range of the primary key, so each page starts where the last ended.
    for structure in structures {
        let mut row = page_query(conn, sqlite, unit, structure, None)?.await.map_err(db(CTX))?;
        loop {
            let answer = page_answer(&row, sqlite, CTX)?;
            let Some((rows, largest)) = extent(answer, unit) else {
                // It does not read back: decoding it says where and why.
                read_page(answer, unit, structure, &mut interner, &mut out)?;
                return Err(StoreError::Corrupt {
                    table: "current_attachments",
                    row: format!("{structure}/?"),
                    column: FIELDS[EMAIL],
                    message: "a page does not read back".into(),
                });
            };
            // The page's last key in the database's order. SQLite does not
            // promise an aggregate's input order, but its binary collation is
            // Rust's byte order: the largest key read. A PostgreSQL collation
            // may differ from byte order: the database says.
            let after = match (rows == PAGE, largest) {
                (false, _) | (true, None) => None,
                (true, Some((email, service))) if sqlite => Some((email.to_string(), service.to_string())),
                (true, Some(_)) => Some((row.try_get(1).map_err(db(CTX))?, row.try_get(2).map_err(db(CTX))?)),
            };
            let Some(after) = after else {
                read_page(answer, unit, structure, &mut interner, &mut out)?;
                break;
            };
            // The next page is asked for before this one is decoded: the
            // database reads it meanwhile (a million rows: ~0.9 s of SQLite).
            let next = page_query(conn, sqlite, unit, structure, Some(after))?;
            let (next, decoded) = overlap(next, || read_page(answer, unit, structure, &mut interner, &mut out)).await;
            decoded?;
            row = next.map_err(db(CTX))?;
        }
    }
    // SQLite's binary collation gives the diff's order already; a PostgreSQL
    // collation may not (it may ignore punctuation, say): `finish` checks.
    Ok(out.finish())
}

const CTX: &str = "read current attachments";

/// The query of one page of `structure`, from after the key `after` on.
fn page_query<'c>(
    conn: &'c mut AnyConnection,
    sqlite: bool,
    unit: Unit,
    structure: &StructureId,
    after: Option<(String, String)>,
) -> Result<impl Future<Output = Result<AnyRow, sqlx::Error>> + 'c, StoreError> {
    let mut b = Binds::new(conn);
    let mut filter = format!("structure = {}", b.push(structure.as_str().to_string()));
    if let Some((email, service)) = after {
        let (e, v) = (b.push(email), b.push(service));
        filter.push_str(&format!(" AND (email, service) > ({e}, {v})"));
    }
    Ok(query(page_sql(sqlite, unit, &filter), b, CTX)?.fetch_one(conn))
}

/// One page of at most [`PAGE`] rows of one structure, as ONE row: the
/// fields of every row, and on PostgreSQL the page's last key (see
/// [`read_current`]).
fn page_sql(sqlite: bool, unit: Unit, filter: &str) -> String {
    let row = framed_row(unit, &FIELDS);
    let page = |columns: &str| {
        format!(
            "SELECT {columns} FROM current_attachments WHERE {filter} \
             ORDER BY structure, email, service LIMIT {PAGE}"
        )
    };
    if sqlite {
        format!("SELECT {} FROM ({})", page_aggregate(true), page(&row))
    } else {
        // Arrays compare element by element in the columns' collation, as
        // the ORDER BY and the filter's row comparison do.
        format!(
            "SELECT {}, (max(ARRAY[email, service]))[1], (max(ARRAY[email, service]))[2] \
             FROM ({}) AS page",
            page_aggregate(false),
            page(&format!("{row}, email, service"))
        )
    }
}

/// How many rows a page's answer holds and its largest (e-mail, service) in
/// byte order (a NULL service as ''), read off the framing alone, so that
/// the next page is asked for before this one is decoded. `None` when the
/// answer does not read back (a broken length, a NULL address, text that is
/// not UTF-8): [`read_page`] says where.
fn extent(answer: &[u8], unit: Unit) -> Option<(usize, Option<(&str, &str)>)> {
    let mut rows = 0;
    let mut largest: Option<(&[u8], &[u8])> = None;
    for row in (Rows::<{ FIELDS.len() }> { answer, at: 0, unit }) {
        let row = row.ok()?;
        let (a, b) = row[EMAIL]?;
        let key = (&answer[a..b], row[SERVICE].map_or(&[][..], |(a, b)| &answer[a..b]));
        if largest.is_none_or(|largest| key > largest) {
            largest = Some(key);
        }
        rows += 1;
    }
    let largest = match largest {
        Some((email, service)) => Some((std::str::from_utf8(email).ok()?, std::str::from_utf8(service).ok()?)),
        None => None,
    };
    Some((rows, largest))
}

/// Adds the rows of a page's answer to `out`. Errors name the structure, the
/// address (when it reads) and the column.
fn read_page(
    answer: &[u8],
    unit: Unit,
    structure: &StructureId,
    interner: &mut Interner,
    out: &mut CurrentState,
) -> Result<(), StoreError> {
    let corrupt = |email: Option<&str>, column: usize, message: String| StoreError::Corrupt {
        table: "current_attachments",
        row: format!("{structure}/{}", email.unwrap_or("?")),
        column: FIELDS[column],
        message,
    };
    // Checked whole, once; then every field is a slice of it.
    let text = std::str::from_utf8(answer).map_err(|e| {
        let (row, column) = field_at::<{ FIELDS.len() }>(answer, unit, e.valid_up_to());
        let email = row[EMAIL].map(|(a, b)| String::from_utf8_lossy(&answer[a..b]));
        corrupt(email.as_deref(), column, "not UTF-8".into())
    })?;
    // A person's attachments come one after the other: their address repeats.
    let mut previous: Option<(&str, Address<'_>)> = None;
    for row in (Rows::<{ FIELDS.len() }> { answer, at: 0, unit }) {
        let row = row.map_err(|e| {
            let email = e.key.and_then(|(a, b)| text.get(a..b));
            corrupt(email, e.column, e.message)
        })?;
        let field = |i: usize, email: Option<&str>| -> Result<Option<&str>, StoreError> {
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
        previous = Some((stored, email));
    }
    Ok(())
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
