//! `/healthz`: 200 when the store answers a query on its schema, 503
//! otherwise; per configured source, its last run (from the store) and the
//! outcome: `done`, `held`, `rejected`, or `failed` when the latest scheduled
//! run here failed after it (a failed run rolls back, so only this process
//! knows of it).

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;

use super::{Failure, OpsState, SourceActivity, in_time};
use crate::{
    core::{approval::rfc3339, run::RunCounts},
    store::SourceLastRun,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `ok` or `unavailable` (the HTTP status says the same: 200 or 503).
    pub status: &'static str,
    pub store: StoreHealth,
    pub sources: Vec<SourceHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    pub backend: String,
    pub reachable: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHealth {
    pub name: String,
    pub schedule: Option<String>,
    /// Of the latest run: done, held, rejected or failed; null before any.
    pub outcome: Option<&'static str>,
    pub last_run: Option<LastRun>,
    pub last_failure: Option<Failure>,
    /// Scheduled runs of this source that failed in this process.
    pub failed_runs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    pub id: i64,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub outcome: &'static str,
    /// New approval requests the run raised.
    pub changes_raised: u64,
    pub counts: RunCounts,
    /// Why it was held or rejected.
    pub message: Option<String>,
}

/// A configured source: its name and schedule.
pub type SourceSpec = (String, Option<String>);

pub(super) async fn handler(State(state): State<OpsState>) -> (StatusCode, Json<Health>) {
    let (config, store) = (state.view)();
    let last_runs = match in_time(store.ping()).await {
        Ok(()) => in_time(store.last_run_per_source()).await,
        Err(e) => Err(e),
    };
    let sources: Vec<SourceSpec> = config.sources.iter().map(|s| (s.name.clone(), s.schedule.clone())).collect();
    let health = assess(&sources, &store.backend().to_string(), last_runs, &state.activity.snapshot());
    if let Some(e) = &health.store.error {
        tracing::warn!(error = %e, "health check: the store is unreachable");
    }
    let code = if health.store.reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(health))
}

