//! What this process saw of its scheduled runs that the store cannot tell:
//! runs that failed (their transaction rolled back, or the slot could not be
//! claimed) and slots skipped. Counted since the process started.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{core::approval::rfc3339, daemon::TickOutcome};

/// A scheduled run that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    #[serde(serialize_with = "as_rfc3339")]
    pub at: DateTime<Utc>,
    pub error: String,
}

fn as_rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// One source's activity in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceActivity {
    /// Runs that failed.
    pub failed: u64,
    /// Slots skipped because the previous run of the source was still going.
    pub busy: u64,
    /// Slots skipped because another instance had claimed them.
    pub taken: u64,
    pub last_failure: Option<Failure>,
    /// The latest run here failed (no run has succeeded since).
    pub failing: bool,
}

/// Per source name; shared by the daemon's jobs and the handlers.
#[derive(Debug, Default)]
pub struct Activity {
    sources: Mutex<BTreeMap<String, SourceActivity>>,
}

impl Activity {
    /// Notes what one tick of `source`'s schedule did, at `at`.
    pub fn record(&self, source: &str, at: DateTime<Utc>, outcome: &TickOutcome) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let a = sources.entry(source.to_string()).or_default();
        match outcome {
            // The housekeeping job is recorded under its own name, `@housekeeping`.
            TickOutcome::Ran { .. } | TickOutcome::Housekept { .. } => a.failing = false,
            TickOutcome::Failed { error, .. } => {
                a.failed += 1;
                a.failing = true;
                a.last_failure = Some(Failure { at, error: error.clone() });
            }
            TickOutcome::Busy { .. } => a.busy += 1,
            TickOutcome::Taken { .. } => a.taken += 1,
            TickOutcome::NotDue | TickOutcome::Stopping => {}
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, SourceActivity> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn failures_are_counted_and_cleared_by_the_next_run_but_kept_for_display() {
        let at = |s| Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, s).unwrap();
        let failed = |s| TickOutcome::Failed { slot: at(s), error: "store: boom".into() };
        let activity = Activity::default();
        activity.record("hr", at(0), &failed(0));
        activity.record("hr", at(1), &TickOutcome::Busy { slot: at(1) });
        activity.record("hr", at(2), &TickOutcome::Taken { slot: at(2) });
        activity.record("ldap", at(3), &TickOutcome::NotDue);
        let hr = activity.snapshot()["hr"].clone();
        let failure = Some(Failure { at: at(0), error: "store: boom".into() });
        let expect = SourceActivity { failed: 1, busy: 1, taken: 1, last_failure: failure.clone(), failing: true };
        assert_eq!(hr, expect);
        assert_eq!(activity.snapshot()["ldap"], SourceActivity::default());
        let summary = crate::engine::RunSummary {
            run_id: Some(7),
            outcome: crate::core::run::RunOutcome::Done,
            dry_run: false,
            message: None,
            report_dir: None,
            sources: Vec::new(),
            counts: Default::default(),
            totals: Default::default(),
            held: 0,
            raised_ids: Vec::new(),
            notes: Vec::new(),
        };
        activity.record("hr", at(4), &TickOutcome::Ran { slot: at(4), summary: Box::new(summary) });
        assert_eq!(activity.snapshot()["hr"], SourceActivity { failing: false, ..expect });
    }
}
