//! Runs and their report files. A manager sees the runs that concern them:
//! those of a source governing one of their structures. A run's reports
//! cover every structure of its sources, so only someone who decides for all
//! of them may download them; the file name must be one of the four a run
//! writes (no path from the URL ever reaches the file system).

use axum::{
    extract::{Path, State},
    http::header,
    response::IntoResponse,
};
use maud::html;

use super::{Viewer, WebError, WebResult, WebState, page::layout, queue::chrome};
use std::collections::BTreeSet;

use crate::{config::Config, core::run::RunRecord, domain::StructureId};

/// The files a run writes (DESIGN.md §8), with their media types.
const REPORT_FILES: [(&str, &str); 4] = [
    ("summary.csv", "text/csv; charset=utf-8"),
    ("changes.csv", "text/csv; charset=utf-8"),
    ("anomalies.csv", "text/csv; charset=utf-8"),
    ("report.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
];
const RUNS_SHOWN: u64 = 200;

/// The structures each of the run's sources governs (`None`: a source no
/// longer configured).
fn scopes<'c>(config: &'c Config, run: &RunRecord) -> Vec<Option<&'c BTreeSet<StructureId>>> {
    run.sources.iter().map(|name| config.sources.iter().find(|s| s.name == *name).map(|s| &s.scope)).collect()
}

/// May the viewer read this run's reports? Only if they decide for every
/// structure its sources govern (a source no longer configured: no).
fn may_read(config: &Config, viewer: &Viewer, run: &RunRecord) -> bool {
    scopes(config, run).into_iter().all(|scope| scope.is_some_and(|s| s.iter().all(|id| viewer.sees(id))))
}

/// Does the run concern the viewer: does one of its sources govern one of
/// their structures?
fn concerns(config: &Config, viewer: &Viewer, run: &RunRecord) -> bool {
    scopes(config, run).into_iter().any(|scope| scope.is_some_and(|s| s.iter().any(|id| viewer.sees(id))))
}

pub(crate) async fn list(State(state): State<WebState>, viewer: Viewer) -> WebResult {
    let chrome = chrome(&state, &viewer).await?;
    let config = state.config();
    let mut runs = state.store().list_runs(Some(RUNS_SHOWN)).await?;
    runs.retain(|r| concerns(&config, &viewer, r));
    let lang = viewer.lang;
    let t = lang.texts();
    let tz = config.timezone;
    let body = html! {
        table #runs {
            tr { th { "#" } th { (t.started) } th { (t.sources) } th { (t.outcome) } th { (t.counts) } th { (t.message) } th { (t.reports) } }
            @for r in &runs {
                tr data-id=(r.id) {
                    td { (r.id) }
                    td { (r.started_at.with_timezone(&tz).format("%d/%m/%Y %H:%M")) }
                    td { (r.sources.join(", ")) }
                    td class={ "outcome-" (r.outcome.as_str()) } { (lang.outcome(r.outcome)) }
                    td { (r.counts.attach) " / " (r.counts.detach) " / " (r.counts.moves) " / " (r.counts.rights) }
                    td { (r.message.as_deref().unwrap_or("")) }
                    td { @if r.report_dir.is_some() {
                        @if may_read(&config, &viewer, r) {
                            @for (file, _) in REPORT_FILES {
                                a href={ "/runs/" (r.id) "/reports/" (file) } download { (file) } " "
                            }
                        } @else {
                            span.reports-withheld { (t.reports_withheld) }
                        }
                    } }
                }
            }
        }
    };
    Ok(layout(&chrome, t.runs, body).into_response())
}

pub(crate) async fn download(
    State(state): State<WebState>,
    viewer: Viewer,
    Path((id, file)): Path<(i64, String)>,
) -> WebResult {
    let t = viewer.lang.texts();
    let Some(&(name, media)) = REPORT_FILES.iter().find(|(f, _)| *f == file) else {
        return Err(WebError::not_found(t));
    };
    let Some((run, _)) = state.store().get_run(id).await? else {
        return Err(WebError::not_found(t));
    };
    if !may_read(&state.config(), &viewer, &run) {
        return Err(WebError::forbidden(t));
    }
    let Some(dir) = run.report_dir.as_deref() else {
        return Err(WebError::not_found(t));
    };
    let bytes = match tokio::fs::read(std::path::Path::new(dir).join(name)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(WebError::not_found(t)),
        Err(e) => return Err(WebError::internal(format!("run {id} report {name}: {e}"))),
    };
    let disposition = format!("attachment; filename=\"run-{id}-{name}\"");
    Ok(([(header::CONTENT_TYPE, media.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response())
}
