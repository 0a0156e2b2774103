//! `/metrics`: the store's figures at scrape time, plus what only this
//! process knows (failed runs, skipped slots), in Prometheus text format.
//!
//! Written by hand (`exposition.rs`) rather than with `prometheus-client`:
//! that crate writes OpenMetrics text only, and its registry of long-lived
//! metric objects fits values kept in process, not values read from the
//! store at each scrape.

use std::collections::{BTreeMap, BTreeSet};

use axum::{extract::State, http::header};

use super::{
    OpsState, SourceActivity,
    exposition::{CONTENT_TYPE, Exposition, MetricType::*},
    in_time,
};
use crate::{
    core::{approval::RequestState, change::ChangeKind, run::RunOutcome},
    store::{OutcomeCount, RequestCount, SourceLastRun, Store, StoreError},
};

/// What the store says at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFigures {
    pub runs: Vec<OutcomeCount>,
    pub last_runs: Vec<SourceLastRun>,
    pub requests: Vec<RequestCount>,
    pub anomalies: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Configured source names and structure identifiers: their series exist
    /// (at 0) before anything happened to them.
    pub sources: Vec<String>,
    pub structures: Vec<String>,
    pub store: Result<StoreFigures, String>,
    pub activity: BTreeMap<String, SourceActivity>,
}

