//! Who is attached where (the portal's "Afficher un utilisateur" and "Mes
//! contacts"), from the last current-state import, with an export written
//! by the report writers.

use axum::{extract::State, http::header, response::IntoResponse};
use maud::html;

use super::{
    Viewer, WebError, WebResult, WebState,
    form::{Fields, Query, encode},
    page::{layout, scope_options, select},
    queue::chrome,
};
use crate::{
    report::{Table, Value, write_csv_to, write_xlsx},
    store::{AttachmentQuery, CurrentAttachment},
};

const PAGE_SIZE: u64 = 100;

/// The attachments query a filter describes, within the viewer's
/// structures (a structure that is not theirs selects nothing).
fn query_of(state: &WebState, viewer: &Viewer, f: &Fields) -> AttachmentQuery {
    let structures = match f.get("structure") {
        None => viewer.structures.clone(),
        Some(raw) => match state.config().catalog.lookup(raw) {
            Ok(s) if viewer.sees(&s.id) => vec![s.id.clone()],
            _ => Vec::new(),
        },
    };
    AttachmentQuery {
        structures,
        service: f.get("service").map(str::to_string),
        search: f.get("q").map(str::to_string),
    }
}

fn table(state: &WebState, viewer: &Viewer, rows: &[CurrentAttachment]) -> Table {
    // Column names as in the run reports, whatever the page language.
    let mut table = Table::new(
        viewer.lang.texts().users,
        ["structure", "structure_name", "service", "user_email", "last_name", "first_name", "rights"],
    );
    for r in rows {
        let a = &r.attachment;
        let name = state.config().catalog.get(&a.structure).map(|s| s.name.clone()).unwrap_or_default();
        table.push(vec![
            Value::from(a.structure.to_string()),
            Value::from(name),
            Value::from(a.placement.service.as_ref().map(|s| s.as_str())),
            Value::from(a.email.as_str()),
            Value::from(r.name.last_name.as_deref()),
            Value::from(r.name.first_name.as_deref()),
            Value::from(a.placement.rights.to_string()),
        ]);
    }
    table
}

pub(crate) async fn list(State(state): State<WebState>, viewer: Viewer, Query(f): Query) -> WebResult {
    let chrome = chrome(&state, &viewer).await?;
    let t = viewer.lang.texts();
    let page: u64 = f.get("page").and_then(|p| p.parse().ok()).filter(|&p| p >= 1).unwrap_or(1);
    let q = query_of(&state, &viewer, &f);
    let (shown, total) =
        state.store().attachment_page(&q, Some((PAGE_SIZE, (page - 1).saturating_mul(PAGE_SIZE)))).await?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let catalog = &state.config().catalog;
    let (structures, services) = scope_options(&state, &viewer);
    let kept: Vec<(&str, &str)> =
        ["structure", "service", "q"].into_iter().filter_map(|k| f.get(k).map(|v| (k, v))).collect();
    let query = encode(kept.iter().copied());
    let link = |p: u64| {
        let p = p.to_string();
        let mut pairs = kept.clone();
        pairs.push(("page", &p));
        format!("/users?{}", encode(pairs))
    };
    let body = html! {
        form.filters method="get" action="/users" {
            (select("structure", t.structure, t.all, &structures, f.get("structure")))
            (select("service", t.service, t.all, &services, f.get("service")))
            label { (t.search) input type="search" name="q" placeholder=(t.search_hint) value=(f.get("q").unwrap_or("")); }
            button type="submit" { (t.filter) }
        }
        p { (total) " " (t.results) " — " (t.export) " : "
            a href={ "/users/export.csv?" (query) } #export-csv { "CSV" } " "
            a href={ "/users/export.xlsx?" (query) } #export-xlsx { "XLSX" } }
        table #users {
            tr { th { (t.structure) } th { (t.service) } th { (t.email) } th { (t.name) } th { (t.rights) } }
            @for r in &shown {
                @let a = &r.attachment;
                tr {
                    td { (catalog.get(&a.structure).map_or("", |s| s.name.as_str())) " (" (a.structure) ")" }
                    td { (a.placement.service.as_ref().map_or(t.structure_level, |s| s.as_str())) }
                    td { (a.email.as_str()) }
                    td { (r.name.first_name.as_deref().unwrap_or("")) " " (r.name.last_name.as_deref().unwrap_or("")) }
                    td { (a.placement.rights.to_string()) }
                }
            }
        }
        nav { @if page > 1 { a href=(link(page - 1)) { "« " (t.previous) } " " }
              @if page < pages { a href=(link(page + 1)) { (t.next) " »" } } }
    };
    Ok(layout(&chrome, t.users, body).into_response())
}

pub(crate) async fn export_csv(State(state): State<WebState>, viewer: Viewer, Query(f): Query) -> WebResult {
    let (rows, _) = state.store().attachment_page(&query_of(&state, &viewer, &f), None).await?;
    let table = table(&state, &viewer, &rows);
    let mut bytes = Vec::new();
    write_csv_to(&mut bytes, &table, state.config().reports.csv_delimiter, true)
        .map_err(|e| WebError::internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"users.csv\""),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) async fn export_xlsx(State(state): State<WebState>, viewer: Viewer, Query(f): Query) -> WebResult {
    let (rows, _) = state.store().attachment_page(&query_of(&state, &viewer, &f), None).await?;
    let table = table(&state, &viewer, &rows);
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("users.xlsx");
        write_xlsx(&path, &[table]).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| WebError::internal(e.to_string()))?
    .map_err(WebError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"users.xlsx\""),
        ],
        bytes,
    )
        .into_response())
}
