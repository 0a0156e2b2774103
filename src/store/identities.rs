//! What the store knows of a run's employee ids: which are new, and which
//! it holds under another address (an address changed at the source).

use std::{borrow::Cow, collections::HashMap, iter::Peekable};

use sqlx::{AnyConnection, Row as _, any::AnyRow};

use super::{
    StoreError,
    framing::{Rows, Unit, framed_row, length_unit, page_aggregate, page_answer},
    sql::{Binds, db, is_sqlite, json_rows, overlap, query},
};
use crate::domain::Email;

/// Stored identities per page of [`scan`].
const PAGE: usize = 10_000;

/// Compares `pairs` (employee id, address), sorted by id in byte order with
/// each id once, with the store's identities.
///
/// Two ways, chosen by size: few pairs against many identities are looked
/// up one by one ([`look_up`]); otherwise the identities are read in id
/// order and merged with the pairs ([`scan`]). A million look-ups by primary
/// key took 2.7 s on SQLite; reading a million identities in pages takes a
/// fraction of that, and nothing on a first run (no identity stored yet).
pub(crate) async fn identity_changes<'a>(
    conn: &mut AnyConnection,
    pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Result<IdentityChanges, StoreError> {
    if pairs.len() == 0 {
        return Ok(IdentityChanges::default());
    }
    // Nothing stored (a first run): every id is new, in whatever order they
    // come, and the pairs are not even read (a million random reads into
    // the desired state, ~0.1 s).
    if !stored_more_than(conn, 0).await? {
        return Ok(IdentityChanges { changed: HashMap::new(), unknown: vec![true; pairs.len()] });
    }
    // A stored row read in a page costs a few times less than a look-up.
    if stored_more_than(conn, pairs.len().saturating_mul(SCAN_PER_LOOK_UP)).await? {
        look_up(conn, pairs).await
    } else {
        let unit = length_unit(conn).await?;
        scan(conn, pairs, unit).await
    }
}

/// How many stored identities a page reads for the time of one look-up
/// (measured on SQLite, BENCHMARKS.md).
const SCAN_PER_LOOK_UP: usize = 4;

/// Does the store hold more than `limit` identities? Without counting them
/// all: a full `COUNT(*)` read a steady state's million identities (0.17 s
/// on SQLite) to compare them with four times the ids asked.
pub(super) async fn stored_more_than(conn: &mut AnyConnection, limit: usize) -> Result<bool, StoreError> {
    const CTX: &str = "count identities";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX - 1);
    if is_sqlite(conn) {
        // Rowids are positive and each row has its own, so the largest bounds
        // the count from above, read off the end of the table's b-tree.
        let row = sqlx::query("SELECT COALESCE(MAX(rowid), 0) FROM identities")
            .fetch_one(&mut *conn)
            .await
            .map_err(db(CTX))?;
        if row.try_get::<i64, _>(0).map_err(db(CTX))? <= limit {
            return Ok(false);
        }
    }
    // Counts at most `limit + 1` rows.
    let mut b = Binds::new(conn);
    let most = b.push(limit + 1);
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM identities LIMIT {most}) AS counted");
    let row = query(sql, b, CTX)?.fetch_one(&mut *conn).await.map_err(db(CTX))?;
    Ok(row.try_get::<i64, _>(0).map_err(db(CTX))? > limit)
}

fn corrupt(column: &'static str, row: String, message: String) -> StoreError {
    StoreError::Corrupt { table: "identities", row, column, message }
}

/// [`identity_changes`] by merging: the identities are read in pages in id
/// order, each page starting at the next id asked (ids between two asked are
/// skipped), and merged with the pairs. The column sorts in byte order on
/// both backends (SQLite's binary collation; "C" on PostgreSQL, migration
/// 0009), the pairs' order: pairs out of order are refused, never merged.
///
/// While a page is merged, the database reads the page after it (~4 ms of
/// SQL and ~3 ms of merging per page, a hundred pages after a first run of
/// a million people). That page is merged next, unless the next id asked
/// lies beyond it: then it is dropped and the read starts at that id.
async fn scan<'a>(
    conn: &mut AnyConnection,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    unit: Unit,
) -> Result<IdentityChanges, StoreError> {
    let sqlite = is_sqlite(conn);
    let mut out = IdentityChanges::default();
    let mut pairs = pairs.peekable();
    let mut previous: Option<&str> = None;
    let Some(&(first, _)) = pairs.peek() else { return Ok(out) };
    let mut row = read_from(conn, first, false, unit)?.await.map_err(db(READ))?;
    loop {
        let stored = read_page(page_answer(&row, sqlite, READ)?, unit)?;
        // A short page is the end of the table: every pair left is settled by it.
        let last = (stored.len() == PAGE).then(|| stored[PAGE - 1].0);
        let Some(last) = last else {
            merge(&mut pairs, &mut previous, stored, None, &mut out)?;
            return Ok(out);
        };
        if let Some(&(next, _)) = pairs.peek()
            && next > last
        {
            row = read_from(conn, next, false, unit)?.await.map_err(db(READ))?;
            continue;
        }
        let ahead = read_from(conn, last, true, unit)?;
        let (next, merged) = overlap(ahead, || merge(&mut pairs, &mut previous, stored, Some(last), &mut out)).await;
        merged?;
        // Read even when no pair is left: a failed statement is reported here.
        let next = next.map_err(db(READ))?;
        if pairs.peek().is_none() {
            return Ok(out);
        }
        row = next;
    }
}

