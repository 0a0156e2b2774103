//! The SQL, shared by `Store` (a pooled connection) and `StoreTx` (the
//! transaction's connection). Every function takes a plain connection.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, any::AnyRow};

use super::{
    CurrentAttachment, Generations, RequestFilter, SourceRunRecord, StoreError,
    identities::IdentityWrites,
    sql::{
        Analyze, Binds, Cell, Cols, Interner, MAX_BINDS, analyze_after_load, bulk_insert, db, is_sqlite, query, to_i64,
    },
};
use crate::{
    core::{
        approval::{ApprovalRequest, HistoryEntry, RequestId, RequestState, RunId, rfc3339},
        change::{ChangeKey, ChangeKind},
        plan::{AbsenceStreak, RefusedChange},
        run::{RunCounts, RunOutcome, RunRecord, SourceRun},
    },
    domain::{Attachment, PersonName, Placement, StructureId},
};

/// Structure lists go into `IN (..)`; chunked so a huge configuration
/// stays under the bind limit.
pub(super) const STRUCTURES_PER_QUERY: usize = 1_000;

pub(crate) const REQUEST_COLS: &str = "run_id, state, kind, structure, email, \
    before_present, before_service, before_rights, after_present, after_service, after_rights, \
    last_name, first_name, reason, reason_category, description, requester, structure_name, manager, origin, \
    created_at, decided_by, decided_at, motive, comment";
const REQUEST_COL_COUNT: usize = 25;
/// What the diff needs of a refused request: the key and the facts it was
/// refused on (of an open one: `queue::open_requests`).
const REFUSED_COLS: &str = "id, structure, email, \
    before_present, before_service, before_rights, after_present, after_service, after_rights, reason_category";

// ---- requests ---------------------------------------------------------------

/// `interner` shares the structures, services and rights repeated across the
/// rows of one read.
pub(crate) fn request_from_row(row: &AnyRow, interner: &mut Interner) -> Result<ApprovalRequest, StoreError> {
    let c = Cols::new(row, "requests").keyed_by_id()?;
    let kind_text = c.str("kind")?;
    let kind = ChangeKind::parse(kind_text).ok_or_else(|| c.corrupt("kind", format!("unknown kind {kind_text:?}")))?;
    Ok(ApprovalRequest {
        id: c.get("id")?,
        run_id: c.get("run_id")?,
        state: state_of(&c)?,
        kind,
        key: key_of(&c, interner)?,
        name: PersonName { last_name: c.name_part("last_name")?, first_name: c.name_part("first_name")? },
        reason: c.text("reason")?,
        reason_category: c.text("reason_category")?,
        description: c.text("description")?,
        requester: c.text("requester")?,
        structure_name: c.text("structure_name")?,
        manager: c.text("manager")?,
        origin: c.opt_text("origin")?,
        created_at: c.time("created_at")?,
        decided_by: c.opt_text("decided_by")?,
        decided_at: c.opt_time("decided_at")?,
        motive: c.opt_text("motive")?,
        comment: c.opt_text("comment")?,
    })
}

fn state_of(c: &Cols) -> Result<RequestState, StoreError> {
    let text = c.str("state")?;
    RequestState::parse(text).ok_or_else(|| c.corrupt("state", format!("unknown state {text:?}")))
}

/// The change key of a request row (structure, e-mail and both placements).
fn key_of(c: &Cols, interner: &mut Interner) -> Result<ChangeKey, StoreError> {
    Ok(ChangeKey {
        structure: c.structure_in("structure", interner)?,
        email: c.email("email")?,
        before: c.placement_in("before_present", "before_service", "before_rights", interner)?,
        after: c.placement_in("after_present", "after_service", "after_rights", interner)?,
    })
}

/// A placement as the (present flag, service, rights) columns.
fn placement_cells(p: &Option<Placement>) -> [Cell<'_>; 3] {
    match p {
        None => [Cell::Int(0), Cell::Text(None), Cell::Text(None)],
        Some(p) => [Cell::Int(1), p.service.as_ref().map(|s| s.as_str()).into(), p.rights.to_string().into()],
    }
}