pub(super) async fn handler(State(state): State<OpsState>) -> ([(header::HeaderName, &'static str); 1], String) {
    let (config, store) = (state.view)();
    let figures = in_time(gather(&store)).await;
    if let Err(e) = &figures {
        tracing::warn!(error = %e, "metrics: the store is unreachable; only this process's figures are shown");
    }
    let scrape = Scrape {
        sources: config.sources.iter().map(|s| s.name.clone()).collect(),
        structures: config.catalog.ids().map(|id| id.as_str().to_string()).collect(),
        store: figures,
        activity: state.activity.snapshot(),
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&scrape))
}

async fn gather(store: &Store) -> Result<StoreFigures, StoreError> {
    store.ping().await?;
    Ok(StoreFigures {
        runs: store.runs_per_source().await?,
        last_runs: store.last_run_per_source().await?,
        requests: store.request_counts().await?,
        anomalies: store.anomalies_reported().await?,
    })
}

const OUTCOMES: [RunOutcome; 3] = [RunOutcome::Done, RunOutcome::Held, RunOutcome::Rejected];

/// The exposition text of a scrape.
pub fn render(s: &Scrape) -> String {
    let mut e = Exposition::default();
    let up = if s.store.is_ok() { 1.0 } else { 0.0 };
    e.family("chorus_sync_store_up", Gauge, "1 when the store answers a query on its schema, else 0.").sample(&[], up);
    let figures = s.store.as_ref().ok();
    let last_runs: Vec<&SourceLastRun> = figures.map(|f| f.last_runs.iter().collect()).unwrap_or_default();
    let stored_runs = |source: &str, outcome: RunOutcome| -> f64 {
        let runs = figures.map(|f| &f.runs[..]).unwrap_or_default();
        runs.iter().filter(|r| r.source == source && r.outcome == outcome).map(|r| r.runs).sum::<u64>() as f64
    };
    // Configured sources, and any the store or this process knows.
    let mut sources: BTreeSet<&str> = s.sources.iter().map(String::as_str).collect();
    sources.extend(s.activity.keys().map(String::as_str));
    if let Some(f) = figures {
        sources.extend(f.runs.iter().map(|r| r.source.as_str()));
    }
    let idle = SourceActivity::default();
    let activity = |source: &str| s.activity.get(source).unwrap_or(&idle);

    let mut f = e.family(
        "chorus_sync_runs_total",
        Counter,
        "Runs per source and outcome: done, held, rejected from the store; failed (rolled back) seen by this process.",
    );
    for &source in &sources {
        if figures.is_some() {
            for outcome in OUTCOMES {
                f.sample(&[("source", source), ("outcome", outcome.as_str())], stored_runs(source, outcome));
            }
        }
        f.sample(&[("source", source), ("outcome", "failed")], activity(source).failed as f64);
    }
    if figures.is_some() {
        let mut f =
            e.family("chorus_sync_guard_holds_total", Counter, "Runs a guard held (nothing raised), per source.");
        for &source in &sources {
            f.sample(&[("source", source)], stored_runs(source, RunOutcome::Held));
        }
    }

    let per_last_run = |e: &mut Exposition, name, help: &str, value: &dyn Fn(&SourceLastRun) -> f64| {
        if figures.is_none() {
            return;
        }
        let mut f = e.family(name, Gauge, help);
        for r in &last_runs {
            f.sample(&[("source", &r.source)], value(r));
        }
    };
    per_last_run(
        &mut e,
        "chorus_sync_last_run_timestamp_seconds",
        "When the last run of the source finished (Unix time).",
        &|r| r.run.finished_at.timestamp() as f64,
    );
    per_last_run(&mut e, "chorus_sync_last_run_duration_seconds", "How long the last run of the source took.", &|r| {
        (r.run.finished_at - r.run.started_at).num_milliseconds() as f64 / 1000.0
    });
    per_last_run(&mut e, "chorus_sync_last_run_raised", "Approval requests the last run of the source raised.", &|r| {
        r.run.counts.raised as f64
    });
    per_last_run(&mut e, "chorus_sync_last_run_anomalies", "Anomalies the last run of the source reported.", &|r| {
        r.run.counts.anomalies as f64
    });
    if figures.is_some() {
        let mut f =
            e.family("chorus_sync_last_run_changes", Gauge, "Changes the last run of the source planned, by kind.");
        for r in &last_runs {
            let c = &r.run.counts;
            for (kind, n) in [("attach", c.attach), ("detach", c.detach), ("move", c.moves), ("rights", c.rights)] {
                f.sample(&[("source", &r.source), ("kind", kind)], n as f64);
            }
        }
    }

    if let Some(fig) = figures {
        e.family(
            "chorus_sync_anomalies_total",
            Counter,
            "Anomalies reported by all runs (an anomaly still there is reported again).",
        )
        .sample(&[], fig.anomalies as f64);
        let count = |pred: &dyn Fn(&RequestCount) -> bool| -> f64 {
            fig.requests.iter().filter(|r| pred(r)).map(|r| r.count).sum::<u64>() as f64
        };
        let mut f = e.family("chorus_sync_requests_raised_total", Counter, "Approval requests ever raised, by kind.");
        for kind in ChangeKind::ALL {
            f.sample(&[("kind", kind.as_str())], count(&|r| r.kind == kind));
        }
        let mut f = e.family("chorus_sync_requests", Gauge, "Approval requests by state.");
        for state in RequestState::ALL {
            f.sample(&[("state", state.as_str())], count(&|r| r.state == state));
        }
        let mut structures: BTreeSet<&str> = s.structures.iter().map(String::as_str).collect();
        structures
            .extend(fig.requests.iter().filter(|r| r.state == RequestState::Pending).map(|r| r.structure.as_str()));
        let mut f = e.family(
            "chorus_sync_pending_requests",
            Gauge,
            "Approval requests waiting for the main manager's decision, by structure and kind.",
        );
        for structure in structures {
            for kind in ChangeKind::ALL {
                let n = count(&|r| r.structure == structure && r.kind == kind && r.state == RequestState::Pending);
                f.sample(&[("structure", structure), ("kind", kind.as_str())], n);
            }
        }
    }

    let mut f = e.family(
        "chorus_sync_slots_skipped_total",
        Counter,
        "Scheduled slots this process skipped: busy (the previous run still going), taken (another instance ran it).",
    );
    for &source in &sources {
        let a = activity(source);
        f.sample(&[("source", source), ("reason", "busy")], a.busy as f64);
        f.sample(&[("source", source), ("reason", "taken")], a.taken as f64);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{
        core::run::{RunCounts, RunRecord},
        ops::Failure,
    };

    fn figures() -> StoreFigures {
        let at = |s| Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, s).unwrap();
        let run = |source: &str, outcome, n| OutcomeCount { source: source.into(), outcome, runs: n };
        let req =
            |structure: &str, kind, state, count| RequestCount { structure: structure.into(), kind, state, count };
        StoreFigures {
            runs: vec![
                run("hr", RunOutcome::Done, 5),
                run("hr", RunOutcome::Held, 1),
                run("old \"source\"", RunOutcome::Rejected, 2),
            ],
            last_runs: vec![SourceLastRun {
                source: "hr".into(),
                run: RunRecord {
                    id: 6,
                    started_at: at(0),
                    finished_at: at(3),
                    sources: vec!["hr".into()],
                    outcome: RunOutcome::Done,
                    forced_by: None,
                    message: None,
                    report_dir: None,
                    counts: RunCounts {
                        attach: 4,
                        detach: 1,
                        moves: 1,
                        rights: 0,
                        raised: 5,
                        superseded: 0,
                        anomalies: 2,
                    },
                },
            }],
            requests: vec![
                req("12345678200010", ChangeKind::Attach, RequestState::Pending, 3),
                req("12345678200010", ChangeKind::Attach, RequestState::Approved, 1),
                req("12345678200010", ChangeKind::Detach, RequestState::Pending, 1),
                req("99999999999999", ChangeKind::Move, RequestState::Pending, 2),
                req("99999999999999", ChangeKind::Rights, RequestState::Refused, 1),
            ],
            anomalies: 9,
        }
    }

    fn scrape(store: Result<StoreFigures, String>) -> Scrape {
        let failure = Failure { at: Utc.with_ymd_and_hms(2026, 11, 23, 8, 1, 0).unwrap(), error: "x".into() };
        let hr = SourceActivity { failed: 2, busy: 3, taken: 1, last_failure: Some(failure), failing: true };
        Scrape {
            sources: vec!["hr".into(), "ldap".into()],
            structures: vec!["12345678200010".into(), "35600000000048".into()],
            store,
            activity: BTreeMap::from([("hr".to_string(), hr)]),
        }
    }

    #[test]
    fn scrapes_render_as_the_golden_text() {
        let cases = [(scrape(Ok(figures())), "metrics.prom"), (scrape(Err("gone".into())), "metrics-store-down.prom")];
        for (scrape, golden) in cases {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops/golden").join(golden);
            let text = render(&scrape);
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &text).unwrap();
            }
            let expect = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            pretty_assertions::assert_eq!(expect, text, "{golden} (UPDATE_GOLDEN=1 to accept)");
        }
    }
}
