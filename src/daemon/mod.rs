//! `chorus-sync daemon`: runs each source on its `schedule` until SIGINT or
//! SIGTERM.
//!
//! - tokio-cron-scheduler fires the jobs (in memory, in the configured time
//!   zone); each firing runs `Engine::run` for its source (see `tick.rs`).
//! - Never two runs of one source at once here: a slot that comes while the
//!   previous run goes on is skipped and logged.
//! - Several instances on one store: a slot is claimed in the `slots` table
//!   before it runs, so each slot runs exactly once across instances.
//! - SIGINT/SIGTERM: no new run; the runs in progress finish (each is one
//!   transaction: it commits or rolls back whole); then exit. A second signal
//!   exits at once, rolling the runs in progress back.
//! - SIGHUP or a change of the configuration file (its modification time,
//!   polled): reload. An invalid configuration is logged and the previous one
//!   kept; a valid one replaces the jobs (and the store, if its URL changed).
//! - The scheduler keeps the UTC offset a job was created with; the poll also
//!   compares each job's next tick with the slot computed here (`slot.rs`) and
//!   re-creates the jobs that drifted, as they do across daylight-saving changes.

mod slot;
mod tick;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use chrono::Utc;
use tokio::signal::unix::{SignalKind, signal};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

pub use slot::{Schedule, ScheduleError};
pub use tick::{Current, HOUSEKEEPING, JobSpec, RunError, Runner, Shared, TOLERANCE, TickOutcome, engine_runner};

use crate::{
    config::{self, Config},
    core::approval::rfc3339,
    ops,
    secret::mask_url,
    store::{Store, StoreError},
    web::WebOptions,
};

/// How often the configuration file's modification time and the jobs'
/// next ticks are checked.
pub const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
    #[error("cannot listen for signals: {0}")]
    Signal(#[source] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("stopped by a second signal: the runs in progress were abandoned and roll back")]
    Aborted,
}

/// `host:pid`, which names this instance in the `slots` table and the logs.
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}", std::process::id())
}

/// The file's identity for change detection.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A job in the scheduler.
struct Scheduled {
    id: Uuid,
    spec: Arc<JobSpec>,
    /// The next slot this job was last re-created for, so that a scheduler
    /// that keeps disagreeing is not re-created in a loop.
    corrected_for: Option<chrono::DateTime<Utc>>,
}

struct Daemon {
    path: PathBuf,
    shared: Arc<Shared>,
    scheduler: JobScheduler,
    jobs: Vec<Scheduled>,
    stamp: Option<(SystemTime, u64)>,
}

/// Runs until SIGINT or SIGTERM, then waits for the runs in progress.
/// With `listen`, serves the web console, `/healthz` and `/metrics` there meanwhile.
pub async fn run(
    config_path: &Path,
    config: Config,
    listen: Option<SocketAddr>,
    web: WebOptions,
) -> Result<(), DaemonError> {
    if std::env::var_os("CHORUS_SYNC_NOW").is_some() {
        tracing::warn!("CHORUS_SYNC_NOW is ignored by the daemon: scheduled runs use the real time");
    }
    // Bound first: a taken port is an error before anything runs.
    let listener = match listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| DaemonError::Listen { addr, source })?)
        }
        None => None,
    };
    let stamp = stamp(config_path);
    let config = Arc::new(config);
    let store = Store::connect(&config.store.url).await?;
    let current = Current { config: config.clone(), store };
    let shared = Arc::new(Shared::new(instance_id(), current, engine_runner()));
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;

    let server = listener.map(|l| serve_ops(l, &shared, web));
    let scheduler = JobScheduler::new().await?;
    let mut daemon = Daemon { path: config_path.to_path_buf(), shared, scheduler, jobs: Vec::new(), stamp };
    daemon.schedule(&config).await?;
    daemon.scheduler.start().await?;
    tracing::info!(
        instance = %daemon.shared.instance,
        config = %daemon.path.display(),
        store = %mask_url(config.store.url.expose()),
        timezone = %config.timezone,
        jobs = daemon.jobs.len(),
        "daemon started"
    );

    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal_name = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => daemon.reload("SIGHUP").await,
            _ = poll.tick() => daemon.poll().await,
        }
    };

    tracing::info!(signal = signal_name, "stopping: no new runs; waiting for the runs in progress");
    if let Err(e) = daemon.scheduler.shutdown().await {
        tracing::warn!("scheduler shutdown: {e}");
    }
    let stopped = tokio::select! {
        _ = daemon.shared.stop() => true,
        _ = sigterm.recv() => false,
        _ = sigint.recv() => false,
    };
    if !stopped {
        tracing::warn!("second signal: exiting without waiting; the runs in progress roll back");
        return Err(DaemonError::Aborted);
    }
    if let Some(server) = server {
        server.stop().await;
    }
    daemon.shared.current().store.close().await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// The `/healthz` and `/metrics` server, running.