/// A request as the `REQUEST_COLS` columns.
fn request_cells(r: &ApprovalRequest) -> [Cell<'_>; REQUEST_COL_COUNT] {
    let [before_present, before_service, before_rights] = placement_cells(&r.key.before);
    let [after_present, after_service, after_rights] = placement_cells(&r.key.after);
    [
        r.run_id.into(),
        r.state.as_str().into(),
        r.kind.as_str().into(),
        r.key.structure.as_str().into(),
        r.key.email.as_str().into(),
        before_present,
        before_service,
        before_rights,
        after_present,
        after_service,
        after_rights,
        r.name.last_name.as_deref().into(),
        r.name.first_name.as_deref().into(),
        r.reason.as_str().into(),
        r.reason_category.as_str().into(),
        r.description.as_str().into(),
        r.requester.as_str().into(),
        r.structure_name.as_str().into(),
        r.manager.as_str().into(),
        r.origin.as_deref().into(),
        rfc3339(&r.created_at).into(),
        r.decided_by.as_deref().into(),
        Cell::Text(r.decided_at.as_ref().map(|t| rfc3339(t).into())),
        r.motive.as_deref().into(),
        r.comment.as_deref().into(),
    ]
}

pub(crate) fn where_filter(f: &RequestFilter, b: &mut Binds) -> String {
    let mut clauses: Vec<String> = Vec::new();
    if !f.ids.is_empty() {
        clauses.push(format!("id IN ({})", b.list(f.ids.iter().copied())));
    }
    if !f.states.is_empty() {
        clauses.push(format!("state IN ({})", b.list(f.states.iter().map(|s| s.as_str()))));
    }
    if !f.structures.is_empty() {
        clauses.push(format!("structure IN ({})", b.list(f.structures.iter().map(|s| s.as_str().to_string()))));
    }
    if !f.kinds.is_empty() {
        clauses.push(format!("kind IN ({})", b.list(f.kinds.iter().map(|k| k.as_str()))));
    }
    if let Some(m) = &f.manager {
        clauses.push(format!("manager = {}", b.push(m.clone())));
    }
    if let Some(r) = f.run_id {
        clauses.push(format!("run_id = {}", b.push(r)));
    }
    if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) }
}

pub(crate) async fn list_requests(
    conn: &mut AnyConnection,
    f: &RequestFilter,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    const CTX: &str = "list requests";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT id, {REQUEST_COLS} FROM requests{} ORDER BY id", where_filter(f, &mut b));
    let mut interner = Interner::default();
    let mut out = Vec::new();
    super::sql::for_each_row(conn, sql, b, CTX, |row| {
        out.push(request_from_row(row, &mut interner)?);
        Ok(())
    })
    .await?;
    Ok(out)
}

pub(crate) async fn count_requests(conn: &mut AnyConnection, f: &RequestFilter) -> Result<u64, StoreError> {
    const CTX: &str = "count requests";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT COUNT(*) AS n FROM requests{}", where_filter(f, &mut b));
    let row = query(sql, b, CTX)?.fetch_one(conn).await.map_err(db(CTX))?;
    Cols::new(&row, "requests").count("n")
}

pub(crate) async fn history(conn: &mut AnyConnection, id: RequestId) -> Result<Vec<HistoryEntry>, StoreError> {
    const CTX: &str = "read request history";
    let mut b = Binds::new(conn);
    let sql = format!(
        "SELECT id, at, actor, from_state, to_state, comment FROM request_history WHERE request_id = {} ORDER BY id",
        b.push(id)
    );
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    rows.iter()
        .map(|row| {
            let c = Cols::new(row, "request_history").keyed_by_id()?;
            let state = |col: &'static str, s: String| {
                RequestState::parse(&s).ok_or_else(|| c.corrupt(col, format!("unknown state {s:?}")))
            };
            Ok(HistoryEntry {
                at: c.time("at")?,
                by: c.opt_text("actor")?,
                from: c.opt_text("from_state")?.map(|s| state("from_state", s)).transpose()?,
                to: state("to_state", c.text("to_state")?)?,
                comment: c.opt_text("comment")?,
            })
        })
        .collect()
}

