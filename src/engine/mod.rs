//! The engine: the thin async shell that runs the pure core between the
//! sources, the store and the reports.
//!
//! A run reads every source first, outside any transaction, while the store
//! reads the current state of the sources' structures beside it (a read
//! snapshot); then, in ONE store transaction, it checks that the snapshot is
//! still the current state (else reads it again), diffs, applies the guards,
//! raises and supersedes requests, writes the reports and records the run.
//! Any error before the commit rolls everything back: there is never half a run.

mod current;
mod decide;
mod notify;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, NaiveDate, Utc};

pub use current::ImportSummary;
pub use decide::{Decision, DecisionOutcome};
pub use notify::HousekeepingSummary;

use crate::{
    config::{Config, SourceConfig, SourceKind},
    core::{
        anomaly::{AnomalyCode, SourceFile},
        approval::{ApprovalRequest, QueuedRequest, RequestId, RequestState, RunId},
        change::{Change, ChangeKey},
        describe::describe,
        diff::{Desired, DesiredBuilder, DiffInput, diff},
        guards,
        mapping::Mapper,
        plan::{Disposition, Plan, StructureCounts},
        queue::Queue,
        record::Field,
        run::{RunCounts, RunOutcome, RunRecord, SourceRun},
    },
    domain::{Email, StructureId},
    report::{self, ReportError, ReportedChange, RunReportData},
    secret::mask_url,
    source::{self, DirectorySpec, TableSpec},
    store::{
        CurrentSnapshot, CurrentState, IdentityChanges, IdentityWrites, RequestFilter, SourceRunRecord, Store,
        StoreError, StoreTx,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The reports of a run could not be written: the run rolled back.
    #[error("the run was not recorded, nothing changed in the store: {0}")]
    NotRecorded(ReportError),
    #[error("no source named {0:?} in the configuration")]
    UnknownSource(String),
    #[error("{0}")]
    Usage(String),
}

/// The clock, fixed once per command so a run sees one "now". Tests set it
/// with `CHORUS_SYNC_NOW` (RFC 3339).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: DateTime<Utc>,
}

impl Clock {
    pub fn from_env() -> Result<Clock, EngineError> {
        match std::env::var("CHORUS_SYNC_NOW") {
            Ok(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Clock { now: t.with_timezone(&Utc) })
                .map_err(|e| EngineError::Usage(format!("CHORUS_SYNC_NOW={s:?}: {e}"))),
            Err(_) => Ok(Clock { now: Utc::now() }),
        }
    }

    pub fn today(&self, tz: chrono_tz::Tz) -> NaiveDate {
        self.now.with_timezone(&tz).date_naive()
    }
}

pub struct Engine {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Source names; empty = all.
    pub sources: Vec<String>,
    /// Write the reports here instead of `<reports.dir>/<run id>/`.
    pub out: Option<PathBuf>,
    /// `plan`: reports only, the store is not changed.
    pub dry_run: bool,
    /// `run --force`: accept a plan a guard would hold.
    pub force: bool,
    /// Who forced it (`--as`), recorded in the run.
    pub forced_by: Option<Email>,
    /// Show progress on stderr (the command line sets it when stderr is a terminal).
    pub progress: bool,
}

/// A spinner counting rows on stderr, or nothing.
fn progress(enabled: bool, what: String, counting: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(what);
    let template =
        if counting { "{spinner} {msg}: {human_pos} rows ({per_sec}) {elapsed}" } else { "{spinner} {msg} {elapsed}" };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// What a run did, for the command line's summary and exit code.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: Option<RunId>,
    pub outcome: RunOutcome,
    pub dry_run: bool,
    /// Why it was held or rejected.
    pub message: Option<String>,
    pub report_dir: Option<PathBuf>,
    pub sources: Vec<SourceRun>,
    pub counts: BTreeMap<StructureId, StructureCounts>,
    pub totals: RunCounts,
    /// Changes kept as held requests (a held run): decided or released item by item.
    pub held: u64,
    /// The requests a done run put in the queues (what its digests announce).
    pub raised_ids: Vec<RequestId>,
    /// Things worth telling that are not errors (the same file as last time…).
    pub notes: Vec<String>,
}

