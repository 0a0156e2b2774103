//! Read-only aggregates for `/healthz` and `/metrics` (`src/ops`). Computed
//! when asked, from the tables runs and decisions already write, so they
//! survive restarts and agree across instances sharing one store.

use sqlx::Connection;

use super::{
    Backend, Store, StoreError,
    queries::{RUN_COLS, run_from_row},
    sql::{Binds, Cols, db, query},
};
use crate::core::{approval::RequestState, change::ChangeKind, run::RunOutcome, run::RunRecord};

/// The latest run a source took part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLastRun {
    pub source: String,
    pub run: RunRecord,
}

/// How many runs of a source ended with an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    pub source: String,
    pub outcome: RunOutcome,
    pub runs: u64,
}

/// How many requests of a structure are of a kind and in a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    pub structure: String,
    pub kind: ChangeKind,
    pub state: RequestState,
    pub count: u64,
}

/// A query that needs the schema, so a dropped schema or a foreign file fails it.
const PING: &str = "SELECT 1 AS ok FROM runs LIMIT 1";

/// SQLite: the probe opens the file anew, read-only, without creating it;
/// an in-memory database exists only in the pool (`None`: probe the pool).
pub(crate) fn sqlite_probe_url(url: &str) -> Option<String> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let has_mode = url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("mode=")));
    Some(match (has_mode, url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&mode=ro"),
        (false, false) => format!("{url}?mode=ro"),
    })
}

impl Store {
    /// Whether the store answers a trivial query on its schema. SQLite goes
    /// through a new connection: pooled ones keep a deleted or replaced file
    /// open and would answer from a ghost.
    pub async fn ping(&self) -> Result<(), StoreError> {
        const CTX: &str = "health check";
        match (&self.backend, &self.probe_url) {
            (Backend::Sqlite, Some(url)) => {
                let mut conn = sqlx::AnyConnection::connect(url).await.map_err(db(CTX))?;
                let result = sqlx::query(PING).fetch_optional(&mut conn).await.map_err(db(CTX));
                let _ = conn.close().await;
                result.map(drop)
            }
            _ => {
                let mut conn = self.conn().await?;
                sqlx::query(PING).fetch_optional(&mut *conn).await.map_err(db(CTX)).map(drop)
            }
        }
    }

    /// The latest run of each source that ever ran, by source name.
    pub async fn last_run_per_source(&self) -> Result<Vec<SourceLastRun>, StoreError> {
        const CTX: &str = "read the last run of each source";
        let mut conn = self.conn().await?;
        // RUN_COLS names no column of source_runs, so they need no prefix.
        let sql = format!(
            "SELECT sr.source AS source, r.id AS id, {RUN_COLS} FROM source_runs sr JOIN runs r ON r.id = sr.run_id \
             WHERE sr.run_id = (SELECT MAX(s2.run_id) FROM source_runs s2 WHERE s2.source = sr.source) \
             ORDER BY sr.source"
        );
        let rows = query(sql, Binds::new(&conn), CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter()
            .map(|row| {
                Ok(SourceLastRun { source: Cols::new(row, "source_runs").text("source")?, run: run_from_row(row)? })
            })
            .collect()
    }

    /// Runs per source and outcome (a run of several sources counts for each).
    pub async fn runs_per_source(&self) -> Result<Vec<OutcomeCount>, StoreError> {
        const CTX: &str = "count runs per source";
        let mut conn = self.conn().await?;
        let sql = "SELECT sr.source AS source, r.outcome AS outcome, COUNT(*) AS n \
                   FROM source_runs sr JOIN runs r ON r.id = sr.run_id \
                   GROUP BY sr.source, r.outcome ORDER BY sr.source, r.outcome"
            .to_string();
        let rows = query(sql, Binds::new(&conn), CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "runs");
                let text = c.text("outcome")?;
                let outcome = RunOutcome::parse(&text)
                    .ok_or_else(|| c.corrupt("outcome", format!("unknown outcome {text:?}")))?;
                Ok(OutcomeCount { source: c.text("source")?, outcome, runs: c.count("n")? })
            })
            .collect()
    }

    /// Anomalies reported by every run so far.
    pub async fn anomalies_reported(&self) -> Result<u64, StoreError> {
        const CTX: &str = "sum anomalies";
        let mut conn = self.conn().await?;
        // PostgreSQL sums BIGINTs as NUMERIC, which the Any driver cannot decode.
        let sql = "SELECT CAST(COALESCE(SUM(anomalies), 0) AS BIGINT) AS n FROM runs".to_string();
        let row = query(sql, Binds::new(&conn), CTX)?.fetch_one(&mut *conn).await.map_err(db(CTX))?;
        Cols::new(&row, "runs").count("n")
    }

    /// Requests per structure, kind and state.
    pub async fn request_counts(&self) -> Result<Vec<RequestCount>, StoreError> {
        const CTX: &str = "count requests per structure, kind and state";
        let mut conn = self.conn().await?;
        let sql = "SELECT structure, kind, state, COUNT(*) AS n FROM requests \
                   GROUP BY structure, kind, state ORDER BY structure, kind, state"
            .to_string();
        let rows = query(sql, Binds::new(&conn), CTX)?.fetch_all(&mut *conn).await.map_err(db(CTX))?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "requests");
                let (kind, state) = (c.text("kind")?, c.text("state")?);
                Ok(RequestCount {
                    structure: c.text("structure")?,
                    kind: ChangeKind::parse(&kind)
                        .ok_or_else(|| c.corrupt("kind", format!("unknown kind {kind:?}")))?,
                    state: RequestState::parse(&state)
                        .ok_or_else(|| c.corrupt("state", format!("unknown state {state:?}")))?,
                    count: c.count("n")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_probe_url;

    #[test]
    fn the_sqlite_probe_never_creates_the_file() {
        let cases = [
            ("sqlite://chorus-sync.db", Some("sqlite://chorus-sync.db?mode=ro")),
            ("sqlite:///var/lib/x.db?cache=shared", Some("sqlite:///var/lib/x.db?cache=shared&mode=ro")),
            ("sqlite://x.db?mode=rw", Some("sqlite://x.db?mode=rw")),
            ("sqlite::memory:", None),
            ("sqlite://x?mode=memory", None),
        ];
        for (url, expect) in cases {
            assert_eq!(sqlite_probe_url(url).as_deref(), expect, "{url}");
        }
    }
}