/// Requests of some structures in some states: the columns `cols` of each
/// row, decoded by `decode` as the rows arrive (only what the caller keeps is
/// read and held). In id order within a chunk of structures: callers sort.
async fn requests_in<T>(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    states: &[RequestState],
    cols: &str,
    mut decode: impl FnMut(&AnyRow, &mut Interner) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    const CTX: &str = "list requests";
    let mut interner = Interner::default();
    let mut out = Vec::new();
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let f = RequestFilter { structures: chunk.to_vec(), states: states.to_vec(), ..RequestFilter::default() };
        let mut b = Binds::new(conn);
        let sql = format!("SELECT {cols} FROM requests{} ORDER BY id", where_filter(&f, &mut b));
        super::sql::for_each_row(&mut *conn, sql, b, CTX, |row| {
            out.push(decode(row, &mut interner)?);
            Ok(())
        })
        .await?;
    }
    Ok(out)
}

pub(crate) async fn held_requests(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let cols = format!("id, {REQUEST_COLS}");
    let mut out = requests_in(conn, structures, &[RequestState::Held], &cols, request_from_row).await?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub(crate) async fn refused_changes(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Vec<RefusedChange>, StoreError> {
    let mut reqs = requests_in(conn, structures, &[RequestState::Refused], REFUSED_COLS, |row, interner| {
        let c = Cols::new(row, "requests").keyed_by_id()?;
        Ok(RefusedChange { id: c.get("id")?, key: key_of(&c, interner)?, reason_category: c.text("reason_category")? })
    })
    .await?;
    reqs.sort_by_key(|r| r.id);
    // Only the latest refusal of a change counts; ids grow with time.
    let mut latest: BTreeMap<ChangeKey, (RequestId, String)> = BTreeMap::new();
    for r in reqs {
        latest.insert(r.key, (r.id, r.reason_category));
    }
    let mut out: Vec<RefusedChange> =
        latest.into_iter().map(|(key, (id, reason_category))| RefusedChange { id, key, reason_category }).collect();
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub(crate) async fn requests_by_id(
    conn: &mut AnyConnection,
    ids: &[RequestId],
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(MAX_BINDS) {
        let f = RequestFilter { ids: chunk.to_vec(), ..RequestFilter::default() };
        out.extend(list_requests(&mut *conn, &f).await?);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub(crate) async fn insert_requests(
    conn: &mut AnyConnection,
    reqs: &[ApprovalRequest],
) -> Result<Vec<RequestId>, StoreError> {
    const CTX: &str = "insert requests";
    let mut ids = Vec::with_capacity(reqs.len());
    let statement = |source: &str| format!("INSERT INTO requests ({REQUEST_COLS}) {source} RETURNING id");
    bulk_insert(conn, reqs, request_cells, statement, CTX, |chunk, rows| {
        let mut chunk_ids =
            rows.iter().map(|row| Cols::new(row, "requests").get::<i64>("id")).collect::<Result<Vec<i64>, _>>()?;
        if chunk_ids.len() != chunk.len() {
            return Err(StoreError::Invalid(format!(
                "inserting {} requests returned {} ids",
                chunk.len(),
                chunk_ids.len()
            )));
        }
        // RETURNING does not promise an order, but ids are drawn in VALUES
        // order on both backends, so sorted ids line up with the input.
        chunk_ids.sort_unstable();
        ids.extend(chunk_ids);
        Ok(())
    })
    .await?;
    let entries: Vec<HistoryRow> = reqs
        .iter()
        .zip(&ids)
        .map(|(r, &id)| HistoryRow {
            request_id: id,
            at: r.created_at,
            by: Some(r.requester.clone()),
            from: None,
            to: r.state,
            comment: None,
        })
        .collect();
    insert_history(conn, &entries).await?;
    Ok(ids)
}

struct HistoryRow {
    request_id: RequestId,
    at: DateTime<Utc>,
    by: Option<String>,
    from: Option<RequestState>,
    to: RequestState,
    comment: Option<String>,
}

async fn insert_history(conn: &mut AnyConnection, entries: &[HistoryRow]) -> Result<(), StoreError> {
    const CTX: &str = "append request history";
    let statement = |source: &str| {
        format!("INSERT INTO request_history (request_id, at, actor, from_state, to_state, comment) {source}")
    };
    bulk_insert(conn, entries, history_cells, statement, CTX, |_, _| Ok(())).await
}

fn history_cells(e: &HistoryRow) -> [Cell<'_>; 6] {
    [
        e.request_id.into(),
        rfc3339(&e.at).into(),
        e.by.as_deref().into(),
        e.from.map(|s| s.as_str()).into(),
        e.to.as_str().into(),
        e.comment.as_deref().into(),
    ]
}

/// `SET` clauses for a transition: decisions record who and when, and the
/// text as comment (approval) or motive (refusal).
fn transition_set(b: &mut Binds, to: RequestState, by: Option<&str>, at: DateTime<Utc>, text: Option<&str>) -> String {
    let mut set = vec![format!("state = {}", b.push(to.as_str()))];
    if matches!(to, RequestState::Approved | RequestState::Refused) {
        set.push(format!("decided_by = {}", b.push(by.map(str::to_string))));
        set.push(format!("decided_at = {}", b.push(rfc3339(&at))));
        let column = if to == RequestState::Approved { "comment" } else { "motive" };
        set.push(format!("{column} = {}", b.push(text.map(str::to_string))));
    }
    set.join(", ")
}

pub(crate) async fn transition(
    conn: &mut AnyConnection,
    id: RequestId,
    from: RequestState,
    to: RequestState,
    by: Option<&str>,
    at: DateTime<Utc>,
    text: Option<&str>,
) -> Result<(), StoreError> {
    const CTX: &str = "update request state";
    let mut b = Binds::new(conn);
    let set = transition_set(&mut b, to, by, at, text);
    let sql = format!("UPDATE requests SET {set} WHERE id = {} AND state = {}", b.push(id), b.push(from.as_str()));
    let done = query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict { id, expected: from });
    }
    let entry = HistoryRow {
        request_id: id,
        at,
        by: by.map(str::to_string),
        from: Some(from),
        to,
        comment: text.map(str::to_string),
    };
    insert_history(conn, &[entry]).await
}

pub(crate) async fn transition_many(
    conn: &mut AnyConnection,
    ids: &[RequestId],
    from: RequestState,
    to: RequestState,
    by: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "update request states";
    let ids: Vec<RequestId> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    // Check first so a conflict leaves the transaction untouched; writers
    // are serialised by `begin`, so nothing changes between check and update.
    let mut found = BTreeSet::new();
    for chunk in ids.chunks(MAX_BINDS - 1) {
        let mut b = Binds::new(conn);
        let sql = format!(
            "SELECT id FROM requests WHERE state = {} AND id IN ({})",
            b.push(from.as_str()),
            b.list(chunk.iter().copied())
        );
        for row in query(sql, b, CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))? {
            found.insert(Cols::new(&row, "requests").get::<i64>("id")?);
        }
    }
    if let Some(&id) = ids.iter().find(|id| !found.contains(id)) {
        return Err(StoreError::Conflict { id, expected: from });
    }
    for chunk in ids.chunks(MAX_BINDS - 8) {
        let mut b = Binds::new(conn);
        let set = transition_set(&mut b, to, by, at, None);
        let sql = format!(
            "UPDATE requests SET {set} WHERE state = {} AND id IN ({})",
            b.push(from.as_str()),
            b.list(chunk.iter().copied())
        );
        query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    }
    let entries: Vec<HistoryRow> = ids
        .iter()
        .map(|&id| HistoryRow { request_id: id, at, by: by.map(str::to_string), from: Some(from), to, comment: None })
        .collect();
    insert_history(conn, &entries).await
}

// ---- current attachments and absences ---------------------------------------

pub(crate) const CURRENT_COLS: &str = "structure, email, service, rights, last_name, first_name";

pub(crate) fn current_from_row(row: &AnyRow, interner: &mut Interner) -> Result<CurrentAttachment, StoreError> {
    let c = Cols::new(row, "current_attachments").keyed_by("structure", "email");
    Ok(CurrentAttachment {
        attachment: Attachment {
            structure: c.structure_in("structure", interner)?,
            email: c.email_in("email", interner)?,
            placement: Placement {
                service: c.service_in("service", interner)?,
                rights: c.rights_in("rights", interner)?,
            },
        },
        name: PersonName { last_name: c.name_part("last_name")?, first_name: c.name_part("first_name")? },
    })
}

fn check_scope<'a>(
    table: &'static str,
    structures: &[StructureId],
    rows: impl Iterator<Item = &'a StructureId>,
) -> Result<(), StoreError> {
    let scope: BTreeSet<&StructureId> = structures.iter().collect();
    for s in rows {
        if !scope.contains(s) {
            return Err(StoreError::OutsideStructures { table, structure: s.to_string() });
        }
    }
    Ok(())
}

async fn delete_structures(
    conn: &mut AnyConnection,
    table: &'static str,
    structures: &[StructureId],
    context: &'static str,
) -> Result<(), StoreError> {
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let mut b = Binds::new(conn);
        let sql = format!(
            "DELETE FROM {table} WHERE structure IN ({})",
            b.list(chunk.iter().map(|s| s.as_str().to_string()))
        );
        query(sql, b, context)?.execute(&mut *conn).await.map_err(db(context))?;
    }
    Ok(())
}