/// The sources of a run, read and mapped.
struct SourcesRead {
    desired: DesiredBuilder,
    stats: Vec<SourceRunRecord>,
    /// Things worth telling that are not errors.
    notes: Vec<String>,
    /// The first source that could not be read, and why.
    rejected: Option<String>,
}

impl Engine {
    fn select_sources(&self, names: &[String]) -> Result<Vec<&SourceConfig>, EngineError> {
        if names.is_empty() {
            return Ok(self.config.sources.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.config.sources.iter().find(|s| s.name == *n).ok_or_else(|| EngineError::UnknownSource(n.clone()))
            })
            .collect()
    }

    fn read_sources(&self, sources: &[&SourceConfig], show_progress: bool) -> SourcesRead {
        let today = self.clock.today(self.config.timezone);
        let mut read =
            SourcesRead { desired: DesiredBuilder::default(), stats: Vec::new(), notes: Vec::new(), rejected: None };
        for src in sources {
            tracing::debug!(source = %src.name, "reading");
            let bar = progress(show_progress, format!("reading {}", src.name), true);
            let (stats, error) = read_source(src, &self.config, today, &mut read.desired, &bar);
            bar.finish_and_clear();
            if let Some(e) = &error {
                tracing::error!(source = %src.name, "source rejected: {e}");
                read.rejected.get_or_insert_with(|| format!("source {}: {e}", src.name));
            } else {
                tracing::info!(source = %src.name, rows = stats.run.rows, valid = stats.run.valid_rows, "source read");
                tracing::debug!(source = %src.name, rss_mb = ?resident_mb(), "memory after reading");
            }
            read.stats.push(stats);
        }
        read
    }