/// The health document from what the store and this process know.
pub fn assess(
    sources: &[SourceSpec],
    backend: &str,
    last_runs: Result<Vec<SourceLastRun>, String>,
    activity: &BTreeMap<String, SourceActivity>,
) -> Health {
    let (runs, error) = match last_runs {
        Ok(runs) => (runs.into_iter().map(|r| (r.source.clone(), r)).collect(), None),
        Err(e) => (BTreeMap::new(), Some(e)),
    };
    let idle = SourceActivity::default();
    let sources = sources
        .iter()
        .map(|(name, schedule)| {
            let last = runs.get(name).map(|r: &SourceLastRun| &r.run);
            let here = activity.get(name).unwrap_or(&idle);
            // Failed after the last stored run started: that run is older news.
            let failed_since =
                here.failing && here.last_failure.as_ref().is_some_and(|f| last.is_none_or(|r| r.started_at < f.at));
            let outcome = if failed_since { Some("failed") } else { last.map(|r| r.outcome.as_str()) };
            SourceHealth {
                name: name.clone(),
                schedule: schedule.clone(),
                outcome,
                last_run: last.map(|r| LastRun {
                    id: r.id,
                    started_at: rfc3339(&r.started_at),
                    finished_at: rfc3339(&r.finished_at),
                    duration_seconds: (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0,
                    outcome: r.outcome.as_str(),
                    changes_raised: r.counts.raised,
                    counts: r.counts,
                    message: r.message.clone(),
                }),
                last_failure: here.last_failure.clone(),
                failed_runs: here.failed,
            }
        })
        .collect();
    Health {
        status: if error.is_none() { "ok" } else { "unavailable" },
        store: StoreHealth { backend: backend.to_string(), reachable: error.is_none(), error },
        sources,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::core::run::{RunOutcome, RunRecord};

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, s).unwrap()
    }

    fn last_run(source: &str, id: i64, outcome: RunOutcome, started: u32) -> SourceLastRun {
        SourceLastRun {
            source: source.into(),
            run: RunRecord {
                id,
                started_at: at(started),
                finished_at: at(started + 2),
                sources: vec![source.into()],
                outcome,
                forced_by: None,
                message: (outcome == RunOutcome::Held).then(|| "too many detaches".into()),
                report_dir: None,
                counts: RunCounts { attach: 3, raised: 2, anomalies: 1, ..RunCounts::default() },
            },
        }
    }

    fn failing(at_s: u32) -> SourceActivity {
        let last_failure = Some(Failure { at: at(at_s), error: "store: gone".into() });
        SourceActivity { failed: 1, failing: true, last_failure, ..SourceActivity::default() }
    }

    /// (what the store says, activity of "hr") → (status, outcome of "hr", outcome of "ldap")
    type Case = (
        Result<Vec<SourceLastRun>, String>,
        Option<SourceActivity>,
        (&'static str, Option<&'static str>, Option<&'static str>),
    );

    #[test]
    fn outcomes_come_from_the_store_unless_a_later_run_failed_here() {
        let cases: Vec<Case> = vec![
            (Ok(vec![]), None, ("ok", None, None)),
            (Ok(vec![last_run("hr", 4, RunOutcome::Done, 0)]), None, ("ok", Some("done"), None)),
            (Ok(vec![last_run("hr", 4, RunOutcome::Held, 0)]), None, ("ok", Some("held"), None)),
            (Ok(vec![last_run("ldap", 5, RunOutcome::Rejected, 0)]), None, ("ok", None, Some("rejected"))),
            // Failed after run 4 started: failed.
            (Ok(vec![last_run("hr", 4, RunOutcome::Done, 0)]), Some(failing(10)), ("ok", Some("failed"), None)),
            // Failed, then another instance ran it: done.
            (Ok(vec![last_run("hr", 4, RunOutcome::Done, 20)]), Some(failing(10)), ("ok", Some("done"), None)),
            // Failed, then ran here: no longer failing.
            (
                Ok(vec![last_run("hr", 4, RunOutcome::Done, 0)]),
                Some(SourceActivity { failing: false, ..failing(10) }),
                ("ok", Some("done"), None),
            ),
            (Ok(vec![]), Some(failing(10)), ("ok", Some("failed"), None)),
            (Err("store: no such table: runs".into()), None, ("unavailable", None, None)),
            (Err("store: gone".into()), Some(failing(10)), ("unavailable", Some("failed"), None)),
        ];
        let sources = [("hr".to_string(), Some("0 30 6 * * *".to_string())), ("ldap".to_string(), None)];
        for (store, hr, expect) in cases {
            let activity: BTreeMap<String, SourceActivity> = hr.into_iter().map(|a| ("hr".to_string(), a)).collect();
            let h = assess(&sources, "sqlite", store.clone(), &activity);
            let got = (h.status, h.sources[0].outcome, h.sources[1].outcome);
            assert_eq!(got, expect, "store {store:?}");
            assert_eq!(h.store.reachable, store.is_ok());
            assert_eq!(h.store.error, store.err());
        }
    }

    #[test]
    fn the_document_shows_the_last_run_and_the_last_failure() {
        let activity = BTreeMap::from([("hr".to_string(), failing(1))]);
        let h = assess(
            &[("hr".into(), Some("*/2 * * * * *".into()))],
            "postgres",
            Ok(vec![last_run("hr", 4, RunOutcome::Held, 5), last_run("gone", 3, RunOutcome::Done, 0)]),
            &activity,
        );
        let expect = serde_json::json!({
            "status": "ok",
            "store": { "backend": "postgres", "reachable": true, "error": null },
            "sources": [{
                "name": "hr", "schedule": "*/2 * * * * *", "outcome": "held",
                "last_run": {
                    "id": 4, "started_at": "2026-11-23T08:00:05Z", "finished_at": "2026-11-23T08:00:07Z",
                    "duration_seconds": 2.0, "outcome": "held", "changes_raised": 2,
                    "counts": { "attach": 3, "detach": 0, "move": 0, "rights": 0, "raised": 2, "superseded": 0, "anomalies": 1 },
                    "message": "too many detaches"
                },
                "last_failure": { "at": "2026-11-23T08:00:01Z", "error": "store: gone" },
                "failed_runs": 1
            }]
        });
        assert_eq!(serde_json::to_value(&h).unwrap(), expect);
    }
}
