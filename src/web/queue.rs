//! The queue, one request, and decisions (single and bulk). Decisions are
//! `Engine::decide`, the command line's code: one transaction, all or nothing.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
};
use maud::{Markup, html};

use super::{
    Viewer, WebError, WebResult, WebState,
    form::{Fields, Form, Query, encode},
    i18n::Lang,
    page::{Chrome, layout, scope_options, select},
};
use crate::{
    core::{
        approval::{ApprovalRequest, Motive, RequestId, RequestState, Transition},
        change::ChangeKind,
    },
    engine::{Decision, DecisionOutcome},
    store::{RequestFilter, RequestQuery, RequestSort},
};

const PAGE_SIZE: u64 = 50;
/// The filter fields, kept in links and in the bulk form.
const FILTER_FIELDS: [&str; 7] = ["structure", "service", "kind", "state", "q", "sort", "desc"];

/// The header's chrome: the pending count of the viewer's structures.
pub(crate) async fn chrome<'a>(state: &WebState, viewer: &'a Viewer) -> Result<Chrome<'a>, WebError> {
    let f = RequestFilter {
        states: vec![RequestState::Pending],
        structures: viewer.structures.clone(),
        ..RequestFilter::default()
    };
    Ok(Chrome { viewer, pending: state.store().count_requests(&f).await? })
}

/// The request query a filter form describes, within the viewer's
/// structures; `None` when it names a structure that is not theirs.
fn query_of(viewer: &Viewer, f: &Fields, state: &WebState) -> Option<RequestQuery> {
    let mut q = RequestQuery::default();
    match f.get("structure") {
        None => q.filter.structures = viewer.structures.clone(),
        Some(raw) => {
            let id = state.config().catalog.lookup(raw).ok()?.id.clone();
            if !viewer.sees(&id) {
                return None;
            }
            q.filter.structures = vec![id];
        }
    }
    // No state field at all: the pending queue; a blank one: every state.
    match f.get("state") {
        Some(s) => q.filter.states = vec![RequestState::parse(s)?],
        None if !f.has("state") => q.filter.states = vec![RequestState::Pending],
        None => {}
    }
    if let Some(k) = f.get("kind") {
        q.filter.kinds = vec![ChangeKind::parse(k)?];
    }
    if let Some(s) = f.get("service") {
        q.services = vec![s.to_string()];
    }
    q.search = f.get("q").map(str::to_string);
    q.sort = f.get("sort").and_then(RequestSort::parse).unwrap_or_default();
    q.descending = f.get("desc").is_some();
    Some(q)
}

fn local_time(state: &WebState, t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&state.config().timezone).format("%d/%m/%Y %H:%M").to_string()
}

pub(crate) async fn list(State(state): State<WebState>, viewer: Viewer, Query(f): Query) -> WebResult {
    let chrome = chrome(&state, &viewer).await?;
    let page: u64 = f.get("page").and_then(|p| p.parse().ok()).filter(|&p| p >= 1).unwrap_or(1);
    let (rows, total) = match query_of(&viewer, &f, &state) {
        Some(q) => state.store().request_page(&q, PAGE_SIZE, (page - 1).saturating_mul(PAGE_SIZE)).await?,
        None => (Vec::new(), 0),
    };
    let t = viewer.lang.texts();
    let body = queue_page(&state, &viewer, &f, &rows, total, page);
    Ok(layout(&chrome, t.queue, body).into_response())
}

fn filter_form(state: &WebState, viewer: &Viewer, f: &Fields) -> Markup {
    let lang = viewer.lang;
    let t = lang.texts();
    let (structures, services) = scope_options(state, viewer);
    let kinds: Vec<(String, String)> =
        ChangeKind::ALL.iter().map(|k| (k.as_str().to_string(), lang.kind(*k).to_string())).collect();
    let states: Vec<(String, String)> =
        RequestState::ALL.iter().map(|s| (s.as_str().to_string(), lang.state(*s).to_string())).collect();
    let state_chosen = if f.has("state") { f.get("state") } else { Some("pending") };
    let sorts: Vec<(RequestSort, &str)> = vec![
        (RequestSort::Created, t.date),
        (RequestSort::Id, "#"),
        (RequestSort::Structure, t.structure),
        (RequestSort::Email, t.email),
        (RequestSort::Kind, t.kind),
        (RequestSort::State, t.state),
    ];
    let sort = f.get("sort").and_then(RequestSort::parse).unwrap_or_default();
    html! {
        form.filters method="get" action="/approvals" #filters {
            (select("structure", t.structure, t.all, &structures, f.get("structure")))
            (select("service", t.service, t.all, &services, f.get("service")))
            (select("kind", t.kind, t.all, &kinds, f.get("kind")))
            (select("state", t.state, t.all, &states, state_chosen))
            label { (t.search) input type="search" name="q" placeholder=(t.search_hint) value=(f.get("q").unwrap_or("")); }
            label { (t.sort)
                select name="sort" {
                    @for (s, text) in &sorts { option value=(s.as_str()) selected[*s == sort] { (text) } }
                }
            }
            label { (t.descending) input type="checkbox" name="desc" value="1" checked[f.get("desc").is_some()]; }
            button type="submit" #apply-filter { (t.filter) }
        }
    }
}