    /// [`Engine::read_sources`] while the runtime's other tasks go on (the
    /// store's read of the current state): the sources are read by blocking
    /// code, so on a multi-thread runtime this worker first hands its queue
    /// to another thread. On a current-thread runtime those tasks wait until
    /// the run next awaits: the reads are then one after the other.
    fn read_sources_beside(&self, sources: &[&SourceConfig], show_progress: bool) -> SourcesRead {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| self.read_sources(sources, show_progress)),
            _ => self.read_sources(sources, show_progress),
        }
    }

    /// `plan` and `run`.
    pub async fn run(&self, opts: &RunOptions) -> Result<RunSummary, EngineError> {
        let sources = self.select_sources(&opts.sources)?;
        let started_at = self.clock.now;
        // The structures the sources govern are known before any is read, and
        // their current state does not depend on them: read it meanwhile.
        let scope_set: BTreeSet<StructureId> = sources.iter().flat_map(|s| s.scope.iter().cloned()).collect();
        let scope: Vec<StructureId> = scope_set.iter().cloned().collect();
        let snapshot = SnapshotRead::start(&self.store, scope.clone());
        let mut read = self.read_sources_beside(&sources, opts.progress);
        let source_names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();

        let mut tx = self.store.begin().await?;
        // Sanity checks against the last accepted run of each source.
        if read.rejected.is_none() {
            for s in &mut read.stats {
                let last = tx.last_accepted_source_run(&s.run.source).await?;
                if last.as_ref().is_some_and(|l| l.sha256.is_some() && l.sha256 == s.sha256) {
                    // Worth knowing (a stuck HR export job), not an error.
                    let note = format!(
                        "source {}: {} is the same file as in the last accepted run",
                        s.run.source, s.run.origin
                    );
                    tracing::warn!("{note}");
                    read.notes.push(note);
                }
                let columns = sources.iter().find(|c| c.name == s.run.source).map(|c| &c.columns);
                let now = guards::SourceShape { rows: s.run.rows, fill: &s.fill };
                let last = last.as_ref().map(|l| guards::SourceShape { rows: l.run.rows, fill: &l.fill });
                let columns = columns.cloned().unwrap_or_default();
                if let Err(why) = guards::check_source(now, last, &columns, &self.config.guards) {
                    s.run.rejected = Some(why.clone());
                    read.rejected.get_or_insert_with(|| format!("source {}: {why}", s.run.source));
                }
            }
        }
        let mut run = RunRecord {
            id: 0,
            started_at,
            finished_at: started_at,
            sources: source_names,
            outcome: RunOutcome::Done,
            forced_by: opts.forced_by.as_ref().map(Email::to_string),
            message: None,
            report_dir: None,
            counts: RunCounts::default(),
        };

        if let Some(why) = read.rejected.clone() {
            // Nothing is diffed on a rejected source: no detach can come of it,
            // and the current state is not needed.
            drop(snapshot);
            run.outcome = RunOutcome::Rejected;
            run.message = Some(why.clone());
            let mut anomalies = std::mem::take(&mut read.desired).into_anomalies();
            anomalies.sort();
            let plan = Plan { anomalies, ..Default::default() };
            let notes = read.notes.iter().map(|n| ("note".to_string(), n.clone())).collect();
            let summary = self
                .finish(
                    tx,
                    run,
                    &read.stats,
                    plan,
                    IdentityWrites::default(),
                    Queue::default(),
                    &[],
                    &BTreeSet::new(),
                    notes,
                    opts,
                )
                .await?;
            return Ok(RunSummary { notes: read.notes, ..summary });
        }

        // A set: the pending requests read below are filtered by it.
        let expired: BTreeSet<RequestId> = self.expire(&mut tx, &scope).await?.into_iter().collect();
        if !expired.is_empty() {
            let days = self.config.approvals.expire_after_days.unwrap_or(0);
            read.notes.push(format!(
                "{} request(s) pending more than {days} days expired: {}; the changes still needed are raised again",
                expired.len(),
                expired.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ")
            ));
        }
        let earlier = self.expired_since_last_run(&run.sources, &scope).await?;
        if !earlier.is_empty() {
            read.notes.push(format!(
                "{} request(s) expired since the last run: {}; the changes still needed are raised again",
                earlier.len(),
                earlier.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ")
            ));
        }
        // The desired state is sorted on another thread (seconds at a million
        // rows) while this one checks the current state and reads the requests.
        let builder = std::mem::take(&mut read.desired);
        let sorting = tokio::task::spawn_blocking(move || builder.finish());
        let current = snapshot.current_in(&mut tx, &scope).await?;
        let open = tx.open_requests(&scope).await?;
        let refused = tx.refused_changes(&scope).await?;
        let absences = tx.absences(&scope).await?;
        // A panic there is a bug, carried on as if it had happened here.
        let desired = sorting.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        tracing::debug!(people = desired.len(), rss_mb = ?resident_mb(), "desired state sorted and merged");
        let ids = tx.identity_changes(desired.identities()).await?;
        let plan = diff(&DiffInput {
            catalog: &self.config.catalog,
            scope: &scope_set,
            desired: &desired,
            current: &current,
            open: &open,
            refused: &refused,
            absences: &absences,
            known_ids: &ids.changed,
            grace_runs: self.config.guards.grace_runs,
        });
        // The reports come from the plan alone: the current state goes before
        // they are written, so its memory serves theirs (the peak of a plan).
        drop(current);
        tracing::debug!(
            changes = plan.changes.len(),
            anomalies = plan.anomalies.len(),
            rss_mb = ?resident_mb(),
            "plan computed"
        );
        let trips = guards::evaluate(&plan, &self.config.guards);
        if !trips.is_empty() {
            let text = trips.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            if opts.force {
                tracing::warn!(by = ?run.forced_by, "guards overridden with --force: {text}");
                run.message = Some(format!("forced past: {text}"));
            } else {
                run.outcome = RunOutcome::Held;
                run.message = Some(text);
            }
        }
        // Read outside the transaction, so without this run's expiries. Read
        // here, after the current state is dropped, not beside the sort: the
        // queues (50,000 requests after a run) and their pages then sat on the
        // plan's peak of memory, +26 MB (BENCHMARKS.md, session 16).
        let mut pending_before = self.store.queued_requests(&scope).await?;
        pending_before.retain(|id| !expired.contains(&id));
        let approved: BTreeSet<_> = open.iter().filter(|o| o.state == RequestState::Approved).map(|o| o.id).collect();
        let lines = trips
            .iter()
            .map(|t| ("guard".to_string(), t.to_string()))
            .chain(read.notes.iter().map(|n| ("note".to_string(), n.clone())))
            .collect();
        let held = tx.held_requests(&scope).await?;
        // Written beside the reports, in `finish`; encoded now, so the
        // desired state goes before the reports take its memory.
        let identities = if !opts.dry_run && run.outcome == RunOutcome::Done {
            identity_writes(&desired, &plan, &ids)
        } else {
            IdentityWrites::default()
        };
        drop(desired);
        let summary =
            self.finish(tx, run, &read.stats, plan, identities, pending_before, &held, &approved, lines, opts).await?;
        let mut summary = RunSummary { notes: read.notes, ..summary };
        // After the commit: a mail that fails is a note, never a rollback.
        if let Some(id) = summary.run_id
            && summary.outcome == RunOutcome::Done
            && summary.totals.raised > 0
        {
            summary.notes.extend(self.notify_run(id, &summary.raised_ids).await);
        }
        Ok(summary)
    }

    /// Expires the scope's requests pending longer than `expire_after_days`.
    async fn expire(&self, tx: &mut StoreTx, scope: &[StructureId]) -> Result<Vec<RequestId>, EngineError> {
        let Some(days) = self.config.approvals.expire_after_days else { return Ok(Vec::new()) };
        let cutoff = self.clock.now - chrono::Duration::days(i64::from(days));
        let filter =
            RequestFilter { states: vec![RequestState::Pending], structures: scope.to_vec(), ..Default::default() };
        let ids: Vec<RequestId> =
            self.store.list_requests(&filter).await?.iter().filter(|r| r.created_at < cutoff).map(|r| r.id).collect();
        if !ids.is_empty() {
            tx.transition_many(&ids, RequestState::Pending, RequestState::Expired, Some("chorus-sync"), self.clock.now)
                .await?;
        }
        Ok(ids)
    }

    /// The approval request for a change, addressed to its structure's main manager.
    fn new_request(&self, c: &Change, run_id: RunId) -> ApprovalRequest {
        let info = self.config.catalog.get(&c.key.structure);
        let name = info.map_or("", |i| i.name.as_str());
        // The requester is the source behind the change: the row's, or the
        // source governing the structure for people absent from it.
        let source = c.origin.as_ref().map(|o| o.file.source.to_string()).or_else(|| {
            self.config.sources.iter().find(|s| s.scope.contains(&c.key.structure)).map(|s| s.name.clone())
        });
        ApprovalRequest {
            id: 0,
            run_id,
            state: RequestState::Pending,
            kind: c.kind,
            key: c.key.clone(),
            name: c.name.clone(),
            reason: c.reason.to_string(),
            reason_category: c.reason.category().to_string(),
            description: describe(c, name),
            requester: format!("chorus-sync, source {}, run {run_id}", source.unwrap_or_default()),
            structure_name: name.to_string(),
            manager: info.map_or(String::new(), |i| i.main_manager.to_string()),
            origin: c.origin.as_ref().map(ToString::to_string),
            created_at: self.clock.now,
            decided_by: None,
            decided_at: None,
            motive: None,
            comment: None,
        }
    }

    /// Records the run (unless dry), raises and supersedes when it is done,
    /// writes the reports, commits.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        mut tx: StoreTx,
        mut run: RunRecord,
        stats: &[SourceRunRecord],
        mut plan: Plan,
        identities: IdentityWrites,
        pending_before: Queue,
        held_before: &[ApprovalRequest],
        approved: &BTreeSet<RequestId>,
        extra_info: Vec<(String, String)>,
        opts: &RunOptions,
    ) -> Result<RunSummary, EngineError> {
        let now = self.clock.now;
        let done = run.outcome == RunOutcome::Done;
        let mut counts = plan.counts.clone();
        if !done {
            for c in counts.values_mut() {
                c.raised = 0;
            }
        }
        let sum = |f: fn(&StructureCounts) -> u64| counts.values().map(f).sum::<u64>();
        let mut totals = RunCounts {
            attach: sum(|c| c.attach),
            detach: sum(|c| c.detach),
            moves: sum(|c| c.moves),
            rights: sum(|c| c.rights),
            raised: sum(|c| c.raised),
            superseded: if done { plan.supersede.len() as u64 } else { 0 },
            anomalies: plan.anomalies.len() as u64,
        };

        let run_id = if opts.dry_run { None } else { Some(tx.insert_run(&run).await?) };
        run.id = run_id.unwrap_or(0);

        // Raise the new requests (held ones when the run is held) and supersede the stale ones.
        let held_by_key: HashMap<&ChangeKey, &ApprovalRequest> = held_before.iter().map(|r| (&r.key, r)).collect();
        let raising = !opts.dry_run && run.outcome != RunOutcome::Rejected;
        // The request carrying each change to raise, in plan order.
        let mut carried: Vec<(RequestId, RequestState)> = Vec::new();
        // The pending sheet: what managers have in their queues after this
        // run, the requests it raises or releases added as they are.
        let mut pending = pending_before;
        if done {
            let superseded: BTreeSet<_> = plan.supersede.iter().copied().collect();
            pending.retain(|id| !superseded.contains(&id));
        }
        if raising {
            let state = if done { RequestState::Pending } else { RequestState::Held };
            let to_raise: Vec<&Change> = plan.to_raise().collect();
            let mut kept_ids: BTreeSet<RequestId> = BTreeSet::new();
            // Chunk by chunk: a first adoption raises a request per person, and
            // a million requests built before their insert took ~700 MB.
            for chunk in to_raise.chunks(RAISE_CHUNK) {
                let mut fresh: Vec<ApprovalRequest> = chunk
                    .iter()
                    .filter(|c| !held_by_key.contains_key(&c.key))
                    .map(|c| ApprovalRequest { state, ..self.new_request(c, run.id) })
                    .collect();
                if !fresh.is_empty() {
                    let ids = tx.insert_requests(&fresh).await?;
                    for (req, id) in fresh.iter_mut().zip(ids) {
                        req.id = id;
                    }
                }
                // Back into plan order. A change an earlier held run keeps is
                // the same request: released (done) or kept (held again), not
                // raised twice.
                let mut fresh = fresh.into_iter();
                for c in chunk {
                    let req = match held_by_key.get(&c.key) {
                        Some(h) => {
                            kept_ids.insert(h.id);
                            ApprovalRequest { state, ..(*h).clone() }
                        }
                        // Always there: `fresh` holds one per change not held.
                        None => match fresh.next() {
                            Some(r) => r,
                            None => continue,
                        },
                    };
                    carried.push((req.id, req.state));
                    if done {
                        pending.push(&QueuedRequest::from(&req));
                    }
                }
            }
            if done && !kept_ids.is_empty() {
                let ids: Vec<RequestId> = kept_ids.iter().copied().collect();
                let by = run.forced_by.as_deref().unwrap_or("chorus-sync");
                tx.transition_many(&ids, RequestState::Held, RequestState::Pending, Some(by), now).await?;
            }
            let dropped: Vec<RequestId> =
                held_before.iter().map(|r| r.id).filter(|id| !kept_ids.contains(id)).collect();
            if !dropped.is_empty() {
                tx.transition_many(&dropped, RequestState::Held, RequestState::Superseded, Some("chorus-sync"), now)
                    .await?;
            }
        }
        // The plan's changes are moved into the reported ones, not copied (a
        // first adoption has one per person), each with the request carrying it.
        let mut carrying = carried.iter();
        let reported: Vec<ReportedChange> = std::mem::take(&mut plan.changes)
            .into_iter()
            .map(|p| {
                let carrier = match p.disposition {
                    Disposition::Raise if raising => carrying.next().copied(),
                    // Changes a held run already keeps show as such.
                    Disposition::Raise => held_by_key.get(&p.change.key).map(|h| (h.id, RequestState::Held)),
                    _ => None,
                };
                let mut reported = ReportedChange::from(p);
                if let Some((id, state)) = carrier {
                    (reported.approval_id, reported.approval_state) = (Some(id), Some(state));
                }
                reported
            })
            .collect();
        let mut held_count = 0;
        if raising && done {
            totals.raised = carried.len() as u64;
        } else if raising {
            held_count = carried.len() as u64;
        }
        // The requests this run put in the managers' queues: new ones and
        // held ones it released (those keep the id of the run that held them).
        let raised_ids: Vec<RequestId> = if done { carried.iter().map(|&(id, _)| id).collect() } else { Vec::new() };
        drop(carried);
        if done && !opts.dry_run {
            // Approved requests the plan dropped are superseded too, so they
            // leave the action list before someone applies them.
            let (was_approved, was_pending): (Vec<_>, Vec<_>) =
                plan.supersede.iter().partition(|id| approved.contains(id));
            for (ids, from) in [(was_pending, RequestState::Pending), (was_approved, RequestState::Approved)] {
                if !ids.is_empty() {
                    tx.transition_many(&ids, from, RequestState::Superseded, Some("chorus-sync"), now).await?;
                }
            }
        }
        run.counts = totals;
        // Held requests released keep the ids of the runs that held them.
        pending.sort_by_id();

        let dir = match (&opts.out, run_id) {
            (Some(out), _) => out.clone(),
            (None, Some(id)) => self.config.reports.dir.join(id.to_string()),
            (None, None) => self.config.reports.dir.join(format!("plan-{}", now.format("%Y%m%dT%H%M%SZ"))),
        };
        run.report_dir = Some(dir.display().to_string());
        run.finished_at = Utc::now().max(now);
        let mut info: Vec<(String, String)> = vec![
            ("run_id".into(), run_id.map_or(String::new(), |i| i.to_string())),
            ("mode".into(), if opts.dry_run { "plan (dry run)".into() } else { "run".into() }),
            ("outcome".into(), run.outcome.to_string()),
            ("sources".into(), run.sources.join(", ")),
            ("started_at".into(), crate::core::approval::rfc3339(&run.started_at)),
        ];
        if let Some(m) = &run.message {
            info.push(("message".into(), m.clone()));
        }
        info.extend(extra_info);
        for s in stats {
            let mut line = format!("{}: {} rows, {} valid", s.run.origin, s.run.rows, s.run.valid_rows);
            if let Some(r) = &s.run.rejected {
                line.push_str(&format!("; rejected: {r}"));
            }
            info.push((format!("source {}", s.run.source), line));
        }
        if let Some(by) = &run.forced_by {
            info.push(("forced_by".into(), by.clone()));
        }
        // The reports are written on a blocking thread while the store
        // records what they do not show (identities, absences): the server
        // inserts while this process writes files (100,000 new ids: ~0.3 s).
        // The anomalies are moved, not copied: a rejected file may hold a million.
        let anomalies = std::mem::take(&mut plan.anomalies);
        let report = RunReportData { run_id, changes: reported, anomalies, counts, pending, info, created_at: now };
        let bar = progress(opts.progress && report.changes.len() > 10_000, "writing reports".to_string(), false);
        let (config, report_dir) = (Arc::clone(&self.config), dir.clone());
        let writing = tokio::task::spawn_blocking(move || {
            let files =
                report::write_run_reports(&report_dir, &report.view(&config.catalog), config.reports.csv_delimiter);
            (files, report.counts)
        });
        let beside = async {
            if done && !opts.dry_run {
                if !identities.is_empty() {
                    tx.record_identities(identities, now).await?;
                }
                let scope: Vec<StructureId> = plan.counts.keys().cloned().collect();
                tx.replace_absences(&scope, &plan.absences).await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        // A panic there is a bug, carried on as if it had happened here.
        let (files, counts) = writing.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        bar.finish_and_clear();
        tracing::debug!(dir = %dir.display(), rss_mb = ?resident_mb(), "reports written");
        // Reports first, then the commit: a recorded run always has its
        // reports, and a run whose reports cannot be written is not recorded.
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                tx.rollback().await?;
                return Err(if run_id.is_some() { EngineError::NotRecorded(e) } else { e.into() });
            }
        };
        if let Some(id) = run_id {
            run.id = id;
            let recorded = async {
                beside?;
                tx.update_run(&run).await?;
                tx.insert_source_runs(id, stats).await?;
                tx.commit().await
            };
            if let Err(e) = recorded.await {
                // No report may describe a run the store does not hold (its
                // id will be drawn again): remove them, best effort.
                for f in &files.files {
                    let _ = std::fs::remove_file(f);
                }
                if opts.out.is_none() {
                    let _ = std::fs::remove_dir(&files.dir);
                }
                return Err(e.into());
            }
        } else {
            beside?;
            tx.rollback().await?;
        }
        Ok(RunSummary {
            run_id,
            outcome: run.outcome,
            dry_run: opts.dry_run,
            message: run.message,
            report_dir: Some(files.dir),
            sources: stats.iter().map(|s| s.run.clone()).collect(),
            counts,
            totals,
            held: held_count,
            raised_ids,
            notes: Vec::new(),
        })
    }
}