struct OpsServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts serving on `listener`; the address goes to the log (a port 0 is
/// resolved there).
fn serve_ops(listener: tokio::net::TcpListener, shared: &Arc<Shared>, web: WebOptions) -> OpsServer {
    match listener.local_addr() {
        Ok(address) => tracing::info!(%address, console = true, "serving /healthz and /metrics"),
        Err(e) => tracing::warn!("serving /healthz and /metrics at an unknown address: {e}"),
    }
    let view_of = shared.clone();
    let view: ops::View = Arc::new(move || {
        let c = view_of.current();
        (c.config, c.store)
    });
    let console = crate::web::router(crate::web::WebState::with_view(view.clone(), web));
    let router = ops::router(ops::OpsState::new(view, shared.activity.clone())).merge(console);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(ops::serve(listener, router, async move {
        let _ = stopped.await;
    }));
    OpsServer { stop, task }
}

impl OpsServer {
    /// Stops taking connections and lets the requests in progress finish
    /// (a scrape waits for the store at most `ops::STORE_TIMEOUT`).
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(ops::STORE_TIMEOUT * 2, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("the /healthz and /metrics server failed: {e}"),
            Ok(Err(e)) => tracing::warn!("the /healthz and /metrics server stopped abnormally: {e}"),
            Err(_) => tracing::warn!("the /healthz and /metrics server did not stop in time"),
        }
    }
}

impl Daemon {
    /// Adds a job for every source with a schedule of `config`.
    async fn schedule(&mut self, config: &Config) -> Result<(), DaemonError> {
        for src in &config.sources {
            let Some(text) = &src.schedule else { continue };
            // Validated with the same parser when the configuration loaded.
            let schedule = match Schedule::parse(text) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(source = %src.name, "{e}: source not scheduled");
                    continue;
                }
            };
            let spec = Arc::new(JobSpec { source: src.name.clone(), schedule, tz: config.timezone });
            let id = self.add_job(&spec).await?;
            let next = spec.schedule.next_after(spec.tz, Utc::now());
            tracing::info!(
                source = %spec.source,
                schedule = %spec.schedule.text(),
                next = %next.map(|t| t.with_timezone(&spec.tz).to_rfc3339()).unwrap_or_else(|| "never".into()),
                "source scheduled"
            );
            self.jobs.push(Scheduled { id, spec, corrected_for: None });
        }
        if self.jobs.is_empty() {
            tracing::warn!("no source has a schedule: nothing will run until the configuration changes");
        }
        self.schedule_housekeeping(config).await
    }

    /// The housekeeping job (expiry across all structures, reminders), when
    /// there is something for it to do.
    async fn schedule_housekeeping(&mut self, config: &Config) -> Result<(), DaemonError> {
        let reminders = config.notifications.as_ref().is_some_and(|n| n.remind_after_days.is_some());
        if config.approvals.expire_after_days.is_none() && !reminders {
            return Ok(());
        }
        let text = &config.approvals.housekeeping_schedule;
        let schedule = match Schedule::parse(text) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("approvals.housekeeping_schedule: {e}: housekeeping not scheduled");
                return Ok(());
            }
        };
        let spec = Arc::new(JobSpec { source: HOUSEKEEPING.to_string(), schedule, tz: config.timezone });
        let id = self.add_job(&spec).await?;
        let next = spec.schedule.next_after(spec.tz, Utc::now());
        tracing::info!(
            schedule = %spec.schedule.text(),
            next = %next.map(|t| t.with_timezone(&spec.tz).to_rfc3339()).unwrap_or_else(|| "never".into()),
            "housekeeping scheduled"
        );
        self.jobs.push(Scheduled { id, spec, corrected_for: None });
        Ok(())
    }

    async fn add_job(&self, spec: &Arc<JobSpec>) -> Result<Uuid, DaemonError> {
        let (shared, spec2) = (self.shared.clone(), spec.clone());
        let job = Job::new_async_tz(spec.schedule.text(), spec.tz, move |_id, _scheduler| {
            let (shared, spec) = (shared.clone(), spec2.clone());
            Box::pin(async move {
                let outcome = shared.tick(&spec, Utc::now()).await;
                tick::log(&spec.source, &shared.instance, &outcome);
                shared.activity.record(&spec.source, Utc::now(), &outcome);
            })
        })?;
        Ok(self.scheduler.add(job).await?)
    }

    async fn remove_jobs(&mut self) {
        for job in std::mem::take(&mut self.jobs) {
            if let Err(e) = self.scheduler.remove(&job.id).await {
                tracing::warn!(source = %job.spec.source, "cannot remove the job: {e}");
            }
        }
    }

    /// Reloads the configuration; keeps the current one if the new one is
    /// invalid or its store unreachable.
    async fn reload(&mut self, why: &str) {
        self.stamp = stamp(&self.path);
        let config = match config::load(&self.path) {
            Ok(c) => Arc::new(c),
            Err(errors) => {
                for line in errors.to_string().lines() {
                    tracing::error!(trigger = why, "{line}");
                }
                tracing::error!(
                    trigger = why,
                    problems = errors.problems.len(),
                    "configuration not reloaded: it is invalid; the daemon goes on with the previous one"
                );
                return;
            }
        };
        let old = self.shared.current();
        let store = if config.store.url == old.config.store.url {
            old.store.clone()
        } else {
            match Store::connect(&config.store.url).await {
                Ok(store) => {
                    tracing::info!(store = %mask_url(config.store.url.expose()), "store changed: connected");
                    store
                }
                Err(e) => {
                    tracing::error!(
                        trigger = why,
                        "configuration not reloaded: {e}; the daemon goes on with the previous one"
                    );
                    return;
                }
            }
        };
        // Runs in progress keep the configuration and store they started with.
        self.shared.replace(Current { config: config.clone(), store });
        self.remove_jobs().await;
        if let Err(e) = self.schedule(&config).await {
            tracing::error!("rescheduling after the reload failed: {e}");
        }
        tracing::info!(trigger = why, jobs = self.jobs.len(), "configuration reloaded");
    }

    async fn poll(&mut self) {
        if stamp(&self.path) != self.stamp {
            self.reload("the configuration file changed").await;
            return;
        }
        self.correct_drift().await;
    }

    /// Re-creates the jobs whose next tick differs from their next slot
    /// (the scheduler's offset went stale across a daylight-saving change).
    async fn correct_drift(&mut self) {
        let now = Utc::now();
        let mut drifted = Vec::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let Ok(Some(tick)) = self.scheduler.clone().next_tick_for_job(job.id).await else { continue };
            let Some(slot) = job.spec.schedule.next_after(job.spec.tz, now) else { continue };
            if needs_correction(now, tick, slot, job.corrected_for) {
                tracing::info!(
                    source = %job.spec.source,
                    scheduler_next = %rfc3339(&tick),
                    next = %rfc3339(&slot),
                    "job re-created: the scheduler's next tick is not the next slot"
                );
                drifted.push((i, slot));
            }
        }
        for (i, slot) in drifted {
            let spec = self.jobs[i].spec.clone();
            if let Err(e) = self.scheduler.remove(&self.jobs[i].id).await {
                tracing::warn!(source = %spec.source, "cannot remove the job: {e}");
                continue;
            }
            match self.add_job(&spec).await {
                Ok(id) => self.jobs[i] = Scheduled { id, spec, corrected_for: Some(slot) },
                Err(e) => tracing::error!(source = %spec.source, "cannot re-create the job: {e}"),
            }
        }
    }
}