const READ: &str = "read identities";

/// The query of the page of identities from `from` on, or after it.
fn read_from<'c>(
    conn: &'c mut AnyConnection,
    from: &str,
    after: bool,
    unit: Unit,
) -> Result<impl Future<Output = Result<AnyRow, sqlx::Error>> + 'c, StoreError> {
    let framed = framed_row(unit, &["employee_id", "email"]);
    let aggregate = page_aggregate(is_sqlite(conn));
    let mut b = Binds::new(conn);
    let from = b.push(from.to_string());
    let compare = if after { ">" } else { ">=" };
    let sql = format!(
        "SELECT {aggregate} FROM (SELECT {framed} \
         FROM identities WHERE employee_id {compare} {from} ORDER BY employee_id LIMIT {PAGE}) AS page"
    );
    Ok(query(sql, b, READ)?.fetch_one(conn))
}

/// Merges the pairs up to `last` (all of them when `None`: the table ends
/// in this page) with the page `stored`, which holds every stored id from
/// the first pair left to `last`.
fn merge<'a>(
    pairs: &mut Peekable<impl Iterator<Item = (&'a str, &'a str)>>,
    previous: &mut Option<&'a str>,
    stored: Vec<(&str, &str)>,
    last: Option<&str>,
    out: &mut IdentityChanges,
) -> Result<(), StoreError> {
    let mut stored = stored.into_iter().peekable();
    while let Some(&(id, email)) = pairs.peek() {
        if last.is_some_and(|last| id > last) {
            break;
        }
        if previous.is_some_and(|p| p >= id) {
            return Err(StoreError::Invalid(format!("identities asked out of order: {id:?} after {previous:?}")));
        }
        *previous = Some(id);
        pairs.next();
        while stored.next_if(|(s, _)| *s < id).is_some() {}
        match stored.next_if(|(s, _)| *s == id) {
            None => out.unknown.push(true),
            Some((_, old)) => {
                out.unknown.push(false);
                if old != email {
                    let old =
                        Email::parse(old).map_err(|e| corrupt("email", id.to_string(), format!("{old:?}: {e}")))?;
                    out.changed.insert(Box::from(id), old);
                }
            }
        }
    }
    Ok(())
}

/// What a run records of its employee ids, as [`identity_changes`] told
/// it in the same transaction: ids the store has never seen (inserted; one
/// already stored is an error, never a silent overwrite) and ids it holds
/// under another address (overwritten).
///
/// Owned and already encoded as the store sends them (JSON arrays of
/// [`IDS_PER_QUERY`] pairs): the caller drops the desired state the pairs
/// came from before they are written, beside the reports. Keeping that
/// state and borrowed pairs alive instead cost a million-row first run
/// 50 MB of peak memory (BENCHMARKS.md, session 8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityWrites {
    pub(crate) new: Batches,
    pub(crate) changed: Batches,
}

impl IdentityWrites {
    /// An id new to the store, with its address.
    pub fn push_new(&mut self, employee_id: &str, email: &str) {
        self.new.push(employee_id, email);
    }

    /// An id the store holds under another address, with its new address.
    pub fn push_changed(&mut self, employee_id: &str, email: &str) {
        self.changed.push(employee_id, email);
    }

    pub fn is_empty(&self) -> bool {
        self.new.len == 0 && self.changed.len == 0
    }
}

/// (id, address) pairs as JSON arrays of at most [`IDS_PER_QUERY`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Batches {
    full: Vec<String>,
    /// The batch being filled, without its closing bracket.
    open: Vec<u8>,
    /// Pairs in all batches.
    len: usize,
}