/// Requests built, inserted and dropped at a time (a bulk statement's worth).
/// Debug builds (the test suite's) take 5, so that the tests' runs cross
/// chunk boundaries, held requests among fresh ones.
const RAISE_CHUNK: usize = if cfg!(debug_assertions) { 5 } else { 10_000 };

/// What a done run remembers of who is who for the next run: ids new to the
/// store and changed addresses, except people whose identity is in doubt
/// this run (the anomaly stays until the portal is fixed). Only what the
/// store does not hold already: rewriting a million unchanged ids every run
/// was most of a large run's writes.
fn identity_writes(desired: &Desired, plan: &Plan, ids: &IdentityChanges) -> IdentityWrites {
    let doubtful: BTreeSet<&str> = plan
        .anomalies
        .iter()
        .filter(|a| a.code == AnomalyCode::EmailChanged)
        .filter_map(|a| a.email.as_deref())
        .chain(desired.protected.iter().map(Email::as_str))
        .collect();
    let mut writes = IdentityWrites::default();
    for ((id, e), &unknown) in desired.identities().zip(&ids.unknown) {
        if doubtful.contains(e) {
            continue;
        }
        if unknown {
            writes.push_new(id, e);
        } else if ids.changed.contains_key(id) {
            writes.push_changed(id, e);
        }
    }
    writes
}