pub(crate) async fn replace_current(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    rows: &[CurrentAttachment],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "replace current attachments";
    check_scope("current_attachments", structures, rows.iter().map(|r| &r.attachment.structure))?;
    delete_structures(conn, "current_attachments", structures, CTX).await?;
    bump_generations(conn, structures).await?;
    let at = rfc3339(&at);
    let statement = |source: &str| {
        format!(
            "INSERT INTO current_attachments (structure, email, service, rights, last_name, first_name, imported_at) \
             {source}"
        )
    };
    bulk_insert(
        conn,
        rows,
        |r: &CurrentAttachment| {
            let a = &r.attachment;
            [
                a.structure.as_str().into(),
                a.email.as_str().into(),
                // '' is the structure level in this table (see the migration).
                a.placement.service.as_ref().map_or("", |s| s.as_str()).into(),
                a.placement.rights.to_string().into(),
                r.name.last_name.as_deref().into(),
                r.name.first_name.as_deref().into(),
                at.clone().into(),
            ]
        },
        statement,
        CTX,
        |_, _| Ok(()),
    )
    .await?;
    // The snapshot reads these at once, in keyset pages per structure.
    analyze_after_load(conn, "current_attachments", Analyze::Always, CTX).await?;
    Ok(())
}

/// One more generation for each of `structures` (listed twice: once).
async fn bump_generations(conn: &mut AnyConnection, structures: &[StructureId]) -> Result<(), StoreError> {
    const CTX: &str = "count current generations";
    // PostgreSQL refuses to update one row twice in a statement.
    let unique: Vec<&StructureId> = structures.iter().collect::<BTreeSet<_>>().into_iter().collect();
    for chunk in unique.chunks(STRUCTURES_PER_QUERY) {
        let mut b = Binds::new(conn);
        let tuples: Vec<String> = chunk.iter().map(|s| format!("({},1)", b.push(s.as_str().to_string()))).collect();
        let sql = format!(
            "INSERT INTO current_generations (structure, generation) VALUES {} \
             ON CONFLICT (structure) DO UPDATE SET generation = current_generations.generation + 1",
            tuples.join(",")
        );
        query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    }
    Ok(())
}

