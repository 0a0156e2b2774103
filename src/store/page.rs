//! Pages for screens, so tens of thousands of rows are never read whole:
//! requests (the filter of `list_requests` plus services, a search on name
//! or e-mail, a sort, LIMIT/OFFSET) and current attachments (structures,
//! service, search).

use sqlx::AnyConnection;

use super::{
    CurrentAttachment, RequestFilter, StoreError,
    queries::{CURRENT_COLS, REQUEST_COLS, current_from_row, request_from_row, where_filter},
    sql::{Binds, Cols, db, query, to_i64},
};
use crate::{
    core::approval::{ApprovalRequest, RequestId},
    domain::StructureId,
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
    /// Part of the e-mail address, last name or first name (case-insensitive for ASCII).
    pub search: Option<String>,
    pub sort: RequestSort,
    pub descending: bool,
}

fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.trim().to_lowercase().chars() {
        if matches!(ch, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// `(email LIKE p OR last_name LIKE p OR first_name LIKE p)`, lower-cased.
fn search_clause(text: &str, b: &mut Binds) -> String {
    let p = like_pattern(text);
    let marks = [b.push(p.clone()), b.push(p.clone()), b.push(p)];
    format!(
        "(email LIKE {} ESCAPE '\\' OR LOWER(COALESCE(last_name, '')) LIKE {} ESCAPE '\\' \
         OR LOWER(COALESCE(first_name, '')) LIKE {} ESCAPE '\\')",
        marks[0], marks[1], marks[2]
    )
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
    rows.iter().map(request_from_row).collect()
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
    let mut interner = super::sql::Interner::default();
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