impl Batches {
    fn push(&mut self, id: &str, email: &str) {
        self.open.push(if self.len.is_multiple_of(IDS_PER_QUERY) { b'[' } else { b',' });
        // Writing to a Vec cannot fail, nor can serialising two strings.
        serde_json::to_writer(&mut self.open, &(id, email)).expect("JSON of two strings into a Vec");
        self.len += 1;
        if self.len.is_multiple_of(IDS_PER_QUERY) {
            self.full.push(Self::close(std::mem::take(&mut self.open)));
        }
    }

    fn close(mut open: Vec<u8>) -> String {
        open.push(b']');
        // Only `serde_json` wrote here, and it writes UTF-8.
        String::from_utf8(open).expect("serde_json writes UTF-8")
    }

    /// The JSON arrays, each one query's parameter (moved, not copied:
    /// a million pairs are ~45 MB of them).
    pub(crate) fn into_arrays(self) -> impl Iterator<Item = String> {
        let open = (!self.open.is_empty()).then(|| Self::close(self.open));
        self.full.into_iter().chain(open)
    }
}

/// Employee ids per query of [`look_up`] and of `record_identities`.
pub(super) const IDS_PER_QUERY: usize = 50_000;

/// What the store says about a run's employee ids: only those it does not
/// hold with the same address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityChanges {
    /// Ids the store knows under another address: id → that (older) address.
    pub changed: HashMap<Box<str>, Email>,
    /// For each pair asked, in order: the store has never seen its id. A
    /// flag per pair rather than a set of ids: a first run asks a million.
    pub unknown: Vec<bool>,
}

