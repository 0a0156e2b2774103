//! The open requests of some structures as their managers' queues show them
//! (a run's pending sheet): only the sheet's columns, in framed pages by id.
//!
//! After a run the queues hold tens of thousands of requests. Read as rows
//! (26 columns, each row turned into an `AnyRow` and decoded), 50,286 of
//! them took 1.2 s of a 7.5 s plan; a framed page is one row for 10,000
//! requests (see `framing`).

use sqlx::AnyConnection;

use super::{
    RequestFilter, StoreError,
    framing::{Rows, Unit, framed_row, length_unit, page_aggregate, page_answer},
    queries::{STRUCTURES_PER_QUERY, where_filter},
    sql::{Binds, Interner, db, is_sqlite, parse_time, query},
};
use crate::{
    core::{
        approval::{QueuedRequest, RequestId, RequestState},
        change::ChangeKind,
    },
    domain::{PersonName, StructureId},
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
pub(crate) async fn queued_requests(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Vec<QueuedRequest>, StoreError> {
    let unit = length_unit(conn).await?;
    read_queue(conn, structures, unit, PAGE).await
}

/// [`queued_requests`] in pages of `page` requests (the tests choose).
pub(super) async fn read_queue(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    unit: Unit,
    page: usize,
) -> Result<Vec<QueuedRequest>, StoreError> {
    const CTX: &str = "read the queued requests";
    let sqlite = is_sqlite(conn);
    let framed = framed_row(unit, &COLUMNS.map(|(_, sql)| sql));
    let aggregate = page_aggregate(sqlite);
    let states = vec![RequestState::Pending, RequestState::Approved];
    let mut interner = Interner::default();
    let mut out = Vec::new();
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let mut after: Option<RequestId> = None;
        loop {
            let f = RequestFilter { structures: chunk.to_vec(), states: states.clone(), ..RequestFilter::default() };
            let mut b = Binds::new(conn);
            let mut filter = where_filter(&f, &mut b);
            if let Some(id) = after {
                filter.push_str(&format!(" AND id > {}", b.push(id)));
            }
            // The LIMIT follows the ORDER BY: the page is the next `page` ids,
            // whatever order the aggregate then reads them in.
            let sql = format!(
                "SELECT {aggregate} FROM (SELECT {framed} FROM requests{filter} ORDER BY id LIMIT {page}) AS page"
            );
            let row = query(sql, b, CTX)?.fetch_one(&mut *conn).await.map_err(db(CTX))?;
            let before = out.len();
            read_page(page_answer(&row, sqlite, CTX)?, unit, &mut interner, &mut out)?;
            if out.len() - before < page {
                break;
            }
            after = out[before..].iter().map(|r| r.id).max();
        }
    }
    // Pages (and chunks of structures) may come in any order.
    out.sort_unstable_by_key(|r| r.id);
    Ok(out)
}

/// Adds the requests of a page's answer to `out`. Errors name the request
/// (its id, when it reads) and the column.
fn read_page(
    answer: &[u8],
    unit: Unit,
    interner: &mut Interner,
    out: &mut Vec<QueuedRequest>,
) -> Result<(), StoreError> {
    let corrupt = |id: Option<&str>, column: usize, message: String| StoreError::Corrupt {
        table: "requests",
        row: id.unwrap_or("?").to_string(),
        column: COLUMNS[column].0,
        message,
    };
    let text =
        std::str::from_utf8(answer).map_err(|e| corrupt(None, 0, format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    for row in (Rows::<{ COLUMNS.len() }> { answer, at: 0, unit }) {
        let row = row.map_err(|e| corrupt(e.key.and_then(|(a, b)| text.get(a..b)), e.column, e.message))?;
        // With lengths in bytes, a wrong one may cut a character.
        let field = |i: usize, id: Option<&str>| -> Result<Option<&str>, StoreError> {
            row[i]
                .map(|(a, b)| text.get(a..b).ok_or_else(|| corrupt(id, i, "a length cuts a character".into())))
                .transpose()
        };
        let id_text = field(0, None)?.ok_or_else(|| corrupt(None, 0, "NULL".into()))?;
        let id = Some(id_text);
        let required = |i: usize| field(i, id)?.ok_or_else(|| corrupt(id, i, "NULL".into()));
        let state = required(1)?;
        let kind = required(2)?;
        let structure = required(3)?;
        let created_at = required(11)?;
        let structure = interner.structure(structure).map_err(|m| corrupt(id, 3, m))?;
        out.push(QueuedRequest {
            id: id_text.parse().map_err(|e| corrupt(id, 0, format!("{id_text:?}: {e}")))?,
            state: RequestState::parse(state).ok_or_else(|| corrupt(id, 1, format!("unknown state {state:?}")))?,
            kind: ChangeKind::parse(kind).ok_or_else(|| corrupt(id, 2, format!("unknown kind {kind:?}")))?,
            structure,
            structure_name: required(4)?.to_string(),
            service: field(5, id)?.map(str::to_string),
            email: required(6)?.to_string(),
            name: PersonName { last_name: field(7, id)?.map(Into::into), first_name: field(8, id)?.map(Into::into) },
            description: required(9)?.to_string(),
            reason: required(10)?.to_string(),
            created_at: parse_time(created_at).map_err(|m| corrupt(id, 11, m))?,
            manager: required(12)?.to_string(),
        });
    }
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

    fn read(answer: &str) -> Result<Vec<QueuedRequest>, String> {
        let mut out = Vec::new();
        read_page(answer.as_bytes(), Unit::Bytes, &mut Interner::default(), &mut out).map_err(|e| e.to_string())?;
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

    #[test]
    fn a_page_reads_back_each_column_and_names_the_request_and_column_that_do_not() {
        let got = read(&frame(&[ROW])).unwrap();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!((r.id, r.state, r.kind), (7, RequestState::Pending, ChangeKind::Detach));
        assert_eq!((r.structure.as_str(), r.service.as_deref(), r.email.as_str()), ("12345678200010", None, "a@x.fr"));
        assert_eq!((r.name.last_name.as_deref(), r.name.first_name.as_deref()), (Some("Noël"), None));
        assert_eq!(r.created_at.to_rfc3339(), "2026-03-02T06:31:00+00:00");
        assert_eq!(read(""), Ok(vec![]));
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