/// Whether a job whose scheduler will fire at `tick` must be re-created to
/// fire at `slot`, its next slot. Not when the tick is due (it is about to
/// fire, or just did: re-creating could lose it), nor when the slot is so
/// close that the new job might miss it, nor twice for the same slot (the
/// scheduler's first tick disagrees with ours: leave it, `due_at` ignores
/// a stray tick).
fn needs_correction(
    now: chrono::DateTime<Utc>,
    tick: chrono::DateTime<Utc>,
    slot: chrono::DateTime<Utc>,
    corrected_for: Option<chrono::DateTime<Utc>>,
) -> bool {
    let due = tick <= now + chrono::Duration::seconds(1);
    let close = slot - now <= chrono::Duration::seconds(3);
    tick != slot && !due && !close && corrected_for != Some(slot)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn drifted_jobs_are_re_created_once_and_never_at_their_tick() {
        // Paris, `0 30 2 * * *`, just after the 28 March 2026 run: the
        // scheduler kept UTC+1 and would fire at 01:30Z, the slot is 01:00Z.
        let now = at("2026-03-28T01:30:02Z");
        let (stale, slot) = (at("2026-03-29T01:30:00Z"), at("2026-03-29T01:00:00Z"));
        let cases = [
            (now, stale, slot, None, true),
            (now, slot, slot, None, false),                             // agrees
            (now, stale, slot, Some(slot), false),                      // already re-created for this slot
            (now, stale, slot, Some(at("2026-03-28T01:30:00Z")), true), // an older correction
            (now, at("2026-03-28T01:30:02Z"), slot, None, false),       // tick due now
            (at("2026-03-29T00:59:58Z"), stale, slot, None, false),     // slot too close
        ];
        for (now, tick, slot, corrected, expect) in cases {
            assert_eq!(needs_correction(now, tick, slot, corrected), expect, "now {now} tick {tick} slot {slot}");
        }
    }

    #[test]
    fn instance_ids_name_host_and_process() {
        let id = instance_id();
        let (host, pid) = id.rsplit_once(':').unwrap();
        assert!(!host.is_empty());
        assert_eq!(pid, std::process::id().to_string());
    }
}
