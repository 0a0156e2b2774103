//! Small helpers over sqlx's `Any` driver: numbered bind lists, bulk
//! insert sources (VALUES on SQLite, a jsonb array on PostgreSQL) and typed
//! column reads whose errors name the table, the row and the column.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::{
    Any, AnyConnection, AssertSqlSafe, Row,
    any::{AnyArguments, AnyRow},
    error::BoxDynError,
    types::Type,
};

use super::StoreError;
pub(crate) use crate::domain::Interner;
use crate::domain::{Email, IdentifierType, Placement, Rights, ServiceCode, StructureId};

/// Bind parameters of both backends are capped (SQLite 32766, PostgreSQL
/// 65535); bulk statements are chunked to stay under this.
pub(crate) const MAX_BINDS: usize = 30_000;

/// Builds an argument list while handing out placeholders: `$n` for
/// PostgreSQL, plain `?` for SQLite, whose numbered parameters cost a linear
/// look-up each (a 30,000-parameter insert took a minute).
///
/// So placeholders must appear in the SQL text in the order they were
/// pushed, each once.
#[derive(Default)]
pub(crate) struct Binds {
    args: AnyArguments,
    n: usize,
    positional: bool,
    err: Option<BoxDynError>,
}

impl Binds {
    pub(crate) fn new(conn: &AnyConnection) -> Binds {
        Binds { positional: is_sqlite(conn), ..Binds::default() }
    }

    /// Is the statement for SQLite (else PostgreSQL)?
    pub(crate) fn sqlite(&self) -> bool {
        self.positional
    }

    /// Adds a value and returns its placeholder.
    pub(crate) fn push<'t, T: sqlx::Encode<'t, Any> + Type<Any>>(&mut self, value: T) -> String {
        self.add(value);
        if self.positional { "?".to_string() } else { format!("${}", self.n) }
    }

    /// Adds a value whose placeholder the caller writes.
    fn add<'t, T: sqlx::Encode<'t, Any> + Type<Any>>(&mut self, value: T) {
        use sqlx::Arguments;
        self.n += 1;
        if let Err(e) = self.args.add(value)
            && self.err.is_none()
        {
            self.err = Some(e);
        }
    }

    /// `$3,$4,$5` for an `IN (..)` list.
    pub(crate) fn list<'t, T: sqlx::Encode<'t, Any> + Type<Any>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> String {
        let marks: Vec<String> = values.into_iter().map(|v| self.push(v)).collect();
        marks.join(",")
    }

    pub(crate) fn finish(self, context: &'static str) -> Result<AnyArguments, StoreError> {
        match self.err {
            Some(e) => Err(StoreError::Query { context, source: sqlx::Error::Encode(e) }),
            None => Ok(self.args),
        }
    }
}

/// A value of a bulk-inserted row.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(crate) enum Cell<'a> {
    Int(i64),
    Text(Option<Cow<'a, str>>),
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(s: &'a str) -> Cell<'a> {
        Cell::Text(Some(Cow::Borrowed(s)))
    }
}

impl<'a> From<Option<&'a str>> for Cell<'a> {
    fn from(s: Option<&'a str>) -> Cell<'a> {
        Cell::Text(s.map(Cow::Borrowed))
    }
}

impl From<String> for Cell<'_> {
    fn from(s: String) -> Self {
        Cell::Text(Some(Cow::Owned(s)))
    }
}

impl From<i64> for Cell<'_> {
    fn from(i: i64) -> Self {
        Cell::Int(i)
    }
}

/// PostgreSQL rows per jsonb parameter of [`bulk_source`].
const JSON_ROWS: usize = 10_000;

/// Rows per statement of a bulk insert of `columns` columns.
fn bulk_chunk(sqlite: bool, columns: usize) -> usize {
    if sqlite { MAX_BINDS / columns } else { JSON_ROWS }
}