/// The (employee id, address) pairs of one page's answer, sorted by id.
fn read_page(answer: &[u8], unit: Unit) -> Result<Vec<(&str, &str)>, StoreError> {
    let text = std::str::from_utf8(answer)
        .map_err(|e| corrupt("employee_id", "?".into(), format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let mut stored: Vec<(&str, &str)> = Vec::with_capacity(PAGE.min(answer.len() / 4));
    for row in (Rows::<2> { answer, at: 0, unit }) {
        let row = row.map_err(|e| {
            let id = e.key.and_then(|(a, b)| text.get(a..b)).unwrap_or("?");
            corrupt(if e.column == 0 { "employee_id" } else { "email" }, id.to_string(), e.message)
        })?;
        let field = |i: usize| row[i].and_then(|(a, b)| text.get(a..b));
        let id = field(0).ok_or_else(|| corrupt("employee_id", "?".into(), "NULL or cut".into()))?;
        let email = field(1).ok_or_else(|| corrupt("email", id.to_string(), "NULL or cut".into()))?;
        stored.push((id, email));
    }
    // The page holds the smallest ids from the first one asked on (the LIMIT
    // follows the ORDER BY, in byte order); neither database promises that
    // the aggregate reads them in that order, and saying it again in the
    // aggregate doubled the time of the pages. Almost always a no-op.
    if !stored.is_sorted() {
        stored.sort_unstable();
    }
    Ok(stored)
}

/// [`identity_changes`] for few pairs: each id looked up by the primary key.
///
/// The pairs go in as ONE JSON array parameter per 50,000. The answer is one
/// row: a letter per pair, in order (`u` unknown id, `k` known with this
/// address, `c` known under another), and the changed pairs with the stored
/// address as JSON. A million ids took a thousand queries of a thousand
/// placeholders once; then a JSON row per unknown id, which on a first run
/// (every id unknown) was most of the look-up's time.
///
/// The pairs are taken from the iterator a chunk at a time: a million pairs
/// collected at once were 32 MB more at the peak of a plan.
async fn look_up<'a>(
    conn: &mut AnyConnection,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<IdentityChanges, StoreError> {
    const CTX: &str = "read identities";
    let sqlite = is_sqlite(conn);
    let mut out = IdentityChanges::default();
    let mut pairs = pairs;
    let mut chunk: Vec<(&str, &str)> = Vec::new();
    loop {
        chunk.clear();
        chunk.extend(pairs.by_ref().take(IDS_PER_QUERY));
        if chunk.is_empty() {
            break;
        }
        let mut b = Binds::new(conn);
        let list = b.push(
            serde_json::to_string(&chunk)
                .map_err(|e| StoreError::Query { context: CTX, source: sqlx::Error::Encode(Box::new(e)) })?,
        );
        // Each changed pair is named by its position in the chunk, not by id.
        let sql = if sqlite {
            format!(
                "SELECT group_concat(CASE WHEN i.email IS NULL THEN 'u' \
                                         WHEN i.email = json_extract(j.value, '$[1]') THEN 'k' ELSE 'c' END, \
                                    '' ORDER BY j.key), \
                        json_group_array(json_array(j.key, i.email)) \
                          FILTER (WHERE i.email <> json_extract(j.value, '$[1]')) \
                 FROM json_each({list}) AS j \
                 LEFT JOIN identities AS i ON i.employee_id = json_extract(j.value, '$[0]')"
            )
        } else {
            format!(
                "SELECT string_agg(CASE WHEN i.email IS NULL THEN 'u' \
                                        WHEN i.email = j.pair ->> 1 THEN 'k' ELSE 'c' END, '' ORDER BY j.n), \
                        (json_agg(json_build_array(j.n - 1, i.email)) FILTER (WHERE i.email <> j.pair ->> 1))::text \
                 FROM json_array_elements(CAST({list} AS json)) WITH ORDINALITY AS j(pair, n) \
                 LEFT JOIN identities AS i ON i.employee_id = j.pair ->> 0"
            )
        };
        let row = query(sql, b, CTX)?.fetch_one(&mut *conn).await.map_err(db(CTX))?;
        let flags: Option<String> = row.try_get(0).map_err(db(CTX))?;
        let changed: Option<String> = row.try_get(1).map_err(db(CTX))?;
        let flags = flags.unwrap_or_default();
        if flags.len() != chunk.len() {
            let message = format!("{} answers for {} pairs asked", flags.len(), chunk.len());
            return Err(corrupt("email", format!("chunk of {}", chunk.len()), message));
        }
        out.unknown.extend(flags.bytes().map(|f| f == b'u'));
        let changed: Vec<(usize, Cow<'_, str>)> = json_rows(changed.as_deref(), "identities")?;
        for (i, old) in changed {
            let Some((id, _)) = chunk.get(i) else {
                return Err(corrupt(
                    "email",
                    format!("answer {i}"),
                    format!("no pair {i} was asked ({} were)", chunk.len()),
                ));
            };
            let old = Email::parse(&old).map_err(|e| corrupt("email", id.to_string(), format!("{old:?}: {e}")))?;
            out.changed.insert(Box::from(*id), old);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair comes back once, in order, in arrays of at most
    /// `IDS_PER_QUERY`, whatever the count against the batch size.
    #[test]
    fn identity_writes_split_into_json_arrays_of_one_query_each() {
        let id = |i: usize| if i % 7 == 3 { format!("E\"{i}\\é\u{1}😀") } else { format!("E{i}") };
        for n in [0, 1, 2, IDS_PER_QUERY - 1, IDS_PER_QUERY, IDS_PER_QUERY + 1, 2 * IDS_PER_QUERY + 3] {
            let pairs: Vec<(String, String)> = (0..n).map(|i| (id(i), format!("p{i}@acme.fr"))).collect();
            let mut writes = IdentityWrites::default();
            for (i, e) in &pairs {
                writes.push_new(i, e);
            }
            assert_eq!(writes.is_empty(), n == 0);
            assert_eq!(writes.changed.clone().into_arrays().count(), 0);
            let arrays: Vec<Vec<(String, String)>> =
                writes.new.into_arrays().map(|a| serde_json::from_str(&a).unwrap()).collect();
            assert_eq!(arrays.len(), n.div_ceil(IDS_PER_QUERY), "{n} pairs");
            assert!(arrays.iter().all(|a| !a.is_empty() && a.len() <= IDS_PER_QUERY), "{n} pairs");
            assert_eq!(arrays.concat(), pairs, "{n} pairs");
        }
    }

    #[test]
    fn a_page_reads_back_sorted_by_id_whatever_order_the_database_aggregated_in() {
        fn page(answer: &str) -> Result<Vec<(&str, &str)>, String> {
            read_page(answer.as_bytes(), Unit::Bytes).map_err(|e| e.to_string())
        }
        assert_eq!(page(""), Ok(vec![]));
        assert_eq!(page("2:E26:b@x.fr2:E16:a@x.fr"), Ok(vec![("E1", "a@x.fr"), ("E2", "b@x.fr")]));
        assert_eq!(page("2:E16:a@x.fr3:E106:c@x.fr"), Ok(vec![("E1", "a@x.fr"), ("E10", "c@x.fr")]));
        let err = page("2:E1:").unwrap_err();
        assert!(err.contains("column email") && err.contains("E1"), "{err}");
        let err = page("2:E16:a@x.fr5:E2").unwrap_err();
        assert!(err.contains("column employee_id"), "{err}");
    }
}
