//! Runs: one execution of `run` over one or more sources.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::approval::RunId;

/// How a run ended. Only `Done` runs changed requests; the others are kept
/// so that `runs list` shows every attempt and why it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Requests raised and superseded, reports written.
    Done,
    /// A guard tripped: nothing raised (exit code 4).
    Held,
    /// A source was rejected: nothing changed (exit code 3).
    Rejected,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Done => "done",
            RunOutcome::Held => "held",
            RunOutcome::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<RunOutcome> {
        [RunOutcome::Done, RunOutcome::Held, RunOutcome::Rejected].into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Totals over all structures of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub attach: u64,
    pub detach: u64,
    #[serde(rename = "move")]
    pub moves: u64,
    pub rights: u64,
    /// New approval requests raised.
    pub raised: u64,
    /// Open requests superseded by this run.
    pub superseded: u64,
    pub anomalies: u64,
}

/// What one source contributed to a run; the next run compares its row
/// count with the last accepted one (`min_rows_ratio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRun {
    pub source: String,
    /// The file path or directory URL read.
    pub origin: String,
    /// Non-blank data rows read.
    pub rows: u64,
    /// Rows that mapped without an anomaly.
    pub valid_rows: u64,
    /// Why the source was rejected, if it was.
    pub rejected: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub sources: Vec<String>,
    pub outcome: RunOutcome,
    /// The operator who accepted a held plan with `run --force --as`.
    pub forced_by: Option<String>,
    /// Why it was held or rejected.
    pub message: Option<String>,
    pub report_dir: Option<String>,
    pub counts: RunCounts,
}