fn queue_page(
    state: &WebState,
    viewer: &Viewer,
    f: &Fields,
    rows: &[ApprovalRequest],
    total: u64,
    page: u64,
) -> Markup {
    let lang = viewer.lang;
    let t = lang.texts();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    // A blank state is kept: it means every state, not the pending default.
    let kept: Vec<(&str, &str)> = FILTER_FIELDS.iter().filter_map(|&k| f.all(k).next().map(|v| (k, v))).collect();
    let link = |p: u64| {
        let p = p.to_string();
        let mut pairs = kept.clone();
        pairs.push(("page", &p));
        format!("/approvals?{}", encode(pairs))
    };
    html! {
        (filter_form(state, viewer, f))
        p #result-count { (total) " " (t.results) " — " (t.page) " " (page) " / " (pages) }
        form method="post" action="/approvals/bulk" #bulk {
            input type="hidden" name="csrf" value=(viewer.csrf);
            @for (k, v) in &kept { input type="hidden" name=(k) value=(v); }
            table #queue {
                thead { tr {
                    th { "" } th { "#" } th { (t.state) } th { (t.kind) } th { (t.description) }
                    th { (t.requester) } th { (t.structure) } th { (t.service) } th { (t.date) }
                } }
                tbody {
                    @if rows.is_empty() { tr { td colspan="9" { (t.nothing) } } }
                    @for r in rows {
                        tr data-id=(r.id) {
                            td { @if r.state.is_undecided() {
                                input type="checkbox" name="ids" value=(r.id) aria-label={ "#" (r.id) };
                            } }
                            td { a href={ "/approvals/" (r.id) } { "#" (r.id) } }
                            td class={ "state-" (r.state.as_str()) } { (lang.state(r.state)) }
                            td { (lang.kind(r.kind)) }
                            td { (r.description) }
                            td { (r.requester) }
                            td { (r.structure_name) }
                            td { (r.service().unwrap_or("")) }
                            td { (local_time(state, &r.created_at)) }
                        }
                    }
                }
            }
            nav { @if page > 1 { a href=(link(page - 1)) rel="prev" { "« " (t.previous) } " " }
                  @if page < pages { a href=(link(page + 1)) rel="next" { (t.next) " »" } } }
            fieldset {
                label { span { input type="checkbox" name="all_matching" value="1" #all-matching; " " (t.all_matching) } }
                label { (t.comment_optional) textarea name="comment" {} }
                label { (t.motive) textarea name="motive" {} }
                p { button type="submit" name="action" value="approve" #bulk-approve { (t.approve) } " "
                    button type="submit" name="action" value="refuse" #bulk-refuse { (t.refuse) } }
            }
        }
    }
}

/// The request if the viewer may see it: another structure's is "not found".
async fn visible(state: &WebState, viewer: &Viewer, id: RequestId) -> Result<ApprovalRequest, WebError> {
    match state.store().get_request(id).await? {
        Some(r) if viewer.sees(&r.key.structure) => Ok(r),
        _ => Err(WebError::not_found(viewer.lang.texts())),
    }
}

pub(crate) async fn show(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(id): Path<RequestId>,
    Query(f): Query,
) -> WebResult {
    let req = visible(&state, &viewer, id).await?;
    let notice = f.get("done").map(|_| viewer.lang.texts().decided);
    request_page(&state, &viewer, &req, StatusCode::OK, notice, None).await
}

async fn request_page(
    state: &WebState,
    viewer: &Viewer,
    r: &ApprovalRequest,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> WebResult {
    let chrome = chrome(state, viewer).await?;
    let history = state.store().history(r.id).await?;
    let v = r.view(Some(&history));
    let lang = viewer.lang;
    let t = lang.texts();
    let name = [v.first_name.as_deref(), v.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let facts: Vec<(&str, String)> = vec![
        (t.state, lang.state(r.state).to_string()),
        (t.kind, lang.kind(r.kind).to_string()),
        (t.structure, format!("{} ({})", v.structure_name, v.structure)),
        (t.service, v.service.clone().unwrap_or_else(|| t.structure_level.to_string())),
        (t.user, v.user_email.clone()),
        (t.name, name),
        (t.before, v.before.clone().unwrap_or_default()),
        (t.after, v.after.clone().unwrap_or_default()),
        (t.reason, v.reason.clone()),
        (t.facts, v.origin.clone().unwrap_or_default()),
        (t.requester, v.requester.clone()),
        (t.date, local_time(state, &r.created_at)),
        (t.run, format!("#{}", v.run_id)),
        (t.manager, v.manager.clone()),
        (t.decided_by, v.decided_by.clone().unwrap_or_default()),
        (t.decided_at, r.decided_at.as_ref().map(|d| local_time(state, d)).unwrap_or_default()),
        (t.motive, v.motive.clone().unwrap_or_default()),
        (t.comment, v.comment.clone().unwrap_or_default()),
    ];
    let title = format!("#{} — {}", r.id, r.description);
    let body = html! {
        @if let Some(n) = notice { p.ok role="status" { (n) } }
        @if let Some(e) = error { p.error role="alert" #error { (e) } }
        table #facts { @for (k, val) in facts.iter().filter(|(_, v)| !v.is_empty()) { tr { th { (k) } td { (val) } } } }
        @if r.state.is_undecided() {
            div.actions {
                form method="post" action={ "/approvals/" (r.id) "/approve" } #approve-form {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label { (t.comment_optional) textarea name="comment" {} }
                    p { button type="submit" #approve { (t.approve) } }
                }
                form method="post" action={ "/approvals/" (r.id) "/refuse" } #refuse-form {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label { (t.motive) " *" textarea name="motive" required {} }
                    p { button type="submit" #refuse { (t.refuse) } }
                }
            }
        }
        h2 { (t.history) }
        table #history {
            tr { th { (t.date) } th { (t.by) } th { (t.from) } th { (t.to) } th { (t.comment) } }
            @for h in &history {
                tr {
                    td { (local_time(state, &h.at)) }
                    td { (h.by.as_deref().unwrap_or("")) }
                    td { (h.from.map(|s| lang.state(s)).unwrap_or("")) }
                    td { (lang.state(h.to)) }
                    td { (h.comment.as_deref().unwrap_or("")) }
                }
            }
        }
        p { a href="/approvals" { "« " (t.back_to_queue) } }
    };
    Ok((status, layout(&chrome, &title, body)).into_response())
}

/// One decision on one request: done → back to it; refused by the engine
/// (no longer pending, not theirs) → the page with the reason, nothing changed.
async fn decide_one(
    state: &WebState,
    viewer: &Viewer,
    req: ApprovalRequest,
    transition: Transition,
    comment: Option<String>,
) -> WebResult {
    let engine = state.engine()?;
    let d = Decision { ids: vec![req.id], who: viewer.email.clone(), transition, comment };
    let (outcomes, ok) = engine.decide(&d).await?;
    if ok {
        return Ok(Redirect::to(&format!("/approvals/{}?done=1", req.id)).into_response());
    }
    let why = outcomes.iter().find_map(|o| o.result.as_ref().err()).cloned().unwrap_or_default();
    let req = state.store().get_request(req.id).await?.unwrap_or(req);
    request_page(state, viewer, &req, StatusCode::CONFLICT, None, Some(&why)).await
}

/// `POST /approvals/{id}/approve` (optional comment) and
/// `/approvals/{id}/refuse` (motive required: a blank one changes nothing).
pub(crate) async fn decide(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((id, action)): Path<(RequestId, String)>,
    Form(f): Form,
) -> WebResult {
    viewer.check_csrf(&f)?;
    let req = visible(&state, &viewer, id).await?;
    let (transition, comment) = match action.as_str() {
        "approve" => (Transition::Approve, f.get("comment").map(str::to_string)),
        "refuse" => match Motive::parse(f.get("motive").unwrap_or("")) {
            Ok(m) => (Transition::Refuse(m), None),
            Err(_) => {
                let msg = viewer.lang.texts().motive_required;
                return request_page(&state, &viewer, &req, StatusCode::UNPROCESSABLE_ENTITY, None, Some(msg)).await;
            }
        },
        _ => return Err(WebError::not_found(viewer.lang.texts())),
    };
    decide_one(&state, &viewer, req, transition, comment).await
}

pub(crate) async fn bulk(State(state): State<WebState>, viewer: Viewer, Form(f): Form) -> WebResult {
    viewer.check_csrf(&f)?;
    let t = viewer.lang.texts();
    let transition = match f.get("action") {
        Some("approve") => Transition::Approve,
        Some("refuse") => match Motive::parse(f.get("motive").unwrap_or("")) {
            Ok(m) => Transition::Refuse(m),
            Err(_) => {
                return bulk_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, &[], Some(t.motive_required))
                    .await;
            }
        },
        _ => return Err(WebError::new(StatusCode::BAD_REQUEST, "action: approve | refuse")),
    };
    let ids: Vec<RequestId> = if f.get("all_matching").is_some() {
        match query_of(&viewer, &f, &state) {
            Some(mut q) => {
                // "All matching" means the undecided ones shown: pending ones
                // (also under "every state"), or held ones when that is the
                // filter. A filter on decided states matches nothing to decide.
                if q.filter.states.is_empty() {
                    q.filter.states = vec![RequestState::Pending];
                } else {
                    q.filter.states.retain(|s| s.is_undecided());
                }
                if q.filter.states.is_empty() { Vec::new() } else { state.store().request_ids(&q).await? }
            }
            None => Vec::new(),
        }
    } else {
        let mut ids = Vec::new();
        for raw in f.all("ids") {
            match raw.trim().parse() {
                Ok(id) => ids.push(id),
                Err(_) => return Err(WebError::new(StatusCode::BAD_REQUEST, format!("ids: {raw:?} is not a number"))),
            }
        }
        ids
    };
    if ids.is_empty() {
        return bulk_page(&state, &viewer, StatusCode::UNPROCESSABLE_ENTITY, &[], Some(t.nothing_selected)).await;
    }
    // Ids of other structures are "not found", as on their own page; the
    // engine would name their manager.
    let filter = RequestFilter { ids: ids.clone(), ..RequestFilter::default() };
    let found = state.store().list_requests(&filter).await?;
    let hidden: Vec<DecisionOutcome> = ids
        .iter()
        .filter(|id| !found.iter().any(|r| r.id == **id && viewer.sees(&r.key.structure)))
        .map(|&id| DecisionOutcome { id, result: Err(format!("no approval request #{id}")) })
        .collect();
    if !hidden.is_empty() {
        return bulk_page(&state, &viewer, StatusCode::CONFLICT, &hidden, Some(t.bulk_none_applied)).await;
    }
    let comment = if matches!(transition, Transition::Approve) { f.get("comment").map(str::to_string) } else { None };
    let d = Decision { ids, who: viewer.email.clone(), transition, comment };
    let (outcomes, ok) = state.engine()?.decide(&d).await?;
    let (status, error) = if ok { (StatusCode::OK, None) } else { (StatusCode::CONFLICT, Some(t.bulk_none_applied)) };
    bulk_page(&state, &viewer, status, &outcomes, error).await
}

async fn bulk_page(
    state: &WebState,
    viewer: &Viewer,
    status: StatusCode,
    outcomes: &[DecisionOutcome],
    error: Option<&str>,
) -> WebResult {
    let chrome = chrome(state, viewer).await?;
    let lang: Lang = viewer.lang;
    let t = lang.texts();
    let ok = error.is_none();
    let body = html! {
        @if let Some(e) = error { p.error role="alert" #error { (e) } }
        @if !outcomes.is_empty() {
            table #outcomes {
                tr { th { "#" } th { (t.outcome) } }
                @for o in outcomes {
                    tr data-id=(o.id) {
                        td { a href={ "/approvals/" (o.id) } { "#" (o.id) } }
                        @match &o.result {
                            Ok(s) if ok => td class={ "state-" (s.as_str()) } { (lang.state(*s)) },
                            Ok(s) => td { "(" (lang.state(*s)) ") —" },
                            Err(e) => td.error { (e) },
                        }
                    }
                }
            }
        }
        p { a href="/approvals" { "« " (t.back_to_queue) } }
    };
    Ok((status, layout(&chrome, t.bulk_result, body)).into_response())
}