/// The generation of each of `structures` (0 for one never replaced).
pub(crate) async fn current_generations(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Generations, StoreError> {
    const CTX: &str = "read current generations";
    let mut out: Generations = structures.iter().map(|s| (s.clone(), 0)).collect();
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let mut b = Binds::new(conn);
        let sql = format!(
            "SELECT structure, generation FROM current_generations WHERE structure IN ({})",
            b.list(chunk.iter().map(|s| s.as_str().to_string()))
        );
        for row in query(sql, b, CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))? {
            let c = Cols::new(&row, "current_generations");
            let structure = c.structure("structure")?;
            let c = c.keyed(structure.to_string());
            out.insert(structure, c.get("generation")?);
        }
    }
    Ok(out)
}

pub(crate) async fn absences(
    conn: &mut AnyConnection,
    structures: &[StructureId],
) -> Result<Vec<AbsenceStreak>, StoreError> {
    const CTX: &str = "read absences";
    let mut out = Vec::new();
    for chunk in structures.chunks(STRUCTURES_PER_QUERY) {
        let mut b = Binds::new(conn);
        let sql = format!(
            "SELECT structure, email, missed_runs FROM absences WHERE structure IN ({})",
            b.list(chunk.iter().map(|s| s.as_str().to_string()))
        );
        for row in query(sql, b, CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))? {
            let c = Cols::new(&row, "absences").keyed_by("structure", "email");
            let missed: i64 = c.get("missed_runs")?;
            out.push(AbsenceStreak {
                structure: c.structure("structure")?,
                email: c.email("email")?,
                missed_runs: u32::try_from(missed)
                    .map_err(|_| c.corrupt("missed_runs", format!("out of range: {missed}")))?,
            });
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) async fn replace_absences(
    conn: &mut AnyConnection,
    structures: &[StructureId],
    streaks: &[AbsenceStreak],
) -> Result<(), StoreError> {
    const CTX: &str = "replace absences";
    check_scope("absences", structures, streaks.iter().map(|s| &s.structure))?;
    delete_structures(conn, "absences", structures, CTX).await?;
    let statement = |source: &str| format!("INSERT INTO absences (structure, email, missed_runs) {source}");
    bulk_insert(
        conn,
        streaks,
        |s: &AbsenceStreak| [s.structure.as_str().into(), s.email.as_str().into(), i64::from(s.missed_runs).into()],
        statement,
        CTX,
        |_, _| Ok(()),
    )
    .await
}

// ---- runs --------------------------------------------------------------------

pub(crate) const RUN_COLS: &str = "started_at, finished_at, sources, outcome, forced_by, message, report_dir, \
    attach, detach, moves, rights, raised, superseded, anomalies";

pub(crate) fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    let c = Cols::new(row, "runs").keyed_by_id()?;
    let sources_text = c.text("sources")?;
    let sources: Vec<String> =
        serde_json::from_str(&sources_text).map_err(|e| c.corrupt("sources", format!("not a JSON list: {e}")))?;
    let outcome_text = c.text("outcome")?;
    let outcome = RunOutcome::parse(&outcome_text)
        .ok_or_else(|| c.corrupt("outcome", format!("unknown outcome {outcome_text:?}")))?;
    Ok(RunRecord {
        id: c.get("id")?,
        started_at: c.time("started_at")?,
        finished_at: c.time("finished_at")?,
        sources,
        outcome,
        forced_by: c.opt_text("forced_by")?,
        message: c.opt_text("message")?,
        report_dir: c.opt_text("report_dir")?,
        counts: RunCounts {
            attach: c.count("attach")?,
            detach: c.count("detach")?,
            moves: c.count("moves")?,
            rights: c.count("rights")?,
            raised: c.count("raised")?,
            superseded: c.count("superseded")?,
            anomalies: c.count("anomalies")?,
        },
    })
}

