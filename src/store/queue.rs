//! The open requests of some structures, in framed pages by id: as their
//! managers' queues show them (a run's pending sheet: only the sheet's
//! columns) and as the diff needs them (their keys and states).
//!
//! After a run the queues hold tens of thousands of requests, after a first
//! adoption a million. Read as rows (26 columns, each row turned into an
//! `AnyRow` and decoded), 50,286 of them took 1.2 s of a 7.5 s plan; a framed
//! page is one row for 10,000 requests (see `framing`).

use sqlx::{AnyConnection, any::AnyRow};

use super::{
    RequestFilter, StoreError,
    framing::{Rows, Span, Unit, framed_row, length_unit, page_aggregate, page_answer},
    queries::{STRUCTURES_PER_QUERY, where_filter},
    sql::{Binds, Interner, db, is_sqlite, overlap, parse_time, query},
};
use crate::{
    core::{
        approval::{QueuedRequest, RequestId, RequestState},
        change::{ChangeKey, ChangeKind},
        plan::OpenRequest,
        queue::Queue,
    },
    domain::{Email, Placement, StructureId},
};

/// Requests per page.
const PAGE: usize = 10_000;

/// The columns read, in order: how errors name each, and the expression the
/// framing measures and writes.
const COLUMNS: [(&str, &str); 13] = [
    ("id", "CAST(id AS TEXT)"),
    ("state", "state"),
    ("kind", "kind"),
    ("structure", "structure"),
    ("structure_name", "structure_name"),
    // `ApprovalRequest::service`: the placement after, else the one before.
    ("service", "CASE WHEN after_present = 1 THEN after_service ELSE before_service END"),
    ("email", "email"),
    ("last_name", "last_name"),
    ("first_name", "first_name"),
    ("description", "description"),
    ("reason", "reason"),
    ("created_at", "created_at"),
    ("manager", "manager"),
];

/// The pending and approved requests of `structures`, by id.
pub(crate) async fn queued_requests(conn: &mut AnyConnection, structures: &[StructureId]) -> Result<Queue, StoreError> {
    let unit = length_unit(conn).await?;
    read_queue(conn, structures, unit, PAGE).await
}

/// [`queued_requests`] in pages of `page` requests (the tests choose).
pub(super) async fn read_queue(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
    page: usize,
) -> Result<Queue, StoreError> {
    const CTX: &str = "read the queued requests";
    let mut queue = Queue::default();
    read_framed(conn, structures, unit, page, &COLUMNS, CTX, &mut queue, queued).await?;
    // Pages (and chunks of structures) may come in any order.
    queue.sort_by_id();
    Ok(queue)
}

/// Open requests per page of the diff's read: it runs beside the sort of
/// the desired state, a plan's peak of memory, and a page's answer is held
/// twice while it is read (the database's, the driver's copy). Against
/// reading them as rows, 10,000 a page added 3.5 MB to the peak of a
/// million-row plan after a run (50,286 open requests), this many 1 MB.
const OPEN_PAGE: usize = 2_500;

/// The columns the diff reads of an open request: its key and state.
const OPEN_COLUMNS: [(&str, &str); 10] = [
    ("id", "CAST(id AS TEXT)"),
    ("state", "state"),
    ("structure", "structure"),
    ("email", "email"),
    ("before_present", "CAST(before_present AS TEXT)"),
    ("before_service", "before_service"),
    ("before_rights", "before_rights"),
    ("after_present", "CAST(after_present AS TEXT)"),
    ("after_service", "after_service"),
    ("after_rights", "after_rights"),
];