/// Inserts `items` in statements of [`bulk_chunk`] rows, `statement`
/// making each one's SQL from its row source ([`bulk_source`]), and hands
/// each chunk to `answer` with the rows its statement returned, in order.
///
/// Each statement is built while the database runs the one before it
/// ([`overlap`]): building 1,111 requests' binds took ~9 ms against ~20 ms
/// of SQLite's insert, a third of a first adoption's inserts spent waiting
/// (BENCHMARKS.md, session 18).
pub(crate) async fn bulk_insert<T, const N: usize>(
    conn: &mut AnyConnection,
    items: &[T],
    cells: impl for<'t> Fn(&'t T) -> [Cell<'t>; N],
    statement: impl Fn(&str) -> String,
    context: &'static str,
    answer: impl FnMut(&[T], Vec<AnyRow>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let per_statement = bulk_chunk(is_sqlite(conn), N);
    bulk_insert_in(conn, items, per_statement, cells, statement, context, answer).await
}

/// [`bulk_insert`] in statements of `per_statement` rows (the tests choose).
/// Two statements' binds are alive at once: the one running, the next.
pub(super) async fn bulk_insert_in<T, const N: usize>(
    conn: &mut AnyConnection,
    items: &[T],
    per_statement: usize,
    cells: impl for<'t> Fn(&'t T) -> [Cell<'t>; N],
    statement: impl Fn(&str) -> String,
    context: &'static str,
    mut answer: impl FnMut(&[T], Vec<AnyRow>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let sqlite = is_sqlite(conn);
    let build = |chunk| {
        let (source, b) = bulk_source(sqlite, chunk, &cells, context)?;
        query(statement(&source), b, context)
    };
    let mut chunks = items.chunks(per_statement.max(1));
    let mut next = match chunks.next() {
        Some(chunk) => Some((chunk, build(chunk)?)),
        None => None,
    };
    while let Some((chunk, statement)) = next.take() {
        let (rows, built) =
            overlap(statement.fetch_all(&mut *conn), || chunks.next().map(|c| build(c).map(|q| (c, q))).transpose())
                .await;
        answer(chunk, rows.map_err(db(context))?)?;
        next = built?;
    }
    Ok(())
}

/// The row source of `INSERT INTO t (cols) {source}` for a chunk of
/// [`bulk_chunk`] items, in item order (ids are drawn in it). SQLite takes
/// a VALUES list of placeholders. PostgreSQL takes one jsonb array, spread
/// into columns by a SELECT in array order: it plans a VALUES list of
/// 30,000 placeholders again at each execution (5,000 requests took
/// 0.17 s against 0.09 s for the server's insert; BENCHMARKS.md, session 8).
fn bulk_source<T, const N: usize>(
    sqlite: bool,
    chunk: &[T],
    cells: impl for<'t> Fn(&'t T) -> [Cell<'t>; N],
    context: &'static str,
) -> Result<(String, Binds), StoreError> {
    let mut b = Binds { positional: sqlite, ..Binds::default() };
    if sqlite {
        // Every row's placeholders are the same: written once.
        let tuple = format!("({})", ["?"; N].join(","));
        let mut values = String::with_capacity(7 + chunk.len() * (tuple.len() + 1));
        values.push_str("VALUES ");
        for (i, item) in chunk.iter().enumerate() {
            for cell in cells(item) {
                match cell {
                    Cell::Int(n) => b.add(n),
                    Cell::Text(t) => b.add(t.map(Cow::into_owned)),
                }
            }
            if i > 0 {
                values.push(',');
            }
            values.push_str(&tuple);
        }
        return Ok((values, b));
    }
    let Some(first) = chunk.first() else { return Err(StoreError::Invalid(format!("{context}: no row"))) };
    let columns: Vec<String> = cells(first)
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Cell::Int(_) => format!("CAST(e ->> {i} AS bigint)"),
            Cell::Text(_) => format!("e ->> {i}"),
        })
        .collect();
    let mut json = b"[".to_vec();
    for (i, item) in chunk.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, cells(item).as_slice())
            .map_err(|e| StoreError::Query { context, source: sqlx::Error::Encode(Box::new(e)) })?;
    }
    json.push(b']');
    // serde_json writes UTF-8.
    let json =
        String::from_utf8(json).map_err(|e| StoreError::Query { context, source: sqlx::Error::Encode(Box::new(e)) })?;
    let list = b.push(json);
    let source = format!(
        "SELECT {} FROM jsonb_array_elements(CAST({list} AS jsonb)) WITH ORDINALITY AS t(e, n) ORDER BY n",
        columns.join(", ")
    );
    Ok((source, b))
}

pub(crate) fn query(
    sql: String,
    binds: Binds,
    context: &'static str,
) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, StoreError> {
    Ok(sqlx::query_with(AssertSqlSafe(sql), binds.finish(context)?))
}

/// Runs a query and hands its rows to `each` one at a time, as they arrive:
/// a large answer is never held whole (50,000 requests were 50,000 `AnyRow`s
/// of owned strings before the first was decoded).
pub(crate) async fn for_each_row(
    conn: &mut AnyConnection,
    sql: String,
    binds: Binds,
    context: &'static str,
    mut each: impl FnMut(&AnyRow) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let mut rows = query(sql, binds, context)?.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(db(context))? {
        each(&row)?;
    }
    Ok(())
}

/// Rows a bulk insert must reach before [`analyze_after_load`] looks at the table.
pub(crate) const ANALYZE_MIN_ROWS: usize = 10_000;

/// When to analyze after a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Analyze {
    /// The table was replaced and is read at once (`import-current`).
    Always,
    /// `n` rows were added: analyze as autovacuum would (more than 50 + 10%
    /// of the table's rows changed), from [`ANALYZE_MIN_ROWS`] rows on.
    Grown(usize),
}

