//! Pages for screens, so tens of thousands of rows are never read whole:
//! requests (the filter of `list_requests` plus services, a search on name
//! or e-mail, a sort, LIMIT/OFFSET) and current attachments (structures,
//! service, search).

use sqlx::AnyConnection;

use super::{
    CurrentAttachment, RequestFilter, StoreError,
    queries::{CURRENT_COLS, REQUEST_COLS, current_from_row, request_from_row, where_filter},
    sql::{Binds, Cols, Interner, db, query, to_i64},
};
use crate::{
    core::approval::{ApprovalRequest, RequestId},
    domain::{StructureId, text::fold},
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestSort {
    #[default]
    Created,
    Id,
    Structure,
    Email,
    Kind,
    State,
}

impl RequestSort {
    pub const ALL: [RequestSort; 6] = [
        RequestSort::Created,
        RequestSort::Id,
        RequestSort::Structure,
        RequestSort::Email,
        RequestSort::Kind,
        RequestSort::State,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestSort::Created => "created",
            RequestSort::Id => "id",
            RequestSort::Structure => "structure",
            RequestSort::Email => "email",
            RequestSort::Kind => "kind",
            RequestSort::State => "state",
        }
    }

    pub fn parse(s: &str) -> Option<RequestSort> {
        RequestSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A column from a fixed list: never user text in the SQL.
    fn column(self) -> &'static str {
        match self {
            RequestSort::Created => "created_at",
            RequestSort::Id => "id",
            RequestSort::Structure => "structure",
            RequestSort::Email => "email",
            RequestSort::Kind => "kind",
            RequestSort::State => "state",
        }
    }
}

/// Which requests a screen shows; empty lists do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestQuery {
    pub filter: RequestFilter,
    /// Service codes, before or after the change.
    pub services: Vec<String>,
    /// Part of the e-mail address, last name or first name, ignoring case
    /// and accents ("helene" finds "Hélène").
    pub search: Option<String>,
    pub sort: RequestSort,
    pub descending: bool,
}

/// The searched text folded as `folded` folds a column: lower case, no
/// accents, ligatures spelt out; LIKE wildcards escaped.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in fold(text).chars() {
        match ch {
            '\\' | '%' | '_' => {
                p.push('\\');
                p.push(ch);
            }
            _ => match plain_of(ch) {
                Some(plain) => p.push_str(plain),
                None => p.push(ch),
            },
        }
    }
    p.push('%');
    p
}

/// Accented Latin letters, by the plain letter they fold to. Names in the
/// store are NFC as read; the combining marks below cover a decomposed one.
const ACCENTED: [(&str, &str); 8] = [
    ("a", "àáâãäåÀÁÂÃÄÅ"),
    ("c", "çÇ"),
    ("e", "èéêëÈÉÊË"),
    ("i", "ìíîïÌÍÎÏ"),
    ("n", "ñÑ"),
    ("o", "òóôõöøÒÓÔÕÖØ"),
    ("u", "ùúûüÙÚÛÜ"),
    ("y", "ýÿÝŸ"),
];
const LIGATURES: [(&str, &str); 4] = [("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae")];
/// What `folded` turns `ch` into, if it changes it beyond case.
fn plain_of(ch: char) -> Option<&'static str> {
    let letter = ACCENTED.iter().find(|(_, accented)| accented.contains(ch)).map(|(plain, _)| *plain);
    letter.or_else(|| LIGATURES.iter().find(|(l, _)| l.starts_with(ch)).map(|(_, plain)| *plain))
}

const COMBINING: &str = "\u{300}\u{301}\u{302}\u{303}\u{308}\u{327}";

/// `column` lower-cased and without accents, in SQL both backends run
/// without an extension (no `unaccent`): `translate` on PostgreSQL, nested
/// `REPLACE`s on SQLite (which has no `translate`, and whose `LOWER` only
/// knows ASCII, hence the capitals in the tables). Constants only: nothing
/// from the request is spliced in.
fn folded(column: &str, sqlite: bool) -> String {
    let mut sql = format!("COALESCE({column}, '')");
    if sqlite {
        for (plain, accented) in ACCENTED {
            for ch in accented.chars() {
                sql = format!("REPLACE({sql}, '{ch}', '{plain}')");
            }
        }
        for ch in COMBINING.chars() {
            sql = format!("REPLACE({sql}, '{ch}', '')");
        }
    } else {
        let from: String = ACCENTED.iter().map(|(_, a)| *a).chain([COMBINING]).collect();
        let to: String = ACCENTED.iter().map(|(p, a)| p.repeat(a.chars().count())).collect();
        sql = format!("translate({sql}, '{from}', '{to}')");
    }
    for (ligature, plain) in LIGATURES {
        sql = format!("REPLACE({sql}, '{ligature}', '{plain}')");
    }
    format!("LOWER({sql})")
}