/// The run's values as placeholders, in `RUN_COLS` order.
fn bind_run(b: &mut Binds, run: &RunRecord) -> Result<Vec<String>, StoreError> {
    let sources = serde_json::to_string(&run.sources).map_err(|e| StoreError::Invalid(format!("run sources: {e}")))?;
    let k = &run.counts;
    Ok(vec![
        b.push(rfc3339(&run.started_at)),
        b.push(rfc3339(&run.finished_at)),
        b.push(sources),
        b.push(run.outcome.as_str()),
        b.push(run.forced_by.clone()),
        b.push(run.message.clone()),
        b.push(run.report_dir.clone()),
        b.push(to_i64(k.attach)),
        b.push(to_i64(k.detach)),
        b.push(to_i64(k.moves)),
        b.push(to_i64(k.rights)),
        b.push(to_i64(k.raised)),
        b.push(to_i64(k.superseded)),
        b.push(to_i64(k.anomalies)),
    ])
}

pub(crate) async fn insert_run(conn: &mut AnyConnection, run: &RunRecord) -> Result<RunId, StoreError> {
    const CTX: &str = "insert run";
    let mut b = Binds::new(conn);
    let marks = bind_run(&mut b, run)?;
    let sql = format!("INSERT INTO runs ({RUN_COLS}) VALUES ({}) RETURNING id", marks.join(","));
    let row = query(sql, b, CTX)?.fetch_one(conn).await.map_err(db(CTX))?;
    Cols::new(&row, "runs").get("id")
}