/// Bulk load, then ANALYZE (PostgreSQL's "Populating a Database"), in the
/// transaction. Without statistics the planner guesses a handful of rows
/// and reads a keyset page (`… > $last ORDER BY key LIMIT n`) by sorting
/// every row left, once per page: quadratic in the rows read (a million
/// current attachments of one structure took 53 s instead of 4.7 s).
/// Autovacuum would analyze later, or never when it is off; the next
/// command usually comes at once. ANALYZE reads a fixed sample (~0.2 s for a
/// million rows); its statistics commit with the transaction. Nothing on
/// SQLite, whose planner takes the keys' indexes without statistics.
pub(crate) async fn analyze_after_load(
    conn: &mut AnyConnection,
    table: &'static str,
    when: Analyze,
    context: &'static str,
) -> Result<(), StoreError> {
    if is_sqlite(conn) {
        return Ok(());
    }
    if let Analyze::Grown(added) = when {
        if added < ANALYZE_MIN_ROWS {
            return Ok(());
        }
        // -1 (never analyzed nor vacuumed) reads as an empty table.
        let sql =
            format!("SELECT CAST(GREATEST(reltuples, 0) AS bigint) FROM pg_class WHERE oid = '{table}'::regclass");
        let known: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *conn).await.map_err(db(context))?;
        if added as f64 <= 50.0 + 0.1 * known as f64 {
            return Ok(());
        }
    }
    sqlx::query(AssertSqlSafe(format!("ANALYZE {table}"))).execute(&mut *conn).await.map_err(db(context))?;
    Ok(())
}

/// SQLite or PostgreSQL: where their SQL differs (placeholders, JSON functions).
/// Runs `work` while the database answers `query`: polled once, a sqlx
/// query is on its way (to SQLite's worker thread, or to the server), and
/// its answer is awaited once `work` is done. For reads in pages, where
/// the next page is asked for before the last one is decoded.
pub(crate) async fn overlap<Q: Future, T>(query: Q, work: impl FnOnce() -> T) -> (Q::Output, T) {
    let mut query = std::pin::pin!(query);
    let started = std::future::poll_fn(|cx| std::task::Poll::Ready(query.as_mut().poll(cx))).await;
    let done = work();
    let answer = match started {
        std::task::Poll::Ready(answer) => answer,
        std::task::Poll::Pending => query.await,
    };
    (answer, done)
}

pub(crate) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// The rows of a JSON answer (one text column), borrowing its text.
pub(crate) fn json_rows<'a, T: serde::Deserialize<'a>>(
    answer: Option<&'a str>,
    table: &'static str,
) -> Result<Vec<T>, StoreError> {
    let Some(text) = answer else { return Ok(Vec::new()) };
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        row: "?".into(),
        column: "*",
        message: format!("the answer did not read back: {e}"),
    })
}

pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}

/// Counts are `u64` in the core and signed in SQL; no real count comes near
/// `i64::MAX`, so saturating is only a guard.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the columns of one row; errors say which table, row and column.
pub(crate) struct Cols<'r> {
    row: &'r AnyRow,
    table: &'static str,
    key: RowKey,
}

/// How an error names the row. Bulk reads name it by two columns, read only
/// when an error is reported: a key formatted for every row cost an
/// allocation and two extra decodes per row.
enum RowKey {
    Text(String),
    Id(i64),
    Columns(&'static str, &'static str),
}