/// The pending and approved requests of `structures`, by id: only their
/// keys and states (the diff needs nothing else).
///
/// In framed pages: after a first adoption (a request per person), a
/// million of them read as rows took 6.3 s of a plan (BENCHMARKS.md,
/// session 14).
pub(crate) async fn open_requests(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Vec<OpenRequest>, StoreError> {
    let unit = length_unit(conn).await?;
    read_open(conn, structures, unit, OPEN_PAGE).await
}

/// [`open_requests`] in pages of `page` requests (the tests choose).
pub(super) async fn read_open(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
    page: usize,
) -> Result<Vec<OpenRequest>, StoreError> {
    const CTX: &str = "read the open requests";
    let mut out = Vec::new();
    read_framed(conn, structures, unit, page, &OPEN_COLUMNS, CTX, &mut out, open).await?;
    // Pages (and chunks of structures) may come in any order.
    out.sort_unstable_by_key(|r| r.id);
    Ok(out)
}

/// The pending and approved requests of `structures` in pages of `page` by
/// id, each page one framed row of `columns` (the first is the id as text),
/// each request added to `out` by `decode`. The next page is asked for
/// before the last one is decoded.
#[allow(clippy::too_many_arguments)]
async fn read_framed<O, const N: usize>(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
    page: usize,
    columns: &[(&'static str, &'static str); N],
    context: &'static str,
    out: &mut O,
    decode: Decode<O, N>,
) -> Result<(), StoreError> {
    let sqlite = is_sqlite(conn);
    let framed = framed_row(unit, &columns.map(|(_, sql)| sql));
    let mut interner = Interner::default();
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let ask = PageQuery { structures: chunk, framed: &framed, sqlite, page, context };
        let mut row = ask.from(conn, None)?.await.map_err(db(context))?;
        loop {
            let answer = page_answer(&row, sqlite, context)?;
            let Some((read, last)) = extent::<N>(answer, unit) else {
                // It does not read back: decoding it says where and why.
                read_page(answer, unit, columns, &mut interner, out, decode)?;
                return Err(corrupt(columns, None, 0, "a page does not read back".into()));
            };
            let Some(after) = last.filter(|_| read == page) else {
                read_page(answer, unit, columns, &mut interner, out, decode)?;
                break;
            };
            // The next page is asked for before this one is decoded: the
            // database reads it meanwhile.
            let next = ask.from(conn, Some(after))?;
            let (next, decoded) = overlap(next, || read_page(answer, unit, columns, &mut interner, out, decode)).await;
            decoded?;
            row = next.map_err(db(context))?;
        }
    }
    Ok(())
}

/// The query of a page of [`read_framed`].
struct PageQuery<'a> {
    structures: &'a [StructureId],
    framed: &'a str,
    sqlite: bool,
    page: usize,
    context: &'static str,
}

impl PageQuery<'_> {
    /// The next `page` open requests of the structures after the id `after`.
    fn from<'c>(
        &self,
        conn: &'c mut AnyConnection,
        after: Option<RequestId>,
    ) -> Result<impl Future<Output = Result<AnyRow, sqlx::Error>> + 'c, StoreError> {
        let f = RequestFilter {
            structures: self.structures.to_vec(),
            states: vec![RequestState::Pending, RequestState::Approved],
            ..RequestFilter::default()
        };
        let mut b = Binds::new(conn);
        let mut filter = where_filter(&f, &mut b);
        if let Some(id) = after {
            filter.push_str(&format!(" AND id > {}", b.push(id)));
        }
        // The LIMIT follows the ORDER BY: the page is the next `page` ids,
        // whatever order the aggregate then reads them in.
        let (aggregate, framed, page) = (page_aggregate(self.sqlite), self.framed, self.page);
        let sql =
            format!("SELECT {aggregate} FROM (SELECT {framed} FROM requests{filter} ORDER BY id LIMIT {page}) AS page");
        Ok(query(sql, b, self.context)?.fetch_one(conn))
    }
}

/// How many requests a page's answer holds and its largest id, read off the
/// framing alone, so that the next page is asked for before this one is
/// decoded. `None` when it does not read back: [`read_page`] says where.
fn extent<const N: usize>(answer: &[u8], unit: Unit) -> Option<(usize, Option<RequestId>)> {
    let (mut read, mut last) = (0, None);
    for row in (Rows::<N> { answer, at: 0, unit }) {
        let (a, b) = row.ok()?[0]?;
        let id: RequestId = std::str::from_utf8(&answer[a..b]).ok()?.parse().ok()?;
        read += 1;
        last = last.max(Some(id));
    }
    Some((read, last))
}

/// Adds one request of a page to the output.
type Decode<O, const N: usize> = fn(&Fields<'_, N>, &mut Interner, &mut O) -> Result<(), StoreError>;

/// One request of a page: its fields, and errors that name it and the column.
struct Fields<'a, const N: usize> {
    text: &'a str,
    row: [Span; N],
    columns: &'a [(&'static str, &'static str); N],
}

impl<'a, const N: usize> Fields<'a, N> {
    /// Column `i`'s text, `None` for NULL.
    fn get(&self, i: usize) -> Result<Option<&'a str>, StoreError> {
        // With lengths in bytes, a wrong one may cut a character.
        self.row[i]
            .map(|(a, b)| self.text.get(a..b).ok_or_else(|| self.corrupt(i, "a length cuts a character")))
            .transpose()
    }

    fn required(&self, i: usize) -> Result<&'a str, StoreError> {
        self.get(i)?.ok_or_else(|| self.corrupt(i, "NULL"))
    }

    /// The id column's text, when it reads.
    fn id(&self) -> Option<&'a str> {
        self.row[0].and_then(|(a, b)| self.text.get(a..b))
    }

    fn corrupt(&self, i: usize, message: impl Into<String>) -> StoreError {
        corrupt(self.columns, self.id(), i, message.into())
    }
}