/// The store's read of the current state of a run's structures, on its own
/// task beside the source read. Dropped unfinished (a rejected source, an
/// error), it is aborted.
struct SnapshotRead(tokio::task::JoinHandle<Result<CurrentSnapshot, StoreError>>);

impl SnapshotRead {
    fn start(store: &Store, scope: Vec<StructureId>) -> SnapshotRead {
        let store = store.clone();
        SnapshotRead(tokio::spawn(async move {
            let snapshot = store.current_snapshot(&scope).await?;
            let attachments = snapshot.attachments.len();
            tracing::debug!(attachments, rss_mb = ?resident_mb(), "current attachments read (snapshot)");
            Ok(snapshot)
        }))
    }

    /// The current state as of the write transaction `tx`: the snapshot when
    /// no structure of `scope` was replaced since it was taken (the same
    /// generations), else read again in `tx`. Writers are serialised, so
    /// nothing replaces it between this check and the commit.
    async fn current_in(mut self, tx: &mut StoreTx, scope: &[StructureId]) -> Result<CurrentState, EngineError> {
        let now = tx.current_generations(scope).await?;
        let snapshot = match (&mut self.0).await {
            Ok(read) => read?,
            // A panic there is a bug, carried on as if it had happened here.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                tracing::debug!("current attachments: the snapshot read stopped ({e}); read in the transaction");
                return Ok(tx.current_attachments(scope).await?);
            }
        };
        if snapshot.generations == now {
            tracing::debug!("current attachments: the snapshot is current (no structure replaced since)");
            return Ok(snapshot.attachments);
        }
        let replaced: Vec<&str> =
            scope.iter().filter(|s| snapshot.generations.get(*s) != now.get(*s)).map(StructureId::as_str).collect();
        tracing::debug!(
            ?replaced,
            "current attachments replaced since the snapshot (import-current): read again in the transaction"
        );
        drop(snapshot);
        let current = tx.current_attachments(scope).await?;
        tracing::debug!(attachments = current.len(), rss_mb = ?resident_mb(), "current attachments read");
        Ok(current)
    }
}