pub(crate) async fn update_run(conn: &mut AnyConnection, run: &RunRecord) -> Result<(), StoreError> {
    const CTX: &str = "update run";
    let mut b = Binds::new(conn);
    let marks = bind_run(&mut b, run)?;
    let set: Vec<String> =
        RUN_COLS.split(',').map(str::trim).zip(marks).map(|(col, m)| format!("{col} = {m}")).collect();
    let sql = format!("UPDATE runs SET {} WHERE id = {}", set.join(", "), b.push(run.id));
    let done = query(sql, b, CTX)?.execute(conn).await.map_err(db(CTX))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::RunNotFound(run.id));
    }
    Ok(())
}

pub(crate) async fn list_runs(conn: &mut AnyConnection, limit: Option<u64>) -> Result<Vec<RunRecord>, StoreError> {
    const CTX: &str = "list runs";
    let mut b = Binds::new(conn);
    let limit = match limit {
        Some(n) => format!(" LIMIT {}", b.push(to_i64(n))),
        None => String::new(),
    };
    let sql = format!("SELECT id, {RUN_COLS} FROM runs ORDER BY id DESC{limit}");
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    rows.iter().map(run_from_row).collect()
}

pub(crate) async fn get_run(
    conn: &mut AnyConnection,
    id: RunId,
) -> Result<Option<(RunRecord, Vec<SourceRunRecord>)>, StoreError> {
    const CTX: &str = "read run";
    let mut b = Binds::new(conn);
    let sql = format!("SELECT id, {RUN_COLS} FROM runs WHERE id = {}", b.push(id));
    let Some(row) = query(sql, b, CTX)?.fetch_optional(&mut *conn).await.map_err(db(CTX))? else {
        return Ok(None);
    };
    let run = run_from_row(&row)?;
    let mut b = Binds::new(conn);
    let sql = format!("SELECT {SOURCE_RUN_COLS} FROM source_runs WHERE run_id = {} ORDER BY id", b.push(id));
    let rows = query(sql, b, CTX)?.fetch_all(conn).await.map_err(db(CTX))?;
    let sources = rows.iter().map(source_run_from_row).collect::<Result<_, _>>()?;
    Ok(Some((run, sources)))
}

const SOURCE_RUN_COLS: &str = "id, source, origin, rows_read, valid_rows, rejected, sha256, field_fill";

/// `{"service": 118, …}`: field keys, so the text survives a reordered enum.
fn fill_to_json(fill: &crate::core::guards::FieldFill) -> String {
    let map: BTreeMap<&str, u64> = fill.iter().map(|(f, n)| (f.key(), *n)).collect();
    serde_json::to_string(&map).unwrap_or_default()
}

fn fill_from_json(c: &Cols, text: Option<String>) -> Result<crate::core::guards::FieldFill, StoreError> {
    let Some(text) = text else { return Ok(Default::default()) };
    let map: BTreeMap<String, u64> =
        serde_json::from_str(&text).map_err(|e| c.corrupt("field_fill", format!("{text:?}: {e}")))?;
    map.into_iter()
        .map(|(k, n)| {
            crate::core::record::Field::from_key(&k)
                .map(|f| (f, n))
                .ok_or_else(|| c.corrupt("field_fill", format!("unknown field {k:?}")))
        })
        .collect()
}

fn source_run_from_row(row: &AnyRow) -> Result<SourceRunRecord, StoreError> {
    let c = Cols::new(row, "source_runs").keyed_by_id()?;
    Ok(SourceRunRecord {
        run: SourceRun {
            source: c.text("source")?,
            origin: c.text("origin")?,
            rows: c.count("rows_read")?,
            valid_rows: c.count("valid_rows")?,
            rejected: c.opt_text("rejected")?,
        },
        sha256: c.opt_text("sha256")?,
        fill: fill_from_json(&c, c.opt_text("field_fill")?)?,
    })
}