/// `(email LIKE p OR last_name LIKE p OR first_name LIKE p)`, folded.
fn search_clause(text: &str, b: &mut Binds) -> String {
    let p = like_pattern(text);
    let sqlite = b.sqlite();
    let marks = [b.push(p.clone()), b.push(p.clone()), b.push(p)];
    let like = |column: &str, mark: &str| format!("{} LIKE {mark} ESCAPE '\\'", folded(column, sqlite));
    format!("({} OR {} OR {})", like("email", &marks[0]), like("last_name", &marks[1]), like("first_name", &marks[2]))
}

fn where_query(q: &RequestQuery, b: &mut Binds) -> String {
    let mut sql = where_filter(&q.filter, b);
    let mut extra = Vec::new();
    if !q.services.is_empty() {
        let after = b.list(q.services.iter().cloned());
        let before = b.list(q.services.iter().cloned());
        extra.push(format!("(after_service IN ({after}) OR before_service IN ({before}))"));
    }
    if let Some(text) = q.search.as_deref().filter(|t| !t.trim().is_empty()) {
        extra.push(search_clause(text, b));
    }
    for clause in extra {
        sql.push_str(if sql.is_empty() { " WHERE " } else { " AND " });
        sql.push_str(&clause);
    }
    sql
}

fn order(q: &RequestQuery) -> String {
    let dir = if q.descending { "DESC" } else { "ASC" };
    // The id breaks ties so pages never overlap.
    format!(" ORDER BY {} {dir}, id {dir}", q.sort.column())
}

pub(crate) async fn page(
    conn: &mut AnyConnection,
    q: &RequestQuery,
    limit: u64,
    offset: u64,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    const CTX: &str = "list a page of requests";
    let mut b = Binds::new(conn);
    let mut sql = format!("SELECT id, {REQUEST_COLS} FROM requests{}{}", where_query(q, &mut b), order(q));
    sql.push_str(&format!(" LIMIT {} OFFSET {}", b.push(to_i64(limit)), b.push(to_i64(offset))));
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    let mut interner = Interner::default();
    rows.iter().map(|row| request_from_row(row, &mut interner)).collect()
}

pub(crate) async fn count(conn: &mut AnyConnection, q: &RequestQuery) -> Result<u64, StoreError> {
    const CTX: &str = "count requests";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT COUNT(*) AS n FROM requests{}", where_query(q, &mut b));
    let row = query(sql, b, CTX)?.fetch_one(conn).await.map_err(db(CTX))?;
    Cols::new(&row, "requests").count("n")
}

pub(crate) async fn ids(conn: &mut AnyConnection, q: &RequestQuery) -> Result<Vec<RequestId>, StoreError> {
    const CTX: &str = "list matching request ids";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT id FROM requests{}{}", where_query(q, &mut b), order(q));
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    rows.iter().map(|r| Cols::new(r, "requests").get::<i64>("id")).collect()
}

/// Which current attachments a screen shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentQuery {
    /// Never empty: an empty list selects nothing.
    pub structures: Vec<StructureId>,
    /// A service code; `None`: every level.
    pub service: Option<String>,
    pub search: Option<String>,
}

fn where_attachments(q: &AttachmentQuery, b: &mut Binds) -> String {
    let mut clauses = vec![format!("structure IN ({})", b.list(q.structures.iter().map(|s| s.as_str().to_string())))];
    if let Some(s) = &q.service {
        clauses.push(format!("service = {}", b.push(s.clone())));
    }
    if let Some(text) = q.search.as_deref().filter(|t| !t.trim().is_empty()) {
        clauses.push(search_clause(text, b));
    }
    format!(" WHERE {}", clauses.join(" AND "))
}

/// A page of attachments (`None`: all of them) by structure, e-mail, service.
pub(crate) async fn attachments(
    conn: &mut AnyConnection,
    q: &AttachmentQuery,
    page: Option<(u64, u64)>,
) -> Result<Vec<CurrentAttachment>, StoreError> {
    const CTX: &str = "list a page of current attachments";
    if q.structures.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = Binds::new(conn);
    let mut sql = format!(
        "SELECT {CURRENT_COLS} FROM current_attachments{} ORDER BY structure, email, service",
        where_attachments(q, &mut b)
    );
    if let Some((limit, offset)) = page {
        sql.push_str(&format!(" LIMIT {} OFFSET {}", b.push(to_i64(limit)), b.push(to_i64(offset))));
    }
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    let mut interner = Interner::default();
    rows.iter().map(|row| current_from_row(row, &mut interner)).collect()
}

pub(crate) async fn count_attachments(conn: &mut AnyConnection, q: &AttachmentQuery) -> Result<u64, StoreError> {
    const CTX: &str = "count current attachments";
    if q.structures.is_empty() {
        return Ok(0);
    }
    let mut b = Binds::new(conn);
    let sql = format!("SELECT COUNT(*) AS n FROM current_attachments{}", where_attachments(q, &mut b));
    let row = query(sql, b, CTX)?.fetch_one(conn).await.map_err(db(CTX))?;
    Cols::new(&row, "current_attachments").count("n")
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        for (input, expect) in [("Dupont", "%dupont%"), (" a_b ", "%a\\_b%"), ("50%", "%50\\%%"), ("x\\y", "%x\\\\y%")]
        {
            assert_eq!(like_pattern(input), expect, "{input:?}");
        }
    }
}