impl Drop for SnapshotRead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads one source into `desired`; the error, if any, rejects it.
fn read_source(
    src: &SourceConfig,
    config: &Config,
    today: NaiveDate,
    desired: &mut DesiredBuilder,
    bar: &indicatif::ProgressBar,
) -> (SourceRunRecord, Option<String>) {
    let (origin, sheet_name) = match &src.kind {
        SourceKind::Spreadsheet(sheet) => {
            // The sheet is named in locations only when the config names it (not for csv).
            let name = sheet.sheet.as_deref().filter(|_| !is_csv(&sheet.path)).map(Arc::from);
            (sheet.path.display().to_string(), name)
        }
        // Locations name the directory (no credentials) and the entry's DN.
        SourceKind::Ldap(ldap) => (mask_url(&ldap.url), None),
    };
    let mut stats = SourceRunRecord {
        run: SourceRun { source: src.name.clone(), origin: origin.clone(), rows: 0, valid_rows: 0, rejected: None },
        sha256: None,
        fill: Default::default(),
    };
    let required = [Field::Email];
    let mapper = Mapper {
        file: SourceFile::new(&src.name, &origin, sheet_name.as_deref()),
        catalog: &config.catalog,
        scope: &src.scope,
        default_structure: src.default_structure.as_ref(),
        columns: &src.columns,
        values: &src.values,
        today,
        resolved: Default::default(),
    };
    let (mut rows, mut valid) = (0u64, 0u64);
    let mapped_fields: Vec<Field> = src.columns.iter().map(|(f, _)| f).collect();
    let mut filled = [0u64; Field::COUNT];
    let mut sink = |record: &crate::core::record::Record| {
        rows += 1;
        for f in &mapped_fields {
            filled[f.index()] += u64::from(!record.get(*f).is_blank());
        }
        bar.inc(1);
        let mapped = mapper.map(record);
        if matches!(mapped, crate::core::mapping::Mapped::Row(_)) {
            valid += 1;
        }
        desired.add(mapped);
        Ok(())
    };
    let result = match &src.kind {
        SourceKind::Spreadsheet(sheet) => {
            let spec = TableSpec {
                path: &sheet.path,
                sheet: sheet.sheet.as_deref(),
                csv: sheet.csv,
                columns: &src.columns,
                required: &required,
                limits: config.limits,
            };
            source::read_table(&spec, &mut sink).map(|info| Some(info.sha256))
        }
        SourceKind::Ldap(ldap) => {
            let spec = DirectorySpec {
                source: ldap,
                attributes: &src.columns,
                required: &required,
                today,
                timezone: config.timezone,
            };
            source::read_directory(&spec, &mut sink).map(|info| {
                tracing::info!(source = %src.name, entries = info.entries, pages = info.pages, "directory read");
                None
            })
        }
    };
    stats.run.rows = rows;
    stats.run.valid_rows = valid;
    stats.fill = mapped_fields.iter().map(|f| (*f, filled[f.index()])).collect();
    match result {
        Ok(sha256) => {
            stats.sha256 = sha256;
            (stats, None)
        }
        Err(e) => {
            let why = e.to_string();
            stats.run.rejected = Some(why.clone());
            (stats, Some(why))
        }
    }
}

/// The process's resident memory in MB (Linux), for the phase lines of `-vv`:
/// where a large run's memory goes, without a profiler.
fn resident_mb() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096 / 1_000_000)
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("txt"))
}