pub(crate) async fn insert_source_runs(
    conn: &mut AnyConnection,
    run_id: RunId,
    runs: &[SourceRunRecord],
) -> Result<(), StoreError> {
    const CTX: &str = "insert source runs";
    for chunk in runs.chunks(MAX_BINDS / 8) {
        let mut b = Binds::new(conn);
        let tuples: Vec<String> = chunk
            .iter()
            .map(|r| {
                let marks = [
                    b.push(run_id),
                    b.push(r.run.source.clone()),
                    b.push(r.run.origin.clone()),
                    b.push(to_i64(r.run.rows)),
                    b.push(to_i64(r.run.valid_rows)),
                    b.push(r.run.rejected.clone()),
                    b.push(r.sha256.clone()),
                    b.push(Some(fill_to_json(&r.fill)).filter(|_| !r.fill.is_empty())),
                ];
                format!("({})", marks.join(","))
            })
            .collect();
        let sql = format!(
            "INSERT INTO source_runs (run_id, source, origin, rows_read, valid_rows, rejected, sha256, field_fill) VALUES {}",
            tuples.join(",")
        );
        query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    }
    Ok(())
}

pub(crate) async fn last_accepted_source_run(
    conn: &mut AnyConnection,
    source: &str,
) -> Result<Option<SourceRunRecord>, StoreError> {
    const CTX: &str = "read last accepted source run";
    let mut b = Binds::new(conn);
    let sql = format!(
        "SELECT sr.id AS id, sr.source AS source, sr.origin AS origin, sr.rows_read AS rows_read, \
         sr.valid_rows AS valid_rows, sr.rejected AS rejected, sr.sha256 AS sha256, sr.field_fill AS field_fill \
         FROM source_runs sr JOIN runs r ON r.id = sr.run_id \
         WHERE sr.source = {} AND r.outcome = {} AND sr.rejected IS NULL \
         ORDER BY sr.run_id DESC, sr.id DESC LIMIT 1",
        b.push(source.to_string()),
        b.push(RunOutcome::Done.as_str())
    );
    let row = query(sql, b, CTX)?.fetch_optional(conn).await.map_err(db(CTX))?;
    row.as_ref().map(source_run_from_row).transpose()
}

// ---- identities --------------------------------------------------------------

pub(crate) async fn record_identities(
    conn: &mut AnyConnection,
    ids: IdentityWrites,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const CTX: &str = "record identities";
    let sqlite = is_sqlite(conn);
    let at = rfc3339(&at);
    // One JSON array parameter per 50,000 pairs (`IdentityWrites` encodes
    // them), as `identity_changes` asks: a first run records every id of the source (100,000 rows of VALUES
    // with three placeholders each were most of a PostgreSQL run's writes).
    // New ids are plainly inserted: an upsert's speculative insertion cost
    // PostgreSQL half as much again per row (BENCHMARKS.md, session 8).
    // `jsonb`, as `sql::bulk_source`: `json` parses each element again for
    // every `->>` (50,000 pairs: 126-127 against 109-117 ms in psql).
    let batches = ids.new.into_arrays().map(|a| (a, false));
    for (array, upsert) in batches.chain(ids.changed.into_arrays().map(|a| (a, true))) {
        let mut b = Binds::new(conn);
        // Pushed in the order the SQL names them (SQLite's `?` are positional).
        let at = b.push(at.clone());
        let list = b.push(array);
        // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
        let rows = if sqlite {
            format!(
                "SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), {at} \
                 FROM json_each({list}) AS j WHERE true"
            )
        } else {
            format!(
                "SELECT j.pair ->> 0, j.pair ->> 1, {at} FROM jsonb_array_elements(CAST({list} AS jsonb)) AS j(pair)"
            )
        };
        let conflict = if upsert {
            " ON CONFLICT (employee_id) DO UPDATE SET email = excluded.email, seen_at = excluded.seen_at"
        } else {
            ""
        };
        let sql = format!("INSERT INTO identities (employee_id, email, seen_at) {rows}{conflict}");
        query(sql, b, CTX)?.execute(&mut *conn).await.map_err(db(CTX))?;
    }
    Ok(())
}