fn corrupt<const N: usize>(
    columns: &[(&'static str, &'static str); N],
    id: Option<&str>,
    column: usize,
    message: String,
) -> StoreError {
    StoreError::Corrupt { table: "requests", row: id.unwrap_or("?").to_string(), column: columns[column].0, message }
}

/// Adds the requests of a page's answer to `out`. Errors name the request
/// (its id, when it reads) and the column.
fn read_page<O, const N: usize>(
    answer: &[u8],
    unit: Unit,
    columns: &[(&'static str, &'static str); N],
    interner: &mut Interner,
    out: &mut O,
    decode: Decode<O, N>,
) -> Result<(), StoreError> {
    let text = std::str::from_utf8(answer)
        .map_err(|e| corrupt(columns, None, 0, format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    for row in (Rows::<N> { answer, at: 0, unit }) {
        let row = row.map_err(|e| corrupt(columns, e.key.and_then(|(a, b)| text.get(a..b)), e.column, e.message))?;
        decode(&Fields { text, row, columns }, interner, out)?;
    }
    Ok(())
}

/// A request of the queues' read ([`COLUMNS`]).
fn queued(f: &Fields<'_, 13>, interner: &mut Interner, out: &mut Queue) -> Result<(), StoreError> {
    let id = f.required(0)?;
    let state = f.required(1)?;
    let kind = f.required(2)?;
    let created_at = f.required(11)?;
    let request = QueuedRequest {
        id: id.parse().map_err(|e| f.corrupt(0, format!("{id:?}: {e}")))?,
        state: RequestState::parse(state).ok_or_else(|| f.corrupt(1, format!("unknown state {state:?}")))?,
        kind: ChangeKind::parse(kind).ok_or_else(|| f.corrupt(2, format!("unknown kind {kind:?}")))?,
        structure: &interner.structure(f.required(3)?).map_err(|m| f.corrupt(3, m))?,
        structure_name: f.required(4)?,
        service: f.get(5)?,
        email: f.required(6)?,
        last_name: f.get(7)?,
        first_name: f.get(8)?,
        description: f.required(9)?,
        reason: f.required(10)?,
        created_at: parse_time(created_at).map_err(|m| f.corrupt(11, m))?,
        manager: f.required(12)?,
    };
    out.push(&request);
    Ok(())
}

/// A request of the diff's read ([`OPEN_COLUMNS`]).
fn open(f: &Fields<'_, 10>, interner: &mut Interner, out: &mut Vec<OpenRequest>) -> Result<(), StoreError> {
    let id = f.required(0)?;
    let state = f.required(1)?;
    let email = f.required(3)?;
    // As `Cols::placement_in`: `<prefix>_present`, then the service (NULL or
    // '': the structure level) and the rights.
    let mut placement = |present: usize| -> Result<Option<Placement>, StoreError> {
        match f.required(present)? {
            "0" => Ok(None),
            "1" => Ok(Some(Placement {
                service: interner
                    .service(f.get(present + 1)?.unwrap_or_default())
                    .map_err(|m| f.corrupt(present + 1, m))?,
                rights: interner
                    .rights(f.get(present + 2)?.unwrap_or_default())
                    .map_err(|m| f.corrupt(present + 2, m))?,
            })),
            n => Err(f.corrupt(present, format!("expected 0 or 1, found {n}"))),
        }
    };
    let (before, after) = (placement(4)?, placement(7)?);
    out.push(OpenRequest {
        id: id.parse().map_err(|e| f.corrupt(0, format!("{id:?}: {e}")))?,
        state: RequestState::parse(state).ok_or_else(|| f.corrupt(1, format!("unknown state {state:?}")))?,
        key: ChangeKey {
            structure: interner.structure(f.required(2)?).map_err(|m| f.corrupt(2, m))?,
            // What the store holds was parsed before (see `Cols::email`).
            email: if Email::is_normalized(email) {
                Email::from_normalized(email)
            } else {
                Email::parse(email).map_err(|e| f.corrupt(3, format!("{email:?}: {e}")))?
            },
            before,
            after,
        },
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page's answer as the database frames it.
    fn frame(rows: &[[Option<&str>; 13]]) -> String {
        let field = |f: &Option<&str>| f.map_or(":".to_string(), |t| format!("{}:{t}", t.len()));
        rows.iter().flat_map(|r| r.iter().map(field)).collect()
    }

    fn read(answer: &str) -> Result<Queue, String> {
        let mut out = Queue::default();
        read_page(answer.as_bytes(), Unit::Bytes, &COLUMNS, &mut Interner::default(), &mut out, queued)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    const ROW: [Option<&str>; 13] = [
        Some("7"),
        Some("pending"),
        Some("detach"),
        Some("12345678200010"),
        Some("ACME"),
        None,
        Some("a@x.fr"),
        Some("Noël"),
        None,
        Some("Détacher a@x.fr"),
        Some("left"),
        Some("2026-03-02T06:31:00Z"),
        Some("gp@x.fr"),
    ];

    fn read_open(answer: &str) -> Result<Vec<OpenRequest>, String> {
        let mut out = Vec::new();
        read_page(answer.as_bytes(), Unit::Bytes, &OPEN_COLUMNS, &mut Interner::default(), &mut out, open)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn an_open_request_reads_back_its_key_and_names_the_column_that_does_not() {
        let frame10 = |rows: &[[Option<&str>; 10]]| {
            let field = |f: &Option<&str>| f.map_or(":".to_string(), |t| format!("{}:{t}", t.len()));
            rows.iter().flat_map(|r| r.iter().map(field)).collect::<String>()
        };
        let row = [
            Some("9"),
            Some("approved"),
            Some("12345678200010"),
            Some("a@x.fr"),
            Some("1"),
            None,
            Some("factures:consultation"),
            Some("1"),
            Some("COMPTA"),
            Some("factures:modification"),
        ];
        let got = read_open(&frame10(&[row])).unwrap();
        let key = &got[0].key;
        assert_eq!((got[0].id, got[0].state), (9, RequestState::Approved));
        assert_eq!((key.structure.as_str(), key.email.as_str()), ("12345678200010", "a@x.fr"));
        let (before, after) = (key.before.as_ref().unwrap(), key.after.as_ref().unwrap());
        assert_eq!((before.service.as_ref(), before.rights.to_string().as_str()), (None, "factures:consultation"));
        assert_eq!(
            (after.service.as_ref().map(|s| s.as_str()), after.rights.to_string().as_str()),
            (Some("COMPTA"), "factures:modification")
        );
        let mut detach = row;
        detach[7..].copy_from_slice(&[Some("0"), None, None]);
        assert_eq!(read_open(&frame10(&[detach])).unwrap()[0].key.after, None);
        for (column, value, expect) in [
            (4, Some("2"), "row 9, column before_present: expected 0 or 1, found 2"),
            (3, Some("not an address"), "row 9, column email"),
            (1, Some("lost"), "row 9, column state: unknown state \"lost\""),
        ] {
            let mut bad = row;
            bad[column] = value;
            let err = read_open(&frame10(&[row, bad])).unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
    }

    #[test]
    fn a_page_reads_back_each_column_and_names_the_request_and_column_that_do_not() {
        let got = read(&frame(&[ROW])).unwrap();
        assert_eq!(got.len(), 1);
        let r = got.iter().next().unwrap();
        assert_eq!((r.id, r.state, r.kind), (7, RequestState::Pending, ChangeKind::Detach));
        assert_eq!((r.structure.as_str(), r.service, r.email), ("12345678200010", None, "a@x.fr"));
        assert_eq!((r.last_name, r.first_name, r.structure_name, r.manager), (Some("Noël"), None, "ACME", "gp@x.fr"));
        assert_eq!((r.description, r.reason), ("Détacher a@x.fr", "left"));
        assert_eq!(r.created_at.to_rfc3339(), "2026-03-02T06:31:00+00:00");
        assert!(read("").unwrap().is_empty());
        for (column, value, expect) in [
            (1, Some("lost"), "row 7, column state: unknown state \"lost\""),
            (2, None, "row 7, column kind: NULL"),
            (11, Some("yesterday"), "row 7, column created_at: \"yesterday\" is not an RFC 3339 time"),
            (0, Some("seven"), "row seven, column id"),
        ] {
            let mut row = ROW;
            row[column] = value;
            let err = read(&frame(&[ROW, row])).unwrap_err();
            assert!(err.contains(expect), "{err}");
        }
        let err = read(&format!("{}9:", frame(&[ROW]))).unwrap_err();
        assert!(err.contains("column id"), "{err}");
    }
}