impl<'r> Cols<'r> {
    pub(crate) fn new(row: &'r AnyRow, table: &'static str) -> Cols<'r> {
        Cols { row, table, key: RowKey::Text("?".to_string()) }
    }

    /// Names the row in later errors by a key column (usually `id`).
    pub(crate) fn keyed_by_id(mut self) -> Result<Cols<'r>, StoreError> {
        self.key = RowKey::Id(self.get("id")?);
        Ok(self)
    }

    pub(crate) fn keyed(mut self, key: String) -> Cols<'r> {
        self.key = RowKey::Text(key);
        self
    }

    /// Names the row `<first>/<second>` (e.g. structure/email) in errors.
    pub(crate) fn keyed_by(mut self, first: &'static str, second: &'static str) -> Cols<'r> {
        self.key = RowKey::Columns(first, second);
        self
    }

    pub(crate) fn corrupt(&self, column: &'static str, message: impl Into<String>) -> StoreError {
        let row = match &self.key {
            RowKey::Text(key) => key.clone(),
            RowKey::Id(id) => id.to_string(),
            RowKey::Columns(first, second) => {
                let part =
                    |c: &str| self.row.try_get::<Option<String>, _>(c).ok().flatten().unwrap_or_else(|| "?".into());
                format!("{}/{}", part(first), part(second))
            }
        };
        StoreError::Corrupt { table: self.table, row, column, message: message.into() }
    }

    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T, StoreError>
    where
        T: for<'a> sqlx::Decode<'a, Any> + Type<Any>,
    {
        self.row.try_get::<T, _>(column).map_err(|e| self.corrupt(column, e.to_string()))
    }

    pub(crate) fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.get::<String>(column)
    }

    pub(crate) fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.get::<Option<String>>(column)
    }

    /// [`Cols::text`] borrowed from the row, for text that is parsed, not kept.
    pub(crate) fn str(&self, column: &'static str) -> Result<&'r str, StoreError> {
        self.row.try_get::<&'r str, _>(column).map_err(|e| self.corrupt(column, e.to_string()))
    }

    pub(crate) fn count(&self, column: &'static str) -> Result<u64, StoreError> {
        let n: i64 = self.get(column)?;
        u64::try_from(n).map_err(|_| self.corrupt(column, format!("negative count {n}")))
    }

    pub(crate) fn flag(&self, column: &'static str) -> Result<bool, StoreError> {
        match self.get::<i64>(column)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.corrupt(column, format!("expected 0 or 1, found {n}"))),
        }
    }

    pub(crate) fn time(&self, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
        parse_time(self.str(column)?).map_err(|m| self.corrupt(column, m))
    }

    pub(crate) fn opt_time(&self, column: &'static str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let text = self.row.try_get::<Option<&'r str>, _>(column).map_err(|e| self.corrupt(column, e.to_string()))?;
        text.map(|s| parse_time(s).map_err(|m| self.corrupt(column, m))).transpose()
    }

    pub(crate) fn structure(&self, column: &'static str) -> Result<StructureId, StoreError> {
        let s = self.text(column)?;
        // Stored identifiers are already canonical (SIRETs without separators);
        // the generic rule (trimmed, no control character) rebuilds them as is.
        StructureId::parse(IdentifierType::Autre, &s).map_err(|m| self.corrupt(column, m))
    }

    pub(crate) fn email(&self, column: &'static str) -> Result<Email, StoreError> {
        let s = self.str(column)?;
        // What the store holds was parsed before: kept as is when parsing
        // would give it back (one allocation instead of three).
        if Email::is_normalized(s) {
            return Ok(Email::from_normalized(s));
        }
        Email::parse(s).map_err(|e| self.corrupt(column, format!("{s:?}: {e}")))
    }

    pub(crate) fn name_part(&self, column: &'static str) -> Result<Option<Box<str>>, StoreError> {
        Ok(self.opt_text(column)?.map(String::into_boxed_str))
    }

    /// The column's text borrowed from the row (NULL reads as empty).
    fn borrowed(&self, column: &'static str) -> Result<&'r str, StoreError> {
        let text = self.row.try_get::<Option<&'r str>, _>(column).map_err(|e| self.corrupt(column, e.to_string()))?;
        Ok(text.unwrap_or(""))
    }

    /// [`Cols::structure`], sharing one value per distinct text.
    pub(crate) fn structure_in(
        &self,
        column: &'static str,
        interner: &mut Interner,
    ) -> Result<StructureId, StoreError> {
        interner.structure(self.borrowed(column)?).map_err(|m| self.corrupt(column, m))
    }

    /// [`Cols::service`], sharing one value per distinct text.
    pub(crate) fn service_in(
        &self,
        column: &'static str,
        interner: &mut Interner,
    ) -> Result<Option<ServiceCode>, StoreError> {
        interner.service(self.borrowed(column)?).map_err(|m| self.corrupt(column, m))
    }

    /// [`Cols::rights`], sharing one value per distinct text.
    pub(crate) fn rights_in(&self, column: &'static str, interner: &mut Interner) -> Result<Rights, StoreError> {
        interner.rights(self.borrowed(column)?).map_err(|m| self.corrupt(column, m))
    }

    /// A placement stored as `<prefix>_present`, `<prefix>_service` (NULL or
    /// `''`: the structure level), `<prefix>_rights`, sharing one value per
    /// distinct service and set of rights.
    pub(crate) fn placement_in(
        &self,
        present: &'static str,
        service: &'static str,
        rights: &'static str,
        interner: &mut Interner,
    ) -> Result<Option<Placement>, StoreError> {
        if !self.flag(present)? {
            return Ok(None);
        }
        Ok(Some(Placement { service: self.service_in(service, interner)?, rights: self.rights_in(rights, interner)? }))
    }

    /// [`Cols::email`], reusing the previous row's address when it repeats.
    pub(crate) fn email_in(&self, column: &'static str, interner: &mut Interner) -> Result<Email, StoreError> {
        interner.email(self.borrowed(column)?).map_err(|m| self.corrupt(column, m))
    }
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}
